"""``build_optimizer(params, cfg)``: a run config's optimiser section → a ``torch.optim.Optimizer``.

A config is a dict with ``name``, ``lr`` and the parameters its optimiser accepts
(``OPTIMIZER_PARAMETERS[name]``); whatever is left out takes ``OPTIMIZER_DEFAULTS[name]``.
Keys that an optimiser does not use are errors rather than silently ignored, so that a sweep over,
say, ``beta2`` of SGD cannot produce identical runs under different names.

Naming: ``beta1`` is the momentum factor of every method (SGD's μ, Signum's β, k-Adam's γ̃),
``beta2`` the second-moment factor (k-Adam's β̃).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from adamnoise.optim.functional import KADAM_STRATEGIES
from adamnoise.optim.optimizers import (
    Adam,
    EMASign,
    KAdam,
    ParamsT,
    RMSprop,
    SGDMomentum,
    SignSGD,
    Signum,
)

INIT_CHOICES = ("zero", "gradient")  # seed 003 App. B.5: ZI (default) or GI moving averages

_ADAM = {
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "bias_correction": True,
    "init": "zero",
    "grad_clip_norm": None,
}

OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": dict(_ADAM),
    "adamw": dict(_ADAM),
    "sgd": {
        "beta1": 0.9,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "grad_clip_norm": None,
        "coordinate_clip": None,
        "coordinate_clip_fraction": None,
    },
    "signum": {"beta1": 0.9, "weight_decay": 0.0, "init": "zero", "grad_clip_norm": None},
    "signsgd": {"weight_decay": 0.0, "grad_clip_norm": None},
    "emasign": {"beta1": 0.9, "weight_decay": 0.0, "init": "zero", "grad_clip_norm": None},
    "rmsprop": {
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "bias_correction": True,
        "grad_clip_norm": None,
    },
    "kadam": {
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-30,
        "weight_decay": 0.0,
        "k": 2,
        "strategy": "inverse_exp",
        "coupled_weight_decay": False,
        "grad_clip_norm": None,
    },
}

REQUIRED_KEYS = ("name", "lr")

# name -> every key its config may contain (the config validator uses this)
OPTIMIZER_PARAMETERS: dict[str, set[str]] = {
    name: set(REQUIRED_KEYS) | set(defaults) for name, defaults in OPTIMIZER_DEFAULTS.items()
}


def _fail(key: str, message: str) -> ValueError:
    return ValueError(f"optimizer.{key}: {message}")


def _number(cfg: dict[str, Any], key: str) -> float:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (YAML reads 1e-3 as a string: write 1.0e-3)" if isinstance(value, str) else ""
        raise _fail(key, f"must be a number, got {value!r}{hint}")
    if not math.isfinite(value):
        raise _fail(key, f"must be finite, got {value!r}")
    return float(value)


def _check_values(cfg: dict[str, Any]) -> None:
    """Raise ValueError naming the first key whose value is out of range."""
    name = cfg["name"]
    if not _number(cfg, "lr") > 0:
        raise _fail("lr", f"must be > 0, got {cfg['lr']!r}")
    for key in ("beta1", "beta2"):
        if key in cfg and not 0.0 <= _number(cfg, key) < 1.0:
            raise _fail(key, f"must be in [0, 1), got {cfg[key]!r}")
    for key in ("eps", "weight_decay"):
        if key in cfg and not _number(cfg, key) >= 0:
            raise _fail(key, f"must be >= 0, got {cfg[key]!r}")
    if "dampening" in cfg and not 0.0 <= _number(cfg, "dampening") <= 1.0:
        raise _fail("dampening", f"must be in [0, 1], got {cfg['dampening']!r}")
    for key in ("grad_clip_norm", "coordinate_clip"):
        if cfg.get(key) is not None and not _number(cfg, key) > 0:
            raise _fail(key, f"must be > 0 or null, got {cfg[key]!r}")
    if cfg.get("coordinate_clip_fraction") is not None:
        if not 0.0 < _number(cfg, "coordinate_clip_fraction") < 1.0:
            raise _fail(
                "coordinate_clip_fraction",
                f"must be in (0, 1) or null, got {cfg['coordinate_clip_fraction']!r}",
            )
        if cfg.get("coordinate_clip") is not None:
            raise _fail("coordinate_clip_fraction", "give coordinate_clip or this, not both")
    for key in ("bias_correction", "coupled_weight_decay"):
        if key in cfg and not isinstance(cfg[key], bool):
            raise _fail(key, f"must be true or false, got {cfg[key]!r}")
    if "init" in cfg:
        if cfg["init"] not in INIT_CHOICES:
            raise _fail("init", f"must be one of {INIT_CHOICES}, got {cfg['init']!r}")
        if cfg["init"] == "gradient" and cfg.get("bias_correction") is True:
            raise _fail(
                "init",
                f"'gradient' needs bias_correction: false for {name} (seed 003 Table 3 pairs GI "
                "with -BC; bias correction undoes zero initialisation)",
            )
    if "k" in cfg and (isinstance(cfg["k"], bool) or not isinstance(cfg["k"], int) or cfg["k"] < 1):
        raise _fail("k", f"must be an integer >= 1, got {cfg['k']!r}")
    if "strategy" in cfg and cfg["strategy"] not in KADAM_STRATEGIES:
        raise _fail("strategy", f"must be one of {KADAM_STRATEGIES}, got {cfg['strategy']!r}")


def resolve_optimizer_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check an optimiser config and return it with every default filled in.

    Raises ValueError naming the offending key (``optimizer.<key>``) and, for unknown names and
    keys, the allowed values.
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"optimizer: expected a mapping, got {cfg!r}")
    for key in REQUIRED_KEYS:
        if key not in cfg:
            raise _fail(key, "required key is missing")
    name = cfg["name"]
    if name not in OPTIMIZER_DEFAULTS:
        raise _fail("name", f"unknown optimizer {name!r}; allowed: {sorted(OPTIMIZER_DEFAULTS)}")
    allowed = OPTIMIZER_PARAMETERS[name]
    for key in cfg:
        if key not in allowed:
            raise _fail(key, f"not a parameter of {name!r}; allowed: {sorted(allowed)}")
    resolved = {"name": name, **OPTIMIZER_DEFAULTS[name], **cfg}
    _check_values(resolved)
    return resolved


def build_optimizer(params: ParamsT, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimiser that ``cfg`` describes, over ``params`` (tensors or param-group dicts)."""
    c = resolve_optimizer_config(cfg)
    name, lr, clip = c["name"], float(c["lr"]), c["grad_clip_norm"]
    if name in ("adam", "adamw"):
        return Adam(
            params,
            lr=lr,
            betas=(c["beta1"], c["beta2"]),
            eps=c["eps"],
            weight_decay=c["weight_decay"],
            decoupled_weight_decay=name == "adamw",
            bias_correction=c["bias_correction"],
            gradient_init=c["init"] == "gradient",
            grad_clip_norm=clip,
        )
    if name == "rmsprop":
        return RMSprop(
            params,
            lr=lr,
            beta2=c["beta2"],
            eps=c["eps"],
            weight_decay=c["weight_decay"],
            bias_correction=c["bias_correction"],
            grad_clip_norm=clip,
        )
    if name == "sgd":
        return SGDMomentum(
            params,
            lr=lr,
            momentum=c["beta1"],
            dampening=c["dampening"],
            weight_decay=c["weight_decay"],
            coordinate_clip=c["coordinate_clip"],
            coordinate_clip_fraction=c["coordinate_clip_fraction"],
            grad_clip_norm=clip,
        )
    if name in ("signum", "emasign"):
        cls = Signum if name == "signum" else EMASign
        return cls(
            params,
            lr=lr,
            momentum=c["beta1"],
            weight_decay=c["weight_decay"],
            gradient_init=c["init"] == "gradient",
            grad_clip_norm=clip,
        )
    if name == "signsgd":
        return SignSGD(params, lr=lr, weight_decay=c["weight_decay"], grad_clip_norm=clip)
    if name == "kadam":
        return KAdam(
            params,
            lr=lr,
            k=c["k"],
            betas=(c["beta1"], c["beta2"]),
            strategy=c["strategy"],
            eps=c["eps"],
            weight_decay=c["weight_decay"],
            coupled_weight_decay=c["coupled_weight_decay"],
            grad_clip_norm=clip,
        )
    raise AssertionError(f"optimizer {name!r} has defaults but no constructor")  # a bug here
