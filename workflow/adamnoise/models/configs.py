"""The models' configurations, torch-free: the workflow validates model configs when it parses
(``presets.resolve_model_config``) without importing torch; the modules in ``gpt.py`` and
``transformer_xl.py`` are built from these."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TransformerXLConfig:
    """Fields of the Transformer-XL; the defaults are seed 000's model (preset ``txl-paper``)."""

    n_layer: int = 6
    d_model: int = 512
    n_head: int = 8
    d_head: int = 64
    d_inner: int = 2048
    dropout: float = 0.1  # on embeddings, attention output, feed-forward and final hidden state
    dropatt: float = 0.0  # on attention probabilities
    mem_len: int = 128  # hidden states kept per layer when carry_memory is on
    carry_memory: bool = False  # Kunstner et al. did not carry memory between batches
    loss_chunk_tokens: int | None = None  # softmax over this many tokens at a time (loss.py)

    def __post_init__(self):
        for name in ("n_layer", "d_model", "n_head", "d_head", "d_inner"):
            if getattr(self, name) < 1:
                raise ValueError(f"transformer_xl: {name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % 2:
            raise ValueError("transformer_xl: d_model must be even (sinusoidal encodings)")
        if self.mem_len < 0:
            raise ValueError(f"transformer_xl: mem_len must be >= 0, got {self.mem_len}")
        if self.carry_memory and self.mem_len == 0:
            raise ValueError("transformer_xl: carry_memory needs mem_len > 0")
        for name in ("dropout", "dropatt"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"transformer_xl: {name} must be in [0, 1)")
        _check_chunk("transformer_xl", self.loss_chunk_tokens)


@dataclass
class GPTConfig:
    """Modern GPT of seeds 002/003; defaults are their smallest (160 M, Pythia-160m-like) model."""

    n_layer: int = 12
    d_model: int = 768
    n_head: int = 12
    # SwiGLU hidden width; None means 8/3 · d_model (the seeds' expansion factor), rounded up to
    # a multiple of 16 (2048 for d_model 768).
    d_mlp: int | None = None
    rotary_fraction: float = 0.25  # share of each head's dimensions that RoPE rotates
    rotary_base: float = 10000.0
    tie_embeddings: bool = False
    dropout: float = 0.0
    max_seq_len: int = 2048  # length of the rotary cache
    loss_chunk_tokens: int | None = None  # softmax over this many tokens at a time (loss.py)

    def __post_init__(self):
        _check_common("gpt", self.n_layer, self.d_model, self.n_head, self.max_seq_len)
        _check_dropout("gpt", self.dropout)
        _check_chunk("gpt", self.loss_chunk_tokens)
        if self.d_mlp is None:
            self.d_mlp = 16 * math.ceil(8 * self.d_model / 3 / 16)
        if self.d_mlp < 1:
            raise ValueError(f"gpt: d_mlp must be >= 1, got {self.d_mlp}")
        if not 0.0 < self.rotary_fraction <= 1.0:
            raise ValueError(f"gpt: rotary_fraction must be in (0, 1], got {self.rotary_fraction}")
        if rotary_dim(self.d_model // self.n_head, self.rotary_fraction) < 2:
            raise ValueError("gpt: rotary_fraction rotates fewer than 2 dimensions per head")


@dataclass
class NanoGPTConfig:
    """Karpathy's nanoGPT; defaults are seed 004's shakespeare_char model (~10.65 M parameters)."""

    n_layer: int = 6
    d_model: int = 384  # nanoGPT's n_embd
    n_head: int = 6
    max_seq_len: int = 256  # nanoGPT's block_size: the number of learned positions
    dropout: float = 0.2
    # nanoGPT's train.py defaults to bias=False and config/train_shakespeare_char.py keeps it;
    # its "10.65M parameters" for shakespeare_char is the count without biases.
    bias: bool = False
    tie_embeddings: bool = True
    loss_chunk_tokens: int | None = None  # softmax over this many tokens at a time (loss.py)

    def __post_init__(self):
        _check_common("nanogpt", self.n_layer, self.d_model, self.n_head, self.max_seq_len)
        _check_dropout("nanogpt", self.dropout)
        _check_chunk("nanogpt", self.loss_chunk_tokens)


def _check_common(arch: str, n_layer: int, d_model: int, n_head: int, max_seq_len: int) -> None:
    for name, value in (("n_layer", n_layer), ("d_model", d_model), ("n_head", n_head)):
        if value < 1:
            raise ValueError(f"{arch}: {name} must be >= 1, got {value}")
    if d_model % n_head:
        raise ValueError(f"{arch}: d_model ({d_model}) must be divisible by n_head ({n_head})")
    if max_seq_len < 1:
        raise ValueError(f"{arch}: max_seq_len must be >= 1, got {max_seq_len}")


def _check_dropout(arch: str, dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{arch}: dropout must be in [0, 1), got {dropout}")


def _check_chunk(arch: str, chunk: int | None) -> None:
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"{arch}: loss_chunk_tokens must be null or an integer >= 1, got {chunk}")


def rotary_dim(head_dim: int, fraction: float) -> int:
    """Number of rotated dimensions per head: the fraction of head_dim, rounded down to even."""
    return 2 * int(head_dim * fraction / 2)


# architecture name -> its configuration class
CONFIGS: dict[str, type] = {
    "transformer_xl": TransformerXLConfig,
    "gpt": GPTConfig,
    "nanogpt": NanoGPTConfig,
}
