"""Learning-rate schedules as multipliers: ``build_schedule(cfg, total_steps)(t)`` scales ``lr``.

``t`` is the 0-based index of the optimiser step about to be taken, which is what
``torch.optim.lr_scheduler.LambdaLR`` passes (0 at construction, +1 per ``scheduler.step()``). The
formulas below use s = t + 1, the 1-based number of that step, and T = ``total_steps``; they are the
schedules of seeds 002/003's training code (plainLM's ``WarmupCosine`` and ``WSD`` evaluated at s,
starting from 0), so the first step already has a non-zero rate and step T ends at ``min_ratio``.
Steps past T keep the final value.

* ``constant`` (seed 000: "no schedule"): 1.
* ``warmup_cosine`` (seeds 002, 003: "linear warm-up for 10% of the training steps, followed by
  cosine annealing"): s/W for s ≤ W, then r + (1 − r)·½(1 + cos(π (s − W)/(T − W))).
* ``wsd`` warm-up–stable–decay (seed 002 §2.3 and App. D, citing Hägele et al. 2024): s/W for
  s ≤ W, 1 until the decay starts at S = T − D, then 1 − (1 − r)·φ((s − S)/D) with φ(x) = x
  (``linear``, the shape of seed 002's code) or √x (``1-sqrt``, the shape Hägele et al. recommend).
  Seed 002 fixes the warm-up at 2000 steps but does not state the decay length; the default
  ``decay_fraction`` 0.2 is Hägele et al.'s 20 % cool-down.

W is ``warmup_steps`` or round(``warmup_fraction``·T) (give one of the two), D = round(
``decay_fraction``·T), r = ``min_ratio`` (the final rate as a fraction of ``lr``; seed 002's cosine
ends at an absolute 1e-5, i.e. r = 1e-5 / lr).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from adamnoise.errors import ConfigError

SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "constant": {},
    "warmup_cosine": {"warmup_fraction": 0.1, "warmup_steps": None, "min_ratio": 0.0},
    "wsd": {
        "warmup_fraction": None,
        "warmup_steps": None,
        "decay_fraction": 0.2,
        "decay_shape": "linear",
        "min_ratio": 0.0,
    },
}
DECAY_SHAPES = ("linear", "1-sqrt")

# name -> every key its config may contain (the config validator uses this)
SCHEDULE_PARAMETERS: dict[str, set[str]] = {
    name: {"name"} | set(defaults) for name, defaults in SCHEDULE_DEFAULTS.items()
}


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"schedule.{key}", message)


def _fraction(cfg: dict[str, Any], key: str, *, closed_above: bool) -> float:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, f"must be a number, got {value!r}")
    upper_ok = value <= 1.0 if closed_above else value < 1.0
    if not (value >= 0.0 and upper_ok):
        raise _fail(key, f"must be in [0, 1{']' if closed_above else ')'}, got {value!r}")
    return float(value)


def resolve_schedule_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a schedule config and return it with every default filled in.

    Raises ``ConfigError`` naming the offending key (``schedule.<key>``). Checks that need the run
    length (warm-up plus decay longer than the run) happen in ``build_schedule``.
    """
    if not isinstance(cfg, dict):
        raise ConfigError("schedule", f"expected a mapping, got {cfg!r}")
    if "name" not in cfg:
        raise _fail("name", "required key is missing")
    name = cfg["name"]
    if name not in SCHEDULE_DEFAULTS:
        raise _fail("name", f"unknown schedule {name!r}; allowed: {sorted(SCHEDULE_DEFAULTS)}")
    allowed = SCHEDULE_PARAMETERS[name]
    for key in cfg:
        if key not in allowed:
            raise _fail(key, f"not a parameter of {name!r}; allowed: {sorted(allowed)}")
    resolved = {"name": name, **SCHEDULE_DEFAULTS[name], **cfg}
    if name == "constant":
        return resolved

    if cfg.get("warmup_steps") is not None:
        if cfg.get("warmup_fraction") is not None:
            raise _fail("warmup_steps", "give warmup_steps or warmup_fraction, not both")
        resolved["warmup_fraction"] = None
        steps = resolved["warmup_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise _fail("warmup_steps", f"must be an integer >= 0, got {steps!r}")
    elif resolved["warmup_fraction"] is not None:
        _fraction(resolved, "warmup_fraction", closed_above=False)
    _fraction(resolved, "min_ratio", closed_above=True)
    if name == "wsd":
        _fraction(resolved, "decay_fraction", closed_above=True)
        if resolved["decay_shape"] not in DECAY_SHAPES:
            raise _fail(
                "decay_shape", f"must be one of {DECAY_SHAPES}, got {resolved['decay_shape']!r}"
            )
    return resolved


def build_schedule(cfg: dict[str, Any], total_steps: int) -> Callable[[int], float]:
    """The multiplier function t ↦ lr factor for a run of ``total_steps`` optimiser steps."""
    c = resolve_schedule_config(cfg)
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps: must be an integer >= 1, got {total_steps!r}")
    if c["name"] == "constant":
        return _constant

    T = total_steps
    if c["warmup_steps"] is not None:
        warmup = c["warmup_steps"]
    elif c["warmup_fraction"] is not None:
        warmup = round(c["warmup_fraction"] * T)
    else:
        warmup = 0
    warmup_key = "warmup_steps" if c["warmup_steps"] is not None else "warmup_fraction"
    min_ratio = c["min_ratio"]

    if c["name"] == "warmup_cosine":
        if warmup >= T:
            raise _fail(warmup_key, f"warm-up of {warmup} steps leaves no decay in {T} steps")

        def warmup_cosine(t: int) -> float:
            s = _step_number(t)
            if s <= warmup:
                return s / warmup
            progress = min(1.0, (s - warmup) / (T - warmup))
            return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

        return warmup_cosine

    decay = round(c["decay_fraction"] * T)
    if warmup + decay > T:
        raise _fail(
            "decay_fraction",
            f"warm-up ({warmup} steps, {warmup_key}) plus decay ({decay}) exceed the {T} steps",
        )
    decay_start = T - decay
    shape = math.sqrt if c["decay_shape"] == "1-sqrt" else _identity

    def wsd(t: int) -> float:
        s = _step_number(t)
        if s <= warmup:
            return s / warmup
        if s <= decay_start or decay == 0:
            return 1.0
        progress = min(1.0, (s - decay_start) / decay)
        return 1.0 - (1.0 - min_ratio) * shape(progress)

    return wsd


def _step_number(t: int) -> int:
    if t < 0:
        raise ValueError(f"step index must be >= 0, got {t}")
    return t + 1


def _constant(t: int) -> float:
    _step_number(t)
    return 1.0


def _identity(x: float) -> float:
    return x
