"""Cutting a token stream into sequences, and the epoch sampler of seed 000, Def. 2.1.

Data protocol (batch size counts sequences):

* A split's token stream ``x[0..T-1]`` is cut into ``N = (T - 1 - k) // L`` sequences of ``L + 1``
  tokens, ``L = seq_len`` and ``k = model.context_len`` (0 for most models). Sequence ``i`` covers
  stream positions ``s_i .. s_i + L`` with ``s_i = k + i*L``: its inputs are ``x[s_i : s_i+L]`` and
  its targets ``x[s_i+1 : s_i+L+1]``. Consecutive sequences therefore overlap by exactly one token
  (the last target of sequence ``i`` is the first input of sequence ``i+1``), as in the usual
  language-model loaders, so every stream token after position ``k`` is predicted exactly once.
  Leftover tokens at the end of the stream (fewer than ``L``) are not used for training.
* A model with ``context_len = k > 0`` also receives the ``k`` stream tokens preceding each
  sequence: its inputs are ``x[s_i-k : s_i+L]`` (shape ``[batch, k+L]``), targets as above. Starting
  the first sequence at ``k`` guarantees every sequence a full context; the first ``k`` tokens are
  never predicted.
* ``data.train_sequences = K`` keeps only the first ``K`` sequences of the cut (a smaller ``N``
  for CPU-sized studies that must overfit quickly); validation and test are unchanged.
* Each epoch draws a fresh uniformly random permutation ``pi`` of the ``N`` training sequences
  (seed 000, Def. 2.1), generated from ``(seed, epoch)`` only, so that a resumed run sees exactly
  the batches of an uninterrupted one. The epoch is cut into ``m`` batches, ``m`` the whole number
  nearest to ``N / b``; batch ``j`` holds ``pi[ceil(jN/m) : ceil((j+1)N/m)]``, so every sequence
  is seen exactly once per epoch and the batch sizes differ by at most one (epochs.py says why:
  seed 000 has ``N = m*b``).
* Evaluation uses the same cut, in stream order, and additionally scores the final, shorter
  sequence made of the leftover tokens, so that every token after position ``k`` is scored once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch

from adamnoise.training.epochs import batch_bounds, batches_per_epoch, sequence_count


class SequenceCut:
    """A token stream seen as ``num_sequences`` overlapping-by-one windows (module docstring)."""

    def __init__(
        self,
        stream: torch.Tensor,
        seq_len: int,
        context_len: int = 0,
        max_sequences: int | None = None,
    ):
        if stream.dim() != 1:
            raise ValueError(f"token stream must be 1-D, got shape {tuple(stream.shape)}")
        self.stream = stream.long()
        self.seq_len = seq_len
        self.context_len = context_len
        usable = max(stream.numel() - 1 - context_len, 0)
        self.num_sequences = sequence_count(stream.numel(), seq_len, context_len)
        if max_sequences is not None:
            if max_sequences > self.num_sequences:
                raise ValueError(
                    f"train_sequences {max_sequences} exceeds the {self.num_sequences} "
                    "sequences of the split"
                )
            self.num_sequences = max_sequences
            usable = max_sequences * seq_len  # a subset: its own tail is not scored
        # leftover predicted positions after the last full sequence (scored in evaluation only)
        self.tail_len = usable - self.num_sequences * seq_len
        # window offsets relative to a sequence start: context + inputs + one extra target token
        self._window = torch.arange(-context_len, seq_len + 1, device=self.stream.device)

    def start(self, index: torch.Tensor) -> torch.Tensor:
        return self.context_len + index * self.seq_len

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs [n, k+L], targets [n, L]) of the sequences with the given indices."""
        windows = self.stream[self.start(indices)[:, None] + self._window]
        return windows[:, :-1], windows[:, self.context_len + 1 :]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """All full sequences in stream order, then the shorter leftover sequence (if any)."""
        for first in range(0, self.num_sequences, batch_size):
            stop = min(first + batch_size, self.num_sequences)
            yield self.batch(torch.arange(first, stop, device=self.stream.device))
        if self.tail_len:
            begin = self.context_len + self.num_sequences * self.seq_len
            window = self.stream[begin - self.context_len : begin + self.tail_len + 1]
            yield window[None, :-1], window[None, self.context_len + 1 :]


def epoch_permutation(seed: int, epoch: int, num_sequences: int) -> np.ndarray:
    """Uniformly random order of the training sequences in ``epoch``, a function of (seed, epoch).

    numpy's SeedSequence mixes the pair (seed, epoch) into independent streams, so permutations of
    different epochs are independent and no generator state has to survive a restart.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))
    return rng.permutation(num_sequences)


class EpochSampler:
    """Batches of sequence indices: seed 000, Def. 2.1, every sequence once per epoch."""

    def __init__(self, num_sequences: int, batch_size: int, seed: int):
        self.num_sequences = num_sequences
        self.batch_size = batch_size  # as configured; realised sizes are N/m rounded up or down
        self.seed = seed
        self.batches_per_epoch = batches_per_epoch(num_sequences, batch_size)  # m
        self._cached_epoch: int | None = None
        self._cached_perm: np.ndarray | None = None

    def batch_indices(self, step: int) -> torch.Tensor:
        """Sequence indices of the batch used by optimiser step ``step`` (0-based)."""
        epoch, position = divmod(step, self.batches_per_epoch)
        if self._cached_epoch != epoch:
            self._cached_perm = epoch_permutation(self.seed, epoch, self.num_sequences)
            self._cached_epoch = epoch
        start, stop = batch_bounds(self.num_sequences, self.batches_per_epoch, position)
        return torch.from_numpy(self._cached_perm[start:stop].astype(np.int64))


def split_micro_batches(batch_size: int, micro_batch_size: int) -> list[slice]:
    """Slices of a batch processed by one forward/backward each.

    The batch is cut into ``ceil(b / micro_batch_size)`` consecutive slices whose sizes differ by
    at most one (a batch size need not be a multiple of the micro-batch size: full batch is
    N sequences). If the micro-batch is the whole batch, the batch is split into two halves anyway
    (sizes ceil(b/2), floor(b/2)): gradient accumulation over the halves gives the same full-batch
    mean gradient, and the two half-batch gradients are what the B_simple estimator needs
    (noise_scale.py). A batch of one sequence cannot be split; B_simple is then NaN.
    """
    if batch_size == 1:
        return [slice(0, 1)]
    count = max(2, -(-batch_size // micro_batch_size))
    edges = [batch_bounds(batch_size, count, j) for j in range(count)]
    return [slice(start, stop) for start, stop in edges]


@functools.cache
def micro_batch_plan(batch_size: int, micro_batch_size: int) -> tuple[tuple[slice, ...], float]:
    """The micro-batch slices of a batch (``split_micro_batches``, the micro-batch capped at the
    batch) and their B_small, the harmonic mean of their sizes (noise_scale.py). Cached: an epoch
    has only two realised batch sizes, ceil(N/m) and floor(N/m)."""
    from adamnoise.training.noise_scale import small_batch_size

    slices = split_micro_batches(batch_size, min(micro_batch_size, batch_size))
    return tuple(slices), small_batch_size([s.stop - s.start for s in slices])
