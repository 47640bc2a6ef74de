"""Named model configurations and their validation, torch-free (``build.build_model`` builds them).

A model config is a dict: ``{"arch": ..., <that architecture's fields>}`` or ``{"preset": name}``
with optional overrides of the preset's fields. ``resolve_model_config`` turns either into the
complete, validated field dict (every default filled in, so it can be stored as provenance);
``build.build_model`` builds the module from it. The sequence length is not a model field: it is
``data.seq_len`` of the run config. Only architectures with a hard maximum (nanoGPT's learned
positions, the rotary cache of ``gpt``) have ``max_seq_len``; a longer input raises a ValueError.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .configs import CONFIGS

# The fields each architecture accepts (besides "arch"), for validating experiment configs.
MODEL_PARAMETERS: dict[str, set[str]] = {
    arch: {field.name for field in dataclasses.fields(config_cls)}
    for arch, config_cls in CONFIGS.items()
}

PRESETS: dict[str, dict[str, Any]] = {
    # Seed 000, Sec. 4: Transformer-XL on WikiText-2 as in Kunstner et al. (2023), who follow
    # Dai et al. (2019): ~54.6 M parameters with the 33,278-word vocabulary. tgt_len 128 is the
    # run's data.seq_len; memory is not carried between batches, as in their code.
    "txl-paper": {
        "arch": "transformer_xl",
        "n_layer": 6,
        "d_model": 512,
        "n_head": 8,
        "d_head": 64,
        "d_inner": 2048,
        "dropout": 0.1,
        "dropatt": 0.0,
        "mem_len": 128,
        "carry_memory": False,
        # 2,048 x 33,278 float32 logits (270 MB) at a time instead of a micro-batch's 1.1 GB
        "loss_chunk_tokens": 2048,
    },
    # Same architecture, small enough to train in seconds on a CPU (tests, smoke runs).
    "txl-tiny": {
        "arch": "transformer_xl",
        "n_layer": 2,
        "d_model": 64,
        "n_head": 2,
        "d_head": 32,
        "d_inner": 128,
        "dropout": 0.1,
        "dropatt": 0.0,
        "mem_len": 32,
        "carry_memory": False,
    },
    # Seeds 002 (App. B) and 003 (App. A): their smallest, "160M" model (Pythia-160m shape:
    # 12 layers, 12 heads, width 768) with RoPE on 25 % of the head dimensions, RMSNorm,
    # SwiGLU with expansion 8/3, no weight tying, no dropout, sequences up to 2048 tokens.
    "gpt-small": {
        "arch": "gpt",
        "n_layer": 12,
        "d_model": 768,
        "n_head": 12,
        "d_mlp": 2048,
        "rotary_fraction": 0.25,
        "rotary_base": 10000.0,
        "tie_embeddings": False,
        "dropout": 0.0,
        "max_seq_len": 2048,
    },
    "gpt-tiny": {
        "arch": "gpt",
        "n_layer": 2,
        "d_model": 64,
        "n_head": 2,
        "d_mlp": 176,
        "rotary_fraction": 0.25,
        "rotary_base": 10000.0,
        "tie_embeddings": False,
        "dropout": 0.0,
        "max_seq_len": 256,
    },
    # Seed 004, App. H: nanoGPT on shakespeare_char (6 layers, 6 heads, n_embd 384, block 256,
    # dropout 0.2); bias off as in nanoGPT's train.py, which the shakespeare_char config keeps.
    "nanogpt-shakespeare-char": {
        "arch": "nanogpt",
        "n_layer": 6,
        "d_model": 384,
        "n_head": 6,
        "max_seq_len": 256,
        "dropout": 0.2,
        "bias": False,
        "tie_embeddings": True,
    },
    "nanogpt-tiny": {
        "arch": "nanogpt",
        "n_layer": 2,
        "d_model": 64,
        "n_head": 2,
        "max_seq_len": 256,
        "dropout": 0.2,
        "bias": False,
        "tie_embeddings": True,
    },
}

# Python types accepted for each annotation used in the config dataclasses.
_ACCEPTED_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "int | None": (int, type(None)),
}


def resolve_model_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Expand ``preset``, apply overrides, validate, and return all fields with ``arch``.

    Raises ValueError for an unknown preset or architecture, for a key the architecture does not
    have (naming the allowed ones), for a value of the wrong type, or for inconsistent sizes.
    """
    cfg = dict(cfg)
    preset = cfg.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}")
        cfg = {**PRESETS[preset], **cfg}
    arch = cfg.pop("arch", None)
    if arch not in CONFIGS:
        raise ValueError(f"model config needs 'arch' in {sorted(CONFIGS)}, got {arch!r}")

    config_cls = CONFIGS[arch]
    allowed = MODEL_PARAMETERS[arch]
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(
            f"unknown model field(s) {unknown} for arch {arch!r}; allowed: "
            f"{sorted(allowed | {'arch', 'preset'})}"
        )
    annotations = {field.name: field.type for field in dataclasses.fields(config_cls)}
    for name, value in cfg.items():
        accepted = _ACCEPTED_TYPES[annotations[name]]
        # bool is a subclass of int in Python; "n_layer: true" is still a mistake.
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            raise ValueError(
                f"model field {name!r} of arch {arch!r} must be {annotations[name]}, got {value!r}"
            )
    config = config_cls(**cfg)  # __post_init__ checks sizes and fills derived defaults
    return {"arch": arch, **dataclasses.asdict(config)}


def context_len_of(cfg: dict[str, Any]) -> int:
    """Stream tokens a model reads before each sequence (Transformer-XL's memory; else 0)."""
    resolved = resolve_model_config(cfg)
    if resolved["arch"] == "transformer_xl" and resolved.get("carry_memory"):
        return int(resolved["mem_len"])
    return 0
