"""Language models of the seeds, behind one interface.

``model = build_model(model_cfg, vocab_size)``; ``loss = model(inputs, targets)`` returns the
per-token cross-entropy [batch, seq_len] in float32; ``model.context_len`` is the number of
preceding tokens the model wants in front of each sequence (0 except Transformer-XL with
``carry_memory``). See docs/architecture.md, "Model interface".

- ``transformer_xl`` (:mod:`.transformer_xl`): seed 000's Transformer-XL (Dai et al. 2019).
- ``gpt`` (:mod:`.gpt`): seeds 002/003's GPT with RoPE, RMSNorm, SwiGLU.
- ``nanogpt`` (:mod:`.gpt`): seed 004's nanoGPT (shakespeare_char).

Configurations and presets (:mod:`.configs`, :mod:`.presets`) are torch-free, so that the
workflow validates configs without importing torch; the names below that need torch are
imported on first use.
"""

from adamnoise.lazy import lazy_getattr

from .configs import CONFIGS, GPTConfig, NanoGPTConfig, TransformerXLConfig
from .presets import MODEL_PARAMETERS, PRESETS, context_len_of, resolve_model_config

# submodule -> the names it defines; imported (with torch) when one is first accessed
_WITH_TORCH = {
    "build": ("ARCHITECTURES", "build_model", "count_parameters"),
    "gpt": ("GPT", "NanoGPT"),
    "transformer_xl": ("TransformerXL",),
}


__getattr__ = lazy_getattr(__name__, _WITH_TORCH)


__all__ = [
    "ARCHITECTURES",
    "CONFIGS",
    "GPT",
    "GPTConfig",
    "MODEL_PARAMETERS",
    "NanoGPT",
    "NanoGPTConfig",
    "PRESETS",
    "TransformerXL",
    "TransformerXLConfig",
    "build_model",
    "context_len_of",
    "count_parameters",
    "resolve_model_config",
]
