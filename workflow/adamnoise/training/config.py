"""Run config: the YAML read by ``adamnoise train RUN.yaml`` (docs/architecture.md, "Run config").

The config is a tree of dataclasses. ``RunConfig.from_dict`` validates a parsed YAML mapping and
raises ``ConfigError`` naming the offending key (``training.micro_batch_size``) for unknown keys,
wrong types and bad values. ``run_config_schema()`` describes the same tree as a JSON schema so that
the experiment validator can check per-run settings before any run starts.

``model``, ``optimizer`` and ``schedule`` stay plain mappings: their fields belong to
``adamnoise.models`` / ``adamnoise.optim`` / ``adamnoise.schedules``, which validate them when they
build the object. Here we only require the key that selects the implementation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamnoise.config_tree import build_dataclass, dataclass_schema
from adamnoise.errors import ConfigError

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "TRAINING_DEFAULTS",
    "ConfigError",
    "DataConfig",
    "RunConfig",
    "TrainingConfig",
    "config_differences",
    "load_run_config",
    "run_config_schema",
]


@dataclass(frozen=True)
class DataConfig:
    corpus: str  # prepared corpus directory (adamnoise.data.corpus.load_prepared)
    seq_len: int  # tokens per training sequence (predicted positions; Transformer-XL's tgt_len)
    train_sequences: int | None = None  # use only the first K training sequences (N = K)


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = 0
    batch_size: int = 32  # sequences per optimiser step (seed 000's b)
    micro_batch_size: int | None = None  # sequences per forward/backward; None = batch_size
    epochs: float = 1.0  # cap on training epochs
    max_steps: int | None = None  # optional cap on optimiser steps
    eval_every: float = 1.0  # epochs between evaluations
    # stop once this many evaluations in a row have not improved on the minimal validation loss
    # (the run has passed its minimum); None (the default, seed 000's protocol) trains to the cap.
    # A saving that needs evidence: `adamnoise check-stopping` (docs/protocol.md)
    patience: int | None = None
    # ... and once the steps since the best evaluation are at least this fraction of its step, so
    # that a full-batch run (one evaluation per step) is not stopped by a spike of a few steps
    patience_fraction: float = 0.0
    eval_batch_size: int = 64
    # test perplexity at the weights of the best validation evaluation: free of the bias of a
    # minimum over noisy evaluations
    test_at_best: bool = True
    # B_simple from all N per-sequence gradients at the best weights (N passes; small N only)
    exact_noise_scale: bool = False
    # optimiser steps between checkpoints (kill drills); 0: none. Jobs also checkpoint by the
    # wall clock (``--checkpoint-minutes``, not part of a run's identity) and on SIGTERM
    checkpoint_every: int = 0
    divergence_loss: float = 30.0  # training loss above this (or NaN/inf) => status diverged
    # false: a diverged run trains on to its cap, recording every step (seed 004 Fig. 1 reads the
    # max-update of runs in B-, whose loss may blow up, at every step to the end); the result
    # still says it diverged and at which step (attrs diverged_at_step, steps_after_divergence)
    stop_on_divergence: bool = True
    device: str = "auto"  # auto | cpu | cuda | meta (a value-less dry run of the device path)
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    tf32: bool = False
    compile: bool = False
    num_threads: int | None = None  # torch CPU threads; None = torch default
    # memory of the B_simple averages in epochs of data (noise_scale.py): the same amount of
    # training at every batch size
    noise_scale_horizon: float = 1.0
    log_every: int = 0  # steps between plain log lines when stderr is not a terminal; 0 = auto

    @property
    def micro_batch(self) -> int:
        return self.batch_size if self.micro_batch_size is None else self.micro_batch_size


TRAINING_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(TrainingConfig)
    if f.default is not dataclasses.MISSING
}

DEVICES = ("auto", "cpu", "cuda", "meta")
# jobs checkpoint every this many minutes of wall clock (``adamnoise train --checkpoint-minutes``)
DEFAULT_CHECKPOINT_MINUTES = 20.0
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class RunConfig:
    run_id: str
    data: DataConfig
    model: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "constant"})
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @classmethod
    def from_dict(cls, raw: Any) -> RunConfig:
        """Validate a parsed run config; raise ``ConfigError`` naming the first key at fault."""
        config = build_dataclass(cls, raw, "")
        _check_values(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable mapping; ``from_dict(to_dict())`` gives an equal config."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run config YAML file."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {exc}") from exc
    return RunConfig.from_dict(raw)


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config mappings (for --resume)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, name + ".")
        elif a != b:
            diffs.append(f"{name} ({a!r} -> {b!r})")
    return diffs


def _check_values(config: RunConfig) -> None:
    if not config.run_id:
        raise ConfigError("run_id", "must not be empty")
    if config.data.seq_len < 1:
        raise ConfigError("data.seq_len", f"must be >= 1, got {config.data.seq_len}")
    if not config.model:
        raise ConfigError("model", "must name a preset or an arch")
    for section, selector in (("optimizer", "name"), ("schedule", "name")):
        if not isinstance(getattr(config, section).get(selector), str):
            raise ConfigError(f"{section}.{selector}", "required string key is missing")
    t = config.training
    positive_ints = ("batch_size", "eval_batch_size")
    for name in positive_ints:
        if getattr(t, name) < 1:
            raise ConfigError(f"training.{name}", f"must be >= 1, got {getattr(t, name)}")
    if t.micro_batch_size is not None and t.micro_batch_size < 1:
        raise ConfigError("training.micro_batch_size", f"must be >= 1, got {t.micro_batch_size}")
    if config.data.train_sequences is not None and config.data.train_sequences < 1:
        raise ConfigError(
            "data.train_sequences", f"must be >= 1 or null, got {config.data.train_sequences}"
        )
    if t.patience is not None and t.patience < 1:
        raise ConfigError("training.patience", f"must be >= 1 or null, got {t.patience}")
    if not (t.patience_fraction >= 0 and math.isfinite(t.patience_fraction)):
        raise ConfigError(
            "training.patience_fraction", f"must be a number >= 0, got {t.patience_fraction}"
        )
    if not (t.epochs > 0 and math.isfinite(t.epochs)):
        raise ConfigError("training.epochs", f"must be a positive number, got {t.epochs}")
    if t.max_steps is not None and t.max_steps < 1:
        raise ConfigError("training.max_steps", f"must be >= 1 or null, got {t.max_steps}")
    if not (t.eval_every > 0 and math.isfinite(t.eval_every)):
        raise ConfigError("training.eval_every", f"must be a positive number, got {t.eval_every}")
    if t.checkpoint_every < 0:
        raise ConfigError("training.checkpoint_every", f"must be >= 0, got {t.checkpoint_every}")
    if not t.divergence_loss > 0:
        raise ConfigError("training.divergence_loss", f"must be > 0, got {t.divergence_loss}")
    if t.device not in DEVICES:
        raise ConfigError("training.device", f"must be one of {DEVICES}, got {t.device!r}")
    if t.precision not in PRECISIONS:
        raise ConfigError("training.precision", f"must be one of {PRECISIONS}, got {t.precision!r}")
    if t.num_threads is not None and t.num_threads < 1:
        raise ConfigError("training.num_threads", f"must be >= 1 or null, got {t.num_threads}")
    if not (t.noise_scale_horizon > 0 and math.isfinite(t.noise_scale_horizon)):
        raise ConfigError(
            "training.noise_scale_horizon",
            f"must be a positive number of epochs, got {t.noise_scale_horizon}",
        )
    if t.log_every < 0:
        raise ConfigError("training.log_every", f"must be >= 0, got {t.log_every}")


# --------------------------------------------------------------------------------------------
# JSON schema (types and defaults only; value rules live in _check_values)


def run_config_schema() -> dict[str, Any]:
    """JSON schema of a run config (types, required keys, defaults; not the value rules)."""
    schema = dataclass_schema(RunConfig)
    schema["properties"]["training"]["properties"]["device"]["enum"] = list(DEVICES)
    schema["properties"]["training"]["properties"]["precision"]["enum"] = list(PRECISIONS)
    for section in ("optimizer", "schedule"):
        schema["properties"][section]["required"] = ["name"]
    return schema
