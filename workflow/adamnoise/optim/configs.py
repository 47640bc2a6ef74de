"""The optimisers' configurations and their registry, torch-free.

Each optimiser is one frozen dataclass: its fields are the keys of the ``optimizer`` section of a
run config besides ``name`` (``lr`` and the optimiser's parameters, with their defaults), the
metadata of a field its value rule, ``name`` the registry key and ``optimizer`` the class in
``adamnoise.optim.optimizers`` that ``build(params)`` constructs (importing torch only then).
``OPTIMIZERS`` maps every name to its class; ``factory.resolve_optimizer_config`` and
``factory.build_optimizer`` go through it, and the workflow validates optimiser configs with it
without importing torch.

Adding an optimiser: its ``torch.optim.Optimizer`` in ``optimizers.py``, one dataclass here (fields
from the helpers below, ``arguments()`` mapping them onto the constructor) and one entry in
``OPTIMIZERS``.

Naming: ``beta1`` is the momentum factor of every method (SGD's μ, Signum's β, k-Adam's γ̃),
``beta2`` the second-moment factor (k-Adam's β̃).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from adamnoise.config_tree import build_dataclass, coerce
from adamnoise.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from adamnoise.optim.optimizers import ParamsT

INIT_CHOICES = ("zero", "gradient")  # seed 003 App. B.5: ZI (default) or GI moving averages
KADAM_STRATEGIES = ("inverse_exp", "exp", "scaled", "naive")  # functional.kadam_betas

NUMBER = "must be a number"
YAML_HINT = " (YAML reads 1e-3 as a string: write 1.0e-3)"


# --------------------------------------------------------------------------------------------
# fields: the type comes from the annotation (checked by config_tree.build_dataclass), the
# value rule from the metadata (checked by OptimizerConfig.__post_init__)


def _param(
    default: Any,
    rule: str,
    ok: Callable[[Any], bool] | None = None,
    *,
    type_rule: str | None = None,
) -> Any:
    """A field whose value must satisfy ``ok`` (None: any value of its type); ``rule`` says so in
    the error message, ``type_rule`` (default: ``rule``) when the value has the wrong type."""
    metadata = {"rule": rule, "ok": ok, "type_rule": type_rule or rule}
    return field(default=default, metadata=metadata)


def _number(default: Any, rule: str, ok: Callable[[float], bool]) -> Any:
    """A float field: finite and satisfying ``ok`` (None passes where the annotation allows it)."""
    return _param(default, rule, ok, type_rule=NUMBER)


def _beta(default: float) -> Any:
    return _number(default, "must be in [0, 1)", lambda v: 0.0 <= v < 1.0)


def _non_negative(default: float) -> Any:
    return _number(default, "must be >= 0", lambda v: v >= 0)


def _positive_or_null() -> Any:
    return _number(None, "must be > 0 or null", lambda v: v > 0)


def _flag(default: bool) -> Any:
    return _param(default, "must be true or false")


def _choice(default: str, choices: tuple[str, ...]) -> Any:
    return _param(default, f"must be one of {choices}", lambda v: v in choices)


# --------------------------------------------------------------------------------------------
# the configurations


@dataclass(frozen=True)
class OptimizerConfig:
    """Base class: ``lr`` (required) and the checks; subclasses add their fields."""

    name: ClassVar[str]  # key in OPTIMIZERS and the config's ``name``
    optimizer: ClassVar[str]  # class in adamnoise.optim.optimizers

    lr: float = _number(dataclasses.MISSING, "must be > 0", lambda v: v > 0)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OptimizerConfig:
        """The config of the ``optimizer`` section ``raw`` (its ``name`` is this class's).

        Raises ``ConfigError`` naming ``optimizer.<key>`` for a key the optimiser does not have
        (with the allowed ones), a missing ``lr``, a value of the wrong type or out of range.
        """
        params = {key: value for key, value in raw.items() if key != "name"}
        allowed = {"name"} | {f.name for f in dataclasses.fields(cls)}
        for key in params:
            if key not in allowed:
                raise ConfigError(
                    f"optimizer.{key}",
                    f"not a parameter of {cls.name!r}; allowed: {sorted(allowed)}",
                )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in params.items():  # a wrong type: say what the value must be
            try:
                coerce(hints[key], value, f"optimizer.{key}")
            except ConfigError:
                type_rule = fields[key].metadata["type_rule"]
                hint = YAML_HINT if type_rule == NUMBER and isinstance(value, str) else ""
                raise ConfigError(f"optimizer.{key}", f"{type_rule}, got {value!r}{hint}") from None
        return build_dataclass(cls, params, "optimizer.")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:  # only where the annotation allows it (build_dataclass checks)
                continue
            if f.metadata.get("type_rule") == NUMBER and not math.isfinite(value):
                raise ConfigError(f"optimizer.{f.name}", f"must be finite, got {value!r}")
            ok = f.metadata.get("ok")
            if ok is not None and not ok(value):
                raise ConfigError(f"optimizer.{f.name}", f"{f.metadata['rule']}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The complete config: ``name`` and every field."""
        return {"name": self.name, **dataclasses.asdict(self)}

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of the optimiser class besides ``params`` and ``lr``."""
        raise NotImplementedError

    def build(self, params: ParamsT) -> torch.optim.Optimizer:
        """The optimiser over ``params`` (tensors or param-group dicts); imports torch."""
        from adamnoise.optim import optimizers

        return getattr(optimizers, self.optimizer)(params, lr=self.lr, **self.arguments())


@dataclass(frozen=True)
class AdamConfig(OptimizerConfig):
    """Adam with L2 weight decay (``torch.optim.Adam``) and seed 003's ablations."""

    name: ClassVar[str] = "adam"
    optimizer: ClassVar[str] = "Adam"
    decoupled_weight_decay: ClassVar[bool] = False

    beta1: float = _beta(0.9)
    beta2: float = _beta(0.999)
    eps: float = _non_negative(1e-8)
    weight_decay: float = _non_negative(0.0)
    bias_correction: bool = _flag(True)
    init: str = _choice("zero", INIT_CHOICES)
    grad_clip_norm: float | None = _positive_or_null()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init == "gradient" and self.bias_correction:
            raise ConfigError(
                "optimizer.init",
                f"'gradient' needs bias_correction: false for {self.name} (seed 003 Table 3 pairs "
                "GI with -BC; bias correction undoes zero initialisation)",
            )

    def arguments(self) -> dict[str, Any]:
        return dict(
            betas=(self.beta1, self.beta2),
            eps=self.eps,
            weight_decay=self.weight_decay,
            decoupled_weight_decay=self.decoupled_weight_decay,
            bias_correction=self.bias_correction,
            gradient_init=self.init == "gradient",
            grad_clip_norm=self.grad_clip_norm,
        )


@dataclass(frozen=True)
class AdamWConfig(AdamConfig):
    """Adam with decoupled weight decay (``torch.optim.AdamW``)."""

    name: ClassVar[str] = "adamw"
    decoupled_weight_decay: ClassVar[bool] = True


@dataclass(frozen=True)
class RMSpropConfig(OptimizerConfig):
    """Adam with β1 = 0 (seed 003 App. A.1.1)."""

    name: ClassVar[str] = "rmsprop"
    optimizer: ClassVar[str] = "RMSprop"

    beta2: float = _beta(0.999)
    eps: float = _non_negative(1e-8)
    weight_decay: float = _non_negative(0.0)
    bias_correction: bool = _flag(True)
    grad_clip_norm: float | None = _positive_or_null()

    def arguments(self) -> dict[str, Any]:
        return dict(
            beta2=self.beta2,
            eps=self.eps,
            weight_decay=self.weight_decay,
            bias_correction=self.bias_correction,
            grad_clip_norm=self.grad_clip_norm,
        )


@dataclass(frozen=True)
class SGDConfig(OptimizerConfig):
    """SGD with heavy-ball momentum (``torch.optim.SGD``) and optional coordinate clipping."""

    name: ClassVar[str] = "sgd"
    optimizer: ClassVar[str] = "SGDMomentum"

    beta1: float = _beta(0.9)
    dampening: float = _number(0.0, "must be in [0, 1]", lambda v: 0.0 <= v <= 1.0)
    weight_decay: float = _non_negative(0.0)
    grad_clip_norm: float | None = _positive_or_null()
    coordinate_clip: float | None = _positive_or_null()
    coordinate_clip_fraction: float | None = _number(
        None, "must be in (0, 1) or null", lambda v: 0.0 < v < 1.0
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coordinate_clip_fraction is not None and self.coordinate_clip is not None:
            raise ConfigError(
                "optimizer.coordinate_clip_fraction", "give coordinate_clip or this, not both"
            )

    def arguments(self) -> dict[str, Any]:
        return dict(
            momentum=self.beta1,
            dampening=self.dampening,
            weight_decay=self.weight_decay,
            coordinate_clip=self.coordinate_clip,
            coordinate_clip_fraction=self.coordinate_clip_fraction,
            grad_clip_norm=self.grad_clip_norm,
        )


@dataclass(frozen=True)
class SignumConfig(OptimizerConfig):
    """Sign of the momentum (Bernstein et al. 2018)."""

    name: ClassVar[str] = "signum"
    optimizer: ClassVar[str] = "Signum"

    beta1: float = _beta(0.9)
    weight_decay: float = _non_negative(0.0)
    init: str = _choice("zero", INIT_CHOICES)
    grad_clip_norm: float | None = _positive_or_null()

    def arguments(self) -> dict[str, Any]:
        return dict(
            momentum=self.beta1,
            weight_decay=self.weight_decay,
            gradient_init=self.init == "gradient",
            grad_clip_norm=self.grad_clip_norm,
        )


@dataclass(frozen=True)
class EMASignConfig(SignumConfig):
    """Sign of an exponential moving average of the gradients (seed 003)."""

    name: ClassVar[str] = "emasign"
    optimizer: ClassVar[str] = "EMASign"


@dataclass(frozen=True)
class SignSGDConfig(OptimizerConfig):
    """Sign descent without momentum."""

    name: ClassVar[str] = "signsgd"
    optimizer: ClassVar[str] = "SignSGD"

    weight_decay: float = _non_negative(0.0)
    grad_clip_norm: float | None = _positive_or_null()

    def arguments(self) -> dict[str, Any]:
        return dict(weight_decay=self.weight_decay, grad_clip_norm=self.grad_clip_norm)


@dataclass(frozen=True)
class KAdamConfig(OptimizerConfig):
    """k-Adam of seed 004 (Algorithm 1): k levels of moving averages."""

    name: ClassVar[str] = "kadam"
    optimizer: ClassVar[str] = "KAdam"

    beta1: float = _beta(0.9)
    beta2: float = _beta(0.999)
    eps: float = _non_negative(1e-30)  # seed 004 Algorithm 1's default
    weight_decay: float = _non_negative(0.0)
    k: int = _param(2, "must be an integer >= 1", lambda v: v >= 1)
    strategy: str = _choice("inverse_exp", KADAM_STRATEGIES)
    coupled_weight_decay: bool = _flag(False)
    grad_clip_norm: float | None = _positive_or_null()

    def arguments(self) -> dict[str, Any]:
        return dict(
            k=self.k,
            betas=(self.beta1, self.beta2),
            strategy=self.strategy,
            eps=self.eps,
            weight_decay=self.weight_decay,
            coupled_weight_decay=self.coupled_weight_decay,
            grad_clip_norm=self.grad_clip_norm,
        )


# the registry: config ``name`` -> its configuration class
OPTIMIZERS: dict[str, type[OptimizerConfig]] = {
    config.name: config
    for config in (
        AdamConfig,
        AdamWConfig,
        SGDConfig,
        SignumConfig,
        SignSGDConfig,
        EMASignConfig,
        RMSpropConfig,
        KAdamConfig,
    )
}
