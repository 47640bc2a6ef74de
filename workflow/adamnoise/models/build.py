"""``build_model``: the torch module of a (preset or complete) model config."""

from __future__ import annotations

from typing import Any

from torch import nn

from .configs import CONFIGS
from .gpt import GPT, NanoGPT
from .presets import resolve_model_config
from .transformer_xl import TransformerXL

# architecture name -> its module class (configurations: configs.CONFIGS)
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "transformer_xl": TransformerXL,
    "gpt": GPT,
    "nanogpt": NanoGPT,
}


def build_model(cfg: dict[str, Any], vocab_size: int) -> nn.Module:
    """Build the language model described by ``cfg`` (see :func:`resolve_model_config`).

    Weights are drawn from torch's global generator: seed it (``torch.manual_seed``) first for a
    reproducible initialisation. The model is built on the CPU in float32.
    """
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    fields = resolve_model_config(cfg)
    arch = fields.pop("arch")
    config = CONFIGS[arch](**fields)
    model = ARCHITECTURES[arch](config, vocab_size)
    model.loss_chunk_tokens = config.loss_chunk_tokens  # read by the loss (loss.py)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars; a tied weight counts once (``parameters()`` deduplicates)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
