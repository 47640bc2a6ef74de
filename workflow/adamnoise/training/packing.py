"""Which runs can be trained together as one pack (adamnoise.training.trainer); torch-free, so
that the workflow checks ``pack:`` at parse time without importing torch."""

from __future__ import annotations

from typing import Any

from adamnoise.errors import ConfigError
from adamnoise.training.config import RunConfig, config_differences

# the dotted config keys in which the members of a pack may differ
PACKABLE_KEYS = (
    "run_id",
    "training.seed",
    "optimizer.lr",
    "optimizer.beta1",
    "optimizer.beta2",
    "optimizer.eps",
)


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def pack_differences(configs: list[RunConfig]) -> list[str]:
    """Keys outside ``PACKABLE_KEYS`` in which some member differs from the first (empty: packable).

    Optimiser configs are compared after filling in their defaults, so that ``eps`` left out
    and ``eps`` given as the default are the same run.
    """
    from adamnoise.optim.factory import resolve_optimizer_config

    def comparable(config: RunConfig) -> dict[str, Any]:
        raw = config.to_dict()
        raw["optimizer"] = resolve_optimizer_config(dict(config.optimizer))
        return {k: v for k, v in _flatten(raw).items() if k not in PACKABLE_KEYS}

    first = comparable(configs[0])
    differences = []
    for config in configs[1:]:
        for difference in config_differences(first, comparable(config)):
            differences.append(f"{config.run_id}: {difference}")
    return differences


def check_packable(configs: list[RunConfig]) -> None:
    """Raise ``ConfigError`` naming the key that keeps these runs from being one pack."""
    if not configs:
        raise ConfigError("", "a pack needs at least one run")
    run_ids = [c.run_id for c in configs]
    if len(set(run_ids)) != len(run_ids):
        raise ConfigError("run_id", f"the runs of a pack must have distinct run ids: {run_ids}")
    names = {c.run_id: c.optimizer.get("name") for c in configs}
    if len(set(names.values())) > 1:
        raise ConfigError("optimizer.name", f"the runs of a pack share one optimiser, got {names}")
    differences = pack_differences(configs)
    if differences:
        raise ConfigError(
            differences[0].split(": ", 1)[1].split(" ", 1)[0],
            "runs differ in more than seed/lr/beta1/beta2/eps and cannot be packed: "
            + "; ".join(differences),
        )
