"""The arithmetic of the data protocol, shared by the trainer and the workflow (no torch here).

Seed 000 (Def. 2.1) assumes an epoch of ``m`` batches of ``b`` samples with ``N = m b``: every
sample is seen exactly once per epoch, in a fresh uniformly random order. A configured batch size
``b`` rarely divides the number of training sequences ``N``, so we keep ``N`` (the same data for
every batch size) and choose the number of batches instead:

    m = max(1, floor(N / b + 1/2))     (the nearest whole number of batches)

and cut each epoch's permutation into ``m`` consecutive batches whose sizes differ by at most one
sequence (``ceil(N/m)`` or ``floor(N/m)``). The realised batch size is ``N / m`` on average, which
is what the theory's ``b = N / m`` means; ``batch_size: full`` gives ``m = 1``. Dropping the
remainder instead would skip different sequences every epoch (up to half the data at
``b = 8192``, ``N = 16317``), and keeping a short last batch would make one step per epoch
noisier than the rest.

The workflow rejects a batch size whose realised mean ``N / m`` is more than
``MAX_BATCH_DEVIATION`` away from it, so a configured ``b`` always means (nearly) what it says.
"""

from __future__ import annotations

import math

# largest accepted |N/m - b| / b of a configured batch size (the workflow checks it at parse time)
MAX_BATCH_DEVIATION = 0.10


def sequence_count(tokens: int, seq_len: int, context_len: int = 0) -> int:
    """Training sequences of a ``tokens``-long stream cut into ``seq_len`` windows (batches.py)."""
    return max(tokens - 1 - context_len, 0) // seq_len


def batches_per_epoch(num_sequences: int, batch_size: int) -> int:
    """``m``: the whole number of batches per epoch nearest to ``N / b`` (at least one)."""
    if batch_size < 1 or num_sequences < 1:
        raise ValueError(f"need N >= 1 and b >= 1, got N = {num_sequences}, b = {batch_size}")
    if batch_size > num_sequences:
        raise ValueError(f"batch_size {batch_size} exceeds the {num_sequences} training sequences")
    return max(1, math.floor(num_sequences / batch_size + 0.5))


def batch_bounds(num_sequences: int, num_batches: int, index: int) -> tuple[int, int]:
    """[start, stop) of batch ``index`` of ``num_batches`` in an epoch of ``num_sequences``.

    Bounds are ``ceil(j N / m)``: sizes differ by at most one, the larger ones spread evenly.
    """
    return (
        -(-index * num_sequences // num_batches),
        -(-(index + 1) * num_sequences // num_batches),
    )


def mean_batch_size(num_sequences: int, batch_size: int) -> float:
    """The realised batch size ``N / m`` of a configured ``b``."""
    return num_sequences / batches_per_epoch(num_sequences, batch_size)


def batch_deviation(num_sequences: int, batch_size: int) -> float:
    """Relative difference between the realised ``N / m`` and the configured ``b``."""
    return abs(mean_batch_size(num_sequences, batch_size) - batch_size) / batch_size


def epochs_for_batch(
    batch_size: float, epochs: float, reference_batch_size: float, exponent: float
) -> float:
    """An epoch budget that grows with the batch size: ``epochs * max(1, b / b_ref) ** exponent``.

    Large batches take few steps per epoch, so a fixed epoch budget stops them early (40 epochs
    are 80 steps at b = 8192 on WikiText-2). Kunstner et al. (2023) scale the epochs with the
    batch size for this reason (40 epochs at b = 80 up to 320 at full batch, about exponent 0.4).
    """
    return epochs * max(1.0, batch_size / reference_batch_size) ** exponent
