"""What every run needs before its first step: the device and its settings, seeding, the data cut
into sequences, the step counts, and the one host synchronisation of a step.

``device: meta`` is a dry run of the device path: tensors have shapes and devices but no values,
so a tensor left on the host fails as it would on a GPU, without one
(tests/test_training_device.py). The values it records are zeros. What only CUDA runs — torch's
fused Adam, the CUDA generator's state, bf16 autocast kernels — meta does not exercise:
benchmarks/gpu_check.sh does, on a GPU.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from adamnoise.training.batches import SequenceCut
from adamnoise.training.config import ConfigError
from adamnoise.training.noise_scale import NoiseScaleEMA


def select_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device", "cuda requested but no CUDA device is available")
    return torch.device(requested)


def setup_torch(t) -> tuple[torch.device, Callable[[], contextlib.AbstractContextManager]]:
    """Threads, device, TF32 and the autocast context of a run's ``training`` section.

    bf16 is autocast: weights, gradients and optimiser state stay float32 (master weights), the
    matmuls run in bfloat16. ``tf32`` lets float32 matmuls and convolutions use TF32 on CUDA.
    """
    if t.num_threads is not None:
        torch.set_num_threads(t.num_threads)
    device = select_device(t.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = t.tf32
        torch.backends.cudnn.allow_tf32 = t.tf32
    if t.precision == "bf16" and device.type != "meta":
        return device, lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return device, contextlib.nullcontext


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def total_steps_of(epochs: float, steps_per_epoch: int, max_steps: int | None) -> int:
    # the small tolerance keeps e.g. epochs=0.3 with m=10 at 3 steps despite 0.3*10 = 2.9999...
    total = max(1, math.floor(epochs * steps_per_epoch + 1e-9))
    return min(total, max_steps) if max_steps is not None else total


@contextlib.contextmanager
def blame(key: str, errors: tuple[type[Exception], ...]) -> Iterator[None]:
    """Report another concern's rejection of its config section as a ConfigError on ``key``
    (one that is a ConfigError already names its key)."""
    try:
        yield
    except ConfigError:
        raise
    except errors as exc:
        raise ConfigError(key, str(exc)) from exc


def sequence_cuts(corpus, data, model, device) -> tuple[SequenceCut, SequenceCut, SequenceCut]:
    """The train / valid / test splits cut into sequences of ``data.seq_len`` tokens, with the
    preceding context the model wants (Transformer-XL's memory; docs/architecture.md)."""
    context_len = int(getattr(model, "context_len", 0) or 0)
    with blame("data.train_sequences", (ValueError,)):
        train = SequenceCut(
            corpus.train.to(device), data.seq_len, context_len, data.train_sequences
        )
    valid = SequenceCut(corpus.valid.to(device), data.seq_len, context_len)
    test = SequenceCut(corpus.test.to(device), data.seq_len, context_len)
    return train, valid, test


def noise_scale_for(t, num_sequences: int) -> NoiseScaleEMA:
    """The B_simple averages of a run: a horizon of ``noise_scale_horizon`` epochs of data."""
    return NoiseScaleEMA(t.noise_scale_horizon * num_sequences, n_population=num_sequences)


def host_values(values: torch.Tensor) -> list[Any]:
    """The device-to-host copy of a step: ``values.tolist()``; zeros on the meta device."""
    if values.device.type == "meta":
        return torch.zeros(values.shape, dtype=values.dtype).tolist()
    return values.tolist()


def offload(tensor: torch.Tensor) -> torch.Tensor:
    """A copy in host memory (best weights wait there); on meta it stays on meta."""
    device = tensor.device if tensor.device.type == "meta" else "cpu"
    return tensor.detach().to(device, copy=True)


class RandomStream:
    """One run's stream of the device's default generator (dropout masks), kept apart from the
    other runs trained in the same process: ``with stream:`` swaps it in and back out."""

    def __init__(self, device: torch.device):
        self.device = device
        self.state = self._get()

    def _get(self) -> torch.Tensor | None:
        if self.device.type == "cuda":
            return torch.cuda.get_rng_state(self.device)
        if self.device.type == "cpu":
            return torch.get_rng_state()
        return None  # meta draws nothing

    def _set(self, state: torch.Tensor | None) -> None:
        if state is None:
            return
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    def __enter__(self) -> RandomStream:
        self._outside = self._get()
        self._set(self.state)
        return self

    def __exit__(self, *exc) -> None:
        self.state = self._get()
        self._set(self._outside)
