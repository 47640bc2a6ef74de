"""The optimiser registry (``adamnoise.optim.configs.OPTIMIZERS``): every entry builds, has the
documented defaults, and rejects unknown keys and bad values naming ``optimizer.<key>``."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from adamnoise.errors import ConfigError
from adamnoise.optim import (
    OPTIMIZER_DEFAULTS,
    OPTIMIZER_PARAMETERS,
    OPTIMIZERS,
    InstrumentedOptimizer,
    build_optimizer,
    optimizers,
    resolve_optimizer_config,
)

_ADAM = {
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "weight_decay": 0.0,
    "bias_correction": True,
    "init": "zero",
    "grad_clip_norm": None,
}

# the defaults of docs/architecture.md, "Optimiser interface" (and of the code before the registry)
DOCUMENTED_DEFAULTS = {
    "adam": _ADAM,
    "adamw": _ADAM,
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

FIELDS = [(name, f.name) for name, config in OPTIMIZERS.items() for f in dataclasses.fields(config)]


def test_every_documented_optimizer_is_registered():
    assert set(DOCUMENTED_DEFAULTS) <= set(OPTIMIZERS)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_has_its_documented_defaults(name):
    assert name in DOCUMENTED_DEFAULTS, (
        f"{name!r} is registered but its defaults are not documented: add them to "
        "docs/architecture.md ('Optimiser interface') and to DOCUMENTED_DEFAULTS"
    )
    config = OPTIMIZERS[name]
    assert config.name == name
    assert OPTIMIZER_DEFAULTS[name] == DOCUMENTED_DEFAULTS[name]
    assert OPTIMIZER_PARAMETERS[name] == {"name", "lr", *DOCUMENTED_DEFAULTS[name]}
    resolved = resolve_optimizer_config({"name": name, "lr": 0.01})
    assert resolved == {"name": name, "lr": 0.01, **DOCUMENTED_DEFAULTS[name]}
    assert config.from_dict(resolved).to_dict() == resolved


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_builds_and_steps(name):
    params = [torch.ones(3, requires_grad=True), torch.ones(2, 2, requires_grad=True)]
    optimizer = build_optimizer(params, {"name": name, "lr": 0.01})
    assert isinstance(optimizer, InstrumentedOptimizer)
    assert type(optimizer).__name__ == OPTIMIZERS[name].optimizer
    assert optimizer.param_groups[0]["lr"] == 0.01
    sum((p**2).sum() for p in params).backward()
    optimizer.step()
    assert all((p < 1).all() for p in params)  # every parameter moved against its gradient


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_arguments_match_the_optimizer_constructor(name):
    config = OPTIMIZERS[name](lr=0.01)
    signature = inspect.signature(getattr(optimizers, config.optimizer))
    accepted = set(signature.parameters) - {"params", "lr"}
    assert set(config.arguments()) <= accepted


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_unknown_key_is_rejected_naming_it(name):
    with pytest.raises(ConfigError, match=r"^optimizer\.momentum: not a parameter of"):
        resolve_optimizer_config({"name": name, "lr": 0.01, "momentum": 0.9})


@pytest.mark.parametrize("value", ["x", -1, [0.5]])
@pytest.mark.parametrize("name, key", FIELDS)
def test_bad_value_of_every_field_is_rejected_naming_it(name, key, value):
    # "x", -1 and a list are wrong for every field: a type error or out of range
    with pytest.raises(ConfigError) as error:
        resolve_optimizer_config({"name": name, "lr": 0.01, key: value})
    assert error.value.key == f"optimizer.{key}"
    assert str(error.value).startswith(f"optimizer.{key}: must be"), error.value


@pytest.mark.parametrize(
    "name, key",
    [(n, k) for n, k in FIELDS if isinstance(OPTIMIZER_DEFAULTS[n].get(k, 1.0), float)],
)
def test_numbers_must_be_finite(name, key):
    with pytest.raises(ConfigError, match=rf"^optimizer\.{key}: must be finite"):
        resolve_optimizer_config({"name": name, "lr": 0.01, key: float("inf")})


def test_configs_are_frozen_and_leave_the_input_alone():
    cfg = {"name": "sgd", "lr": 1, "beta1": 0}
    config = OPTIMIZERS["sgd"].from_dict(cfg)
    assert cfg == {"name": "sgd", "lr": 1, "beta1": 0}
    assert config.lr == 1.0 and isinstance(config.lr, float)  # ints are read as floats
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 2.0  # type: ignore[misc]
