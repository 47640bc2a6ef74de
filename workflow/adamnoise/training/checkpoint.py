"""Checkpoints: everything needed to continue a run so that it ends bit-identical (on CPU).

A checkpoint is one ``checkpoint.pt`` file in the checkpoint directory, written atomically
(``adamnoise.io.atomic_path``): a run killed while writing leaves the previous checkpoint intact.
It holds the model, optimiser and scheduler states, the B_simple averages, the best weights so far
(if the test split is evaluated at the best evaluation), all random number generator states
(torch CPU and CUDA, numpy, python), the step counter (the epoch and the position in the epoch's
permutation follow from it, and the permutation itself from (seed, epoch)), the recorded series,
and the run config, against which a resumed run is checked.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adamnoise.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


def rng_states() -> dict[str, Any]:
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def checkpoint_file(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically; returns the file."""
    path = checkpoint_file(directory)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(directory: str | Path) -> dict[str, Any] | None:
    """The checkpoint in ``directory``, or None if there is none."""
    path = checkpoint_file(directory)
    if not path.exists():
        return None
    # our own file: numpy RNG state and plain containers need the full unpickler
    return torch.load(path, map_location="cpu", weights_only=False)


def remove_checkpoint(directory: str | Path) -> None:
    """Delete the checkpoint file, and the directory if nothing else is in it."""
    directory = Path(directory)
    with contextlib.suppress(FileNotFoundError):
        checkpoint_file(directory).unlink()
    # temporary files left by a run killed while writing (atomic_path's naming)
    for leftover in directory.glob(f".{CHECKPOINT_NAME}.*.part"):
        leftover.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only succeeds when empty: never removes files that are not ours
