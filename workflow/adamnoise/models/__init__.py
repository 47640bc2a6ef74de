"""Language models of the seeds, behind one interface.

``model = build_model(model_cfg, vocab_size)``; ``loss = model(inputs, targets)`` returns the
per-token cross-entropy [batch, seq_len] in float32; ``model.context_len`` is the number of
preceding tokens the model wants in front of each sequence (0 except Transformer-XL with
``carry_memory``). See docs/architecture.md, "Model interface".

- ``transformer_xl`` (:mod:`.transformer_xl`): seed 000's Transformer-XL (Dai et al. 2019).
- ``gpt`` (:mod:`.gpt`): seeds 002/003's GPT with RoPE, RMSNorm, SwiGLU.
- ``nanogpt`` (:mod:`.gpt`): seed 004's nanoGPT (shakespeare_char).
"""

from .gpt import GPT, GPTConfig, NanoGPT, NanoGPTConfig
from .presets import (
    ARCHITECTURES,
    MODEL_PARAMETERS,
    PRESETS,
    build_model,
    count_parameters,
    resolve_model_config,
)
from .transformer_xl import TransformerXL, TransformerXLConfig

__all__ = [
    "ARCHITECTURES",
    "GPT",
    "GPTConfig",
    "MODEL_PARAMETERS",
    "NanoGPT",
    "NanoGPTConfig",
    "PRESETS",
    "TransformerXL",
    "TransformerXLConfig",
    "build_model",
    "count_parameters",
    "resolve_model_config",
]
