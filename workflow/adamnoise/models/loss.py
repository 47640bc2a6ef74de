"""The output layer and per-token cross-entropy of every model, optionally in chunks of tokens.

With a large vocabulary the float32 logits dominate memory: txl-paper's micro-batch of 64 x 128
tokens over 33,278 words is 1.1 GB of logits, and as much again for their gradient. With
``loss_chunk_tokens: C`` the tokens go through the output layer and the softmax C at a time, each
chunk under activation checkpointing, so that no more than C x V logits exist at once, in the
forward or the backward pass; the backward recomputes each chunk's logits (one more output-layer
matmul). The per-token losses and the gradients are those of the whole-batch computation up to
float rounding (tests/test_models.py). Activation checkpointing does not run under ``torch.vmap``:
a model that chunks is never stacked (training/stacked.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _chunk_loss(hidden, targets, weight, bias):
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, targets, reduction="none")


def token_cross_entropy(
    hidden: torch.Tensor,
    output_layer: torch.nn.Linear,
    targets: torch.Tensor,
    chunk_tokens: int | None = None,
) -> torch.Tensor:
    """Per-token cross-entropy ``[*targets.shape]`` (float32) of ``output_layer(hidden)``."""
    flat_hidden = hidden.flatten(0, -2)
    flat_targets = targets.flatten()
    weight, bias = output_layer.weight, output_layer.bias
    if chunk_tokens is None or flat_hidden.size(0) <= chunk_tokens:
        return _chunk_loss(flat_hidden, flat_targets, weight, bias).view_as(targets)
    pieces = [
        checkpoint(
            _chunk_loss,
            flat_hidden[start : start + chunk_tokens],
            flat_targets[start : start + chunk_tokens],
            weight,
            bias,
            use_reentrant=False,
        )
        for start in range(0, flat_hidden.size(0), chunk_tokens)
    ]
    return torch.cat(pieces).view_as(targets)
