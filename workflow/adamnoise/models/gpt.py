"""Decoder-only GPT language models: a modern variant (seeds 002/003) and nanoGPT (seed 004).

Both are pre-norm stacks of ``x = x + attn(norm(x)); x = x + mlp(norm(x))`` with causal
self-attention through ``F.scaled_dot_product_attention``; they differ in their parts:

=================  ===================================  =========================================
                   ``arch: gpt`` (:class:`GPT`)          ``arch: nanogpt`` (:class:`NanoGPT`)
=================  ===================================  =========================================
seed               002 App. B, 003 App. A ("nanoGPT     004 App. H (Karpathy's nanoGPT,
                   with RoPE, RMSNorm, SwiGLU")          shakespeare_char)
positions          rotary (RoPE) on a fraction of each   learned absolute embeddings
                   head's dimensions (25 % in seeds)
normalisation      RMSNorm                               LayerNorm
MLP                SwiGLU (hidden 8/3 · d_model)         GELU (hidden 4 · d_model)
biases             none                                  optional (nanoGPT's train.py: off)
embeddings         untied (seeds: "no weight tying")     tied
dropout            off (seeds: disabled)                 0.2 in shakespeare_char
=================  ===================================  =========================================

Initialisation (both): weights N(0, 0.02), biases zero, and the two residual output projections
per block N(0, 0.02 / sqrt(2 · n_layer)) (seeds 002/003 App. "Initialization"; GPT-2 / nanoGPT).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configs import GPTConfig, NanoGPTConfig, rotary_dim
from .loss import token_cross_entropy

INIT_STD = 0.02


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al., RoFormer, eq. 34) on the first ``dim`` dims of a head.

    Dimension pairs (x_k, x_{k + dim/2}) (GPT-NeoX's "rotate half" layout) are rotated by the
    angle p · θ_k at position p, with θ_k = base^(-2k/dim). A query at p and a key at p' then
    meet as q · R(p' - p) k: the score depends on the relative position only. The remaining
    head dimensions pass through unrotated (partial rotary, GPT-NeoX / Pythia).
    """

    def __init__(self, dim: int, max_seq_len: int, base: float = 10000.0):
        super().__init__()
        self.dim = dim
        self.max_seq_len = max_seq_len
        inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)
        # Not persistent: recomputed from the config, so checkpoints hold only learned weights.
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Rotate ``x`` [..., T, head_dim] whose positions are start, ..., start + T - 1."""
        length = x.size(-2)
        if start + length > self.max_seq_len:
            raise ValueError(
                f"sequence of length {start + length} exceeds max_seq_len={self.max_seq_len} "
                "(the rotary cache); raise the model's max_seq_len"
            )
        cos = self.cos[start : start + length].to(x.dtype)
        sin = self.sin[start : start + length].to(x.dtype)
        half = self.dim // 2
        x1, x2, rest = x[..., :half], x[..., half : self.dim], x[..., self.dim :]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; RoPE on queries and keys when ``rotary`` is given."""

    def __init__(self, d_model, n_head, bias, dropout, rotary: RotaryEmbedding | None = None):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.c_proj = nn.Linear(d_model, d_model, bias=bias)  # residual projection
        self.resid_dropout = nn.Dropout(dropout)
        self.dropout = dropout
        self.rotary = rotary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.c_attn(x).split(width, dim=-1)
        q, k, v = (t.view(batch, length, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).reshape(batch, length, width)
        return self.resid_dropout(self.c_proj(y))


class SwiGLU(nn.Module):
    """``W_2 (SiLU(W_1 x) ⊙ W_3 x)`` (Shazeer 2020, "FFN_SwiGLU"), without biases.

    W_1 and W_3 are stored as one matrix ``c_fc`` of 2·d_mlp rows so that one matmul does both.
    """

    def __init__(self, d_model: int, d_mlp: int, dropout: float):
        super().__init__()
        self.c_fc = nn.Linear(d_model, 2 * d_mlp, bias=False)
        self.c_proj = nn.Linear(d_mlp, d_model, bias=False)  # residual projection
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.c_fc(x).chunk(2, dim=-1)
        return self.dropout(self.c_proj(F.silu(gate) * up))


class GeluMLP(nn.Module):
    """nanoGPT's MLP: ``W_2 GELU(W_1 x + b_1) + b_2`` with hidden width 4·d_model."""

    def __init__(self, d_model: int, bias: bool, dropout: float):
        super().__init__()
        self.c_fc = nn.Linear(d_model, 4 * d_model, bias=bias)
        self.c_proj = nn.Linear(4 * d_model, d_model, bias=bias)  # residual projection
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(norm_1(x))``, then ``x + mlp(norm_2(x))``."""

    def __init__(self, norm_1: nn.Module, attn: nn.Module, norm_2: nn.Module, mlp: nn.Module):
        super().__init__()
        self.norm_1, self.attn, self.norm_2, self.mlp = norm_1, attn, norm_2, mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x))
        return x + self.mlp(self.norm_2(x))


class _DecoderLM(nn.Module):
    """What both GPTs share: token embedding, blocks, final norm, head, init and the loss.

    Subclasses build ``self.blocks`` and ``self.norm_f`` and may override :meth:`embed`.
    """

    context_len = 0  # no preceding context needed: inputs and targets have the same length
    loss_chunk_tokens: int | None = None  # build_model sets the config's (loss.py)

    def __init__(self, vocab_size: int, d_model: int, max_seq_len: int, tie_embeddings: bool):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight

    def _init_weights(self, n_layer: int) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        # Scaled init of the projections that write into the residual stream keeps its variance
        # from growing with depth (GPT-2; seeds 002/003 App. "Initialization").
        for block in self.blocks:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(proj.weight, 0.0, INIT_STD / math.sqrt(2 * n_layer))

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.tok_emb(inputs)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if inputs.shape != targets.shape:
            raise ValueError(
                f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must have the "
                "same shape (this model has context_len 0)"
            )
        if inputs.size(1) > self.max_seq_len:
            raise ValueError(
                f"sequence length {inputs.size(1)} exceeds the model's max_seq_len="
                f"{self.max_seq_len}; raise max_seq_len in the model config"
            )
        x = self.embed(inputs)
        for block in self.blocks:
            x = block(x)
        return token_cross_entropy(self.norm_f(x), self.lm_head, targets, self.loss_chunk_tokens)


class GPT(_DecoderLM):
    """Modern GPT (``arch: gpt``): RoPE, RMSNorm, SwiGLU, no biases, pre-norm."""

    def __init__(self, cfg: GPTConfig, vocab_size: int):
        super().__init__(vocab_size, cfg.d_model, cfg.max_seq_len, cfg.tie_embeddings)
        self.cfg = cfg
        head_dim = cfg.d_model // cfg.n_head
        # One rotary cache shared by all layers (it holds no parameters).
        rotary = RotaryEmbedding(
            rotary_dim(head_dim, cfg.rotary_fraction), cfg.max_seq_len, cfg.rotary_base
        )
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(
                nn.RMSNorm(cfg.d_model, eps=1e-6),
                CausalSelfAttention(cfg.d_model, cfg.n_head, False, cfg.dropout, rotary),
                nn.RMSNorm(cfg.d_model, eps=1e-6),
                SwiGLU(cfg.d_model, cfg.d_mlp, cfg.dropout),
            )
            for _ in range(cfg.n_layer)
        )
        self.norm_f = nn.RMSNorm(cfg.d_model, eps=1e-6)
        self._init_weights(cfg.n_layer)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.emb_dropout(self.tok_emb(inputs))


class NanoGPT(_DecoderLM):
    """Karpathy's nanoGPT (``arch: nanogpt``): learned positions, LayerNorm, GELU, tied head."""

    def __init__(self, cfg: NanoGPTConfig, vocab_size: int):
        super().__init__(vocab_size, cfg.d_model, cfg.max_seq_len, cfg.tie_embeddings)
        self.cfg = cfg
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(
                nn.LayerNorm(cfg.d_model, bias=cfg.bias),
                CausalSelfAttention(cfg.d_model, cfg.n_head, cfg.bias, cfg.dropout),
                nn.LayerNorm(cfg.d_model, bias=cfg.bias),
                GeluMLP(cfg.d_model, cfg.bias, cfg.dropout),
            )
            for _ in range(cfg.n_layer)
        )
        self.norm_f = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self._init_weights(cfg.n_layer)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(inputs.size(1), device=inputs.device)
        return self.emb_dropout(self.tok_emb(inputs) + self.pos_emb(positions))
