"""Checkpoints: everything needed to continue a run so that it ends bit-identical (on CPU).

A checkpoint is one ``checkpoint.pt`` file in the checkpoint directory, written atomically
(``adamnoise.io.atomic_path``): a run killed while writing leaves the previous checkpoint intact.
It holds the model, optimiser and scheduler states, the B_simple averages, the best weights so far
(if the test split is evaluated at the best evaluation), all random number generator states
(torch CPU and CUDA, numpy, python), the step counter (the epoch and the position in the epoch's
permutation follow from it, and the permutation itself from (seed, epoch)), the recorded series,
and the run config, against which a resumed run is checked.

Everything in it is a tensor or a plain Python value (the numpy RNG state is stored as a dict of
plain values), so it loads with ``torch.load(weights_only=True)``: a checkpoint can hold data only,
never code that runs when it is loaded. A checkpoint that does not load (truncated, not a
checkpoint, or a pickle that is more than data) is moved aside to ``checkpoint.pt.corrupt-<n>``
with a warning naming both files, and the run starts over: a rerun or a Slurm retry then makes
progress instead of failing on the same file again.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adamnoise.io import atomic_path, move_aside

CHECKPOINT_NAME = "checkpoint.pt"


class UnreadableCheckpointWarning(UserWarning):
    """A checkpoint did not load and was moved aside; the run starts over."""


def rng_states() -> dict[str, Any]:
    """Every RNG state as tensors and plain values (``weights_only`` loads them)."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
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
    """The checkpoint in ``directory``, or None if there is none or it does not load.

    Loads tensors and plain values only (``weights_only=True``). One that does not load is moved
    aside (``move_aside``) with an ``UnreadableCheckpointWarning`` and None is returned: the run
    starts over.
    """
    path = checkpoint_file(directory)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise  # the file system's problem, not the file's: moving it would not help
    # truncated (OSError or RuntimeError from torch), not a zip, or a pickle that is more than data
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        set_aside(directory, f"it does not load ({reason})")
        return None


def set_aside(directory: str | Path, reason: str) -> Path:
    """Move the checkpoint in ``directory`` aside (``move_aside``) with an
    ``UnreadableCheckpointWarning`` saying why; the run starts over. Returns the new name."""
    path = checkpoint_file(directory)
    aside = move_aside(path)
    warnings.warn(
        f"checkpoint {path}: {reason}; moved it to {aside} and starting the run over",
        UnreadableCheckpointWarning,
        stacklevel=3,
    )
    return aside


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
