"""The trainer behind ``adamnoise train RUN.yaml --out RESULT.nc [--resume]``.

Modules, one per concern:

- ``config``: run config dataclasses, validation (``ConfigError`` names the key), JSON schema;
- ``batches``: the data protocol (sequence cut, epoch permutations of seed 000 Def. 2.1,
  micro-batches);
- ``gradients``: gradient accumulation with the micro-/full-batch norms, the max-update;
- ``noise_scale``: B_simple estimates and their averages (McCandlish et al. 2018);
- ``checkpoint``: atomic checkpoints with every RNG state;
- ``result``: the recorded series and the netCDF run result;
- ``progress``: tqdm bar or plain log lines;
- ``runtime``: device, seeding, the data cut into sequences, the step's host synchronisation;
- ``evaluation``: validation loss and its standard error, measurements at the best weights, the
  stopping rule;
- ``trainer``: the one run loop of single runs and packs (``train``, ``train_pack``, ``Trainer``),
  whose steps an engine computes: ``sequential`` (each run its own model, in turn) or ``stacked``
  (runs of one shape as one vmapped model); ``packing``: which runs can share a job;
- ``cli``: the subcommands.

Importing this package does not import torch (the CLI must start fast); ``train`` and
``Trainer`` (and ``train_pack``) are loaded on first use.
"""

from adamnoise.training.config import (
    TRAINING_DEFAULTS,
    ConfigError,
    DataConfig,
    RunConfig,
    TrainingConfig,
    load_run_config,
    run_config_schema,
)

__all__ = [
    "TRAINING_DEFAULTS",
    "ConfigError",
    "DataConfig",
    "RunConfig",
    "Trainer",
    "TrainingConfig",
    "load_run_config",
    "run_config_schema",
    "train",
    "train_pack",
]


def __getattr__(name: str):
    if name in ("train", "train_pack", "Trainer"):
        from adamnoise.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
