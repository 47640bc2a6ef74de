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
* Each epoch draws a fresh uniformly random permutation ``pi`` of the ``N`` training sequences
  (seed 000, Def. 2.1), generated from ``(seed, epoch)`` only, so that a resumed run sees exactly
  the batches of an uninterrupted one. Batch ``j`` of the epoch holds sequences
  ``pi[j*b : (j+1)*b]``; there are ``m = N // b`` batches and the last ``N - m*b`` sequences of the
  permutation (different ones each epoch) are dropped, so an epoch covers ``m*b`` sequences
  (seed 000: ``N = m*b``).
* Evaluation uses the same cut, in stream order, and additionally scores the final, shorter
  sequence made of the leftover tokens, so that every token after position ``k`` is scored once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class SequenceCut:
    """A token stream seen as ``num_sequences`` overlapping-by-one windows (module docstring)."""

    def __init__(self, stream: torch.Tensor, seq_len: int, context_len: int = 0):
        if stream.dim() != 1:
            raise ValueError(f"token stream must be 1-D, got shape {tuple(stream.shape)}")
        self.stream = stream.long()
        self.seq_len = seq_len
        self.context_len = context_len
        usable = stream.numel() - 1 - context_len
        self.num_sequences = max(usable, 0) // seq_len
        # leftover predicted positions after the last full sequence (scored in evaluation only)
        self.tail_len = max(usable, 0) - self.num_sequences * seq_len
        # window offsets relative to a sequence start: context + inputs + one extra target token
        self._window = torch.arange(-context_len, seq_len + 1)

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
            yield self.batch(torch.arange(first, stop))
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
    """Batches of sequence indices: seed 000, Def. 2.1, with the incomplete last batch dropped."""

    def __init__(self, num_sequences: int, batch_size: int, seed: int):
        if num_sequences < batch_size:
            raise ValueError(
                f"batch_size {batch_size} exceeds the {num_sequences} training sequences"
            )
        self.num_sequences = num_sequences
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = num_sequences // batch_size  # m
        self._cached_epoch: int | None = None
        self._cached_perm: np.ndarray | None = None

    def batch_indices(self, step: int) -> torch.Tensor:
        """Sequence indices of the batch used by optimiser step ``step`` (0-based)."""
        epoch, position = divmod(step, self.batches_per_epoch)
        if self._cached_epoch != epoch:
            self._cached_perm = epoch_permutation(self.seed, epoch, self.num_sequences)
            self._cached_epoch = epoch
        chunk = self._cached_perm[position * self.batch_size : (position + 1) * self.batch_size]
        return torch.from_numpy(chunk.astype(np.int64))


def split_micro_batches(batch_size: int, micro_batch_size: int) -> list[slice]:
    """Slices of a batch processed by one forward/backward each.

    If the micro-batch is the whole batch, the batch is split into two halves anyway (sizes
    ceil(b/2), floor(b/2)): gradient accumulation over the halves gives the same full-batch mean
    gradient, and the two half-batch gradients are what the B_simple estimator needs
    (noise_scale.py). A batch of one sequence cannot be split; B_simple is then NaN.
    """
    if micro_batch_size >= batch_size:
        if batch_size == 1:
            return [slice(0, 1)]
        half = (batch_size + 1) // 2
        return [slice(0, half), slice(half, batch_size)]
    return [slice(i, i + micro_batch_size) for i in range(0, batch_size, micro_batch_size)]
