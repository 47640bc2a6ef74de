"""Transformer-XL language model (Dai et al., 2019), as used by seed 000 (Section 4).

Seed 000 trains "Transformer-XL (Dai et al., 2019) on WikiText-2 ... as in Kunstner et al. (2023)".
This module writes that model out in one place: a stack of post-LayerNorm decoder layers whose
self-attention uses *relative* sinusoidal position encodings and the two learned global biases u, v
(Dai et al. 2019, Section 3.3), followed by a plain (untied, non-adaptive) softmax output layer.

The attention score between query position i and key position j is (Dai et al. 2019, eq. in §3.3)

    A_ij = q_i · k_j            (a) content
         + q_i · W_R R_{i-j}    (b) content-dependent position bias
         + u   · k_j            (c) global content bias
         + v   · W_R R_{i-j}    (d) global position bias

with q_i = W_q E_i, k_j = W_k E_j and R_d the sinusoidal encoding of the distance d = i - j.
Terms (a)+(c) are computed together as (q_i + u) · k_j and (b)+(d) as (q_i + v) · W_R R_{i-j}.
The second product is first computed against the encodings of all distances, in descending order,
and then re-indexed by distance with the "relative shift" trick (:func:`rel_shift`).

Memory. Transformer-XL's segment recurrence lets a segment attend to the hidden states of the
previous segment, through a stop-gradient. Kunstner et al.'s experiments (and therefore this
project's default, ``carry_memory=False``) did not carry memory between batches: every 128-token
segment starts from an empty memory. With ``carry_memory=True`` the model asks the trainer for the
``mem_len`` tokens preceding each segment (``model.context_len = mem_len``; see the model interface
in docs/architecture.md) and builds the memory from those tokens itself, under ``torch.no_grad()``.
The memory is then exactly what the recurrence would give if the preceding tokens had been the
previous segment of a fresh stream, yet each training sequence stays self-contained, so memory is
compatible with sequences drawn in a shuffled order (seed 000, Def. 2.1, samples without
replacement from a fresh permutation every epoch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configs import TransformerXLConfig
from .loss import token_cross_entropy

# Dai et al.'s initialisation (kept by Kunstner et al.): every weight N(0, 0.02), biases zero,
# LayerNorm gains N(1, 0.02).
INIT_STD = 0.02


def sinusoidal_encoding(distances: torch.Tensor, dim: int) -> torch.Tensor:
    """R_d for each distance d: [sin(d ω_k) ; cos(d ω_k)] with ω_k = 10000^(-2k/dim).

    Same frequencies as Vaswani et al. (2017), laid out as Dai et al. do (all sines, then all
    cosines). Returns shape [len(distances), dim].
    """
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=distances.device) / dim))
    angles = torch.outer(distances.float(), inv_freq)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Re-index position scores from "encoding index" to "key index" (Dai et al. 2019, App. B).

    ``x[..., i, m]`` holds the score of query i against the encoding of distance ``klen - 1 - m``
    (encodings in descending order). The result holds, at ``[..., i, j]``, the score of query i
    against distance ``(klen - qlen + i) - j``, i.e. the distance from query i (which sits at
    absolute position ``klen - qlen + i``, after the memory) to key j. Entries with j beyond the
    query (negative distance) contain junk and must be masked by the causal mask.

    The trick: prepend a zero column, reinterpret the [qlen, klen+1] block as [klen+1, qlen], drop
    the first row and reinterpret as [qlen, klen]. This shifts row i left by ``qlen - 1 - i``
    entries without any gather, in O(qlen·klen) memory.
    """
    *batch, qlen, klen = x.shape
    zero_column = x.new_zeros(*batch, qlen, 1)
    padded = torch.cat([zero_column, x], dim=-1).view(*batch, klen + 1, qlen)
    return padded[..., 1:, :].reshape(*batch, qlen, klen)


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head self-attention with relative positions, the u/v biases and memory.

    Post-LayerNorm as in the original: ``out = LayerNorm(h + Dropout(W_o · attention))``.
    Keys and values are computed from [memory ; h], queries from h only.
    """

    def __init__(self, cfg: TransformerXLConfig):
        super().__init__()
        self.n_head, self.d_head = cfg.n_head, cfg.d_head
        inner = cfg.n_head * cfg.d_head
        # One projection for queries, keys and values (W_q, W_{k,E}, W_v), none with bias.
        self.qkv_net = nn.Linear(cfg.d_model, 3 * inner, bias=False)
        # W_{k,R}: projects the sinusoidal encodings R into key space, shared by all positions.
        self.r_net = nn.Linear(cfg.d_model, inner, bias=False)
        self.o_net = nn.Linear(inner, cfg.d_model, bias=False)
        self.layer_norm = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.dropatt = nn.Dropout(cfg.dropatt)
        self.scale = 1.0 / math.sqrt(cfg.d_head)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, H·D] -> [B, H, T, D]."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_head, self.d_head).transpose(1, 2)

    def scores(
        self,
        h: torch.Tensor,
        memory: torch.Tensor | None,
        pos_enc: torch.Tensor,
        u: torch.Tensor,
        v: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unmasked, scaled attention scores A_ij / sqrt(d_head) and the value heads.

        h: [B, qlen, d_model]; memory: [B, mlen, d_model] or None; pos_enc: [klen, d_model], the
        encodings of distances klen-1, ..., 0; u, v: [n_head, d_head].
        Returns scores [B, H, qlen, klen] and values [B, H, klen, d_head].
        """
        qlen = h.size(1)
        context = h if memory is None else torch.cat([memory, h], dim=1)
        q, k, val = self.qkv_net(context).chunk(3, dim=-1)
        q = self._heads(q[:, -qlen:])  # queries only for the current segment
        k, val = self._heads(k), self._heads(val)
        r_k = self.r_net(pos_enc).view(-1, self.n_head, self.d_head).transpose(0, 1)  # [H, klen, D]

        content = (q + u[:, None, :]) @ k.transpose(-1, -2)  # terms (a) + (c)
        position = (q + v[:, None, :]) @ r_k.transpose(-1, -2)  # terms (b) + (d), by encoding
        position = rel_shift(position)  # ... now by key position
        return (content + position) * self.scale, val

    def forward(self, h, memory, pos_enc, u, v, causal_mask):
        scores, val = self.scores(h, memory, pos_enc, u, v)
        scores = scores.float().masked_fill(causal_mask, float("-inf"))
        probs = self.dropatt(F.softmax(scores, dim=-1).type_as(val))
        attended = (probs @ val).transpose(1, 2).reshape(h.size(0), h.size(1), -1)
        return self.layer_norm(h + self.drop(self.o_net(attended)))


class PositionwiseFeedForward(nn.Module):
    """``LayerNorm(h + Dropout(W_2 Dropout(ReLU(W_1 h + b_1)) + b_2))``: post-norm, as Dai et al."""

    def __init__(self, cfg: TransformerXLConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_inner),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.d_inner, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )
        self.layer_norm = nn.LayerNorm(cfg.d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(h + self.net(h))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerXLConfig):
        super().__init__()
        self.attn = RelativeMultiHeadAttention(cfg)
        self.ff = PositionwiseFeedForward(cfg)

    def forward(self, h, memory, pos_enc, u, v, causal_mask):
        return self.ff(self.attn(h, memory, pos_enc, u, v, causal_mask))


class TransformerXL(nn.Module):
    """Transformer-XL language model; ``loss = model(inputs, targets)`` gives per-token NLL.

    Without memory (``carry_memory=False``, ``context_len = 0``): ``inputs`` and ``targets`` are
    both [B, T] and every position attends causally within its own segment.

    With memory (``carry_memory=True``, ``context_len = mem_len``): ``inputs`` is
    [B, m + T] with 0 <= m <= mem_len (the trainer passes m = mem_len, the tokens preceding the
    segment in the stream) and ``targets`` is [B, T]. The first m tokens are run through the
    network under ``torch.no_grad()``; the input of every layer at those positions becomes that
    layer's memory (the stop-gradient of Dai et al.'s segment recurrence), and the segment attends
    to it. The loss is returned for the last T positions only. Since the context is rebuilt from
    the tokens each time, nothing is carried between calls, so batches may be shuffled.
    """

    loss_chunk_tokens: int | None = None  # build_model sets the config's (loss.py)

    def __init__(self, cfg: TransformerXLConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.context_len = cfg.mem_len if cfg.carry_memory else 0
        self.word_emb = nn.Embedding(vocab_size, cfg.d_model)
        # Dai et al. scale the word embeddings by sqrt(d_model) so that they are on the scale of
        # the unit-amplitude sinusoidal encodings.
        self.emb_scale = math.sqrt(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layer))
        # The global biases u ("r_w_bias") and v ("r_r_bias") of terms (c) and (d), shared by
        # all layers as in the original.
        self.r_w_bias = nn.Parameter(torch.empty(cfg.n_head, cfg.d_head))
        self.r_r_bias = nn.Parameter(torch.empty(cfg.n_head, cfg.d_head))
        # Untied output layer with bias: a plain softmax (no adaptive softmax clusters).
        self.out_layer = nn.Linear(cfg.d_model, vocab_size)
        self.apply(self._init_weights)
        nn.init.normal_(self.r_w_bias, 0.0, INIT_STD)
        nn.init.normal_(self.r_r_bias, 0.0, INIT_STD)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, INIT_STD)
        if isinstance(module, nn.LayerNorm):
            nn.init.normal_(module.weight, 1.0, INIT_STD)
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _run_layers(
        self, tokens: torch.Tensor, memories: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the layer stack on ``tokens`` [B, qlen], attending to ``memories`` if given.

        Returns the final hidden state [B, qlen, d_model] and the list of every layer's input
        (what a following segment would use as memory).
        """
        qlen = tokens.size(1)
        mlen = 0 if memories is None else memories[0].size(1)
        klen = mlen + qlen
        # Query i sits at absolute position mlen + i and may see keys 0 .. mlen + i.
        causal_mask = torch.ones(qlen, klen, dtype=torch.bool, device=tokens.device).triu(
            diagonal=1 + mlen
        )
        distances = torch.arange(klen - 1, -1, -1, device=tokens.device)
        h = self.drop(self.word_emb(tokens) * self.emb_scale)
        pos_enc = self.drop(sinusoidal_encoding(distances, self.cfg.d_model).to(h.dtype))
        layer_inputs = []
        for index, layer in enumerate(self.layers):
            layer_inputs.append(h)
            memory = None if memories is None else memories[index]
            h = layer(h, memory, pos_enc, self.r_w_bias, self.r_r_bias, causal_mask)
        return self.drop(h), layer_inputs

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        seq_len = targets.size(1)
        context = inputs.size(1) - seq_len
        if context < 0 or context > self.context_len:
            raise ValueError(
                f"transformer_xl: got inputs of length {inputs.size(1)} for targets of length "
                f"{seq_len}; expected up to context_len={self.context_len} extra context tokens"
            )
        memories = None
        if context > 0:
            # Stop-gradient memory, as in the segment recurrence: no gradient flows into it.
            with torch.no_grad():
                _, memories = self._run_layers(inputs[:, :context], None)
        hidden, _ = self._run_layers(inputs[:, context:], memories)
        return token_cross_entropy(hidden, self.out_layer, targets, self.loss_chunk_tokens)
