"""``build_optimizer(params, cfg)``: a run config's optimiser section → a ``torch.optim.Optimizer``.

A config is a dict with ``name``, ``lr`` and the parameters its optimiser accepts
(``OPTIMIZER_PARAMETERS[name]``); whatever is left out takes ``OPTIMIZER_DEFAULTS[name]``.
Keys that an optimiser does not use are errors rather than silently ignored, so that a sweep over,
say, ``beta2`` of SGD cannot produce identical runs under different names.

Both tables derive from the registry ``configs.OPTIMIZERS`` (one dataclass per optimiser, with
its fields, defaults and value rules). This module does not import torch; ``build_optimizer``
does, when it builds.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from adamnoise.errors import ConfigError
from adamnoise.optim.configs import INIT_CHOICES, OPTIMIZERS, OptimizerConfig

if TYPE_CHECKING:
    import torch

    from adamnoise.optim.optimizers import ParamsT

__all__ = [
    "INIT_CHOICES",
    "OPTIMIZER_DEFAULTS",
    "OPTIMIZER_PARAMETERS",
    "REQUIRED_KEYS",
    "build_optimizer",
    "optimizer_config",
    "resolve_optimizer_config",
]

REQUIRED_KEYS = ("name", "lr")

# name -> the default of every parameter (all but the required keys)
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {f.name: f.default for f in dataclasses.fields(config) if f.name not in REQUIRED_KEYS}
    for name, config in OPTIMIZERS.items()
}

# name -> every key its config may contain (the config validator uses this)
OPTIMIZER_PARAMETERS: dict[str, set[str]] = {
    name: {"name"} | {f.name for f in dataclasses.fields(config)}
    for name, config in OPTIMIZERS.items()
}


def optimizer_config(cfg: dict[str, Any]) -> OptimizerConfig:
    """The validated configuration object of an optimiser section.

    Raises ``ConfigError`` naming the offending key (``optimizer.<key>``) and, for unknown names and
    keys, the allowed values.
    """
    if not isinstance(cfg, dict):
        raise ConfigError("optimizer", f"expected a mapping, got {cfg!r}")
    for key in REQUIRED_KEYS:
        if key not in cfg:
            raise ConfigError(f"optimizer.{key}", "required key is missing")
    name = cfg["name"]
    if name not in OPTIMIZERS:
        raise ConfigError(
            "optimizer.name", f"unknown optimizer {name!r}; allowed: {sorted(OPTIMIZERS)}"
        )
    return OPTIMIZERS[name].from_dict(cfg)


def resolve_optimizer_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check an optimiser config and return it with every default filled in (``cfg`` is left
    alone); raises as ``optimizer_config``."""
    return optimizer_config(cfg).to_dict()


def build_optimizer(
    params: ParamsT, cfg: dict[str, Any], fused: bool = False
) -> torch.optim.Optimizer:
    """The optimiser that ``cfg`` describes, over ``params`` (tensors or param-group dicts).

    ``fused=True`` (the trainer asks for it on CUDA): plain Adam or AdamW — bias correction, zero
    initialisation, no Gclip — is built as ``torch.optim.Adam``/``AdamW(fused=True)``, one kernel
    for all parameters instead of about ten per parameter. It is the same update (seed 000 Def.
    3.1, ε added to the corrected √v̂), held equal to ours by tests/test_optim_reference.py; every
    other configuration, and every CPU run, uses ours.
    """
    config = optimizer_config(cfg)
    if fused and fused_kernel_applies(config):
        import torch

        kind = torch.optim.AdamW if config.decoupled_weight_decay else torch.optim.Adam
        optimizer = kind(
            params,
            lr=config.lr,
            betas=(config.beta1, config.beta2),
            eps=config.eps,
            weight_decay=config.weight_decay,
            fused=True,
        )
        optimizer.last_step_stats = {}  # nothing is clipped
        return optimizer
    return config.build(params)


def fused_kernel_applies(config: OptimizerConfig) -> bool:
    """Whether torch's fused Adam computes exactly this configuration's update."""
    return (
        config.name in ("adam", "adamw")
        and config.bias_correction
        and config.init == "zero"
        and config.grad_clip_norm is None
    )
