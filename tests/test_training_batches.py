"""Data protocol of the trainer: sequence cut, epoch permutations, micro-batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adamnoise.training.batches import (
    EpochSampler,
    SequenceCut,
    epoch_permutation,
    split_micro_batches,
)
from adamnoise.training.epochs import (
    batch_bounds,
    batch_deviation,
    batches_per_epoch,
    epochs_for_batch,
    mean_batch_size,
    sequence_count,
)


def test_cut_overlaps_by_one_token_and_predicts_every_token_once():
    stream = torch.arange(100, 135)  # T = 35 distinct ids: positions are readable
    cut = SequenceCut(stream, seq_len=8)
    assert cut.num_sequences == (35 - 1) // 8 == 4
    inputs, targets = cut.batch(torch.arange(4))
    assert inputs.shape == targets.shape == (4, 8)
    assert torch.equal(inputs[1], stream[8:16]) and torch.equal(targets[1], stream[9:17])
    # the last target of sequence i is the first input of sequence i + 1
    assert torch.equal(targets[:-1, -1], inputs[1:, 0])
    # every position 1..32 is predicted exactly once; the tail 33, 34 only in evaluation
    assert torch.equal(targets.flatten(), stream[1:33])
    assert cut.tail_len == 2
    eval_targets = torch.cat([t.flatten() for _, t in cut.eval_batches(3)])
    assert torch.equal(eval_targets, stream[1:])
    eval_inputs = torch.cat([i.flatten() for i, _ in cut.eval_batches(3)])
    assert torch.equal(eval_inputs, stream[:-1])


def test_context_tokens_precede_each_sequence():
    stream = torch.arange(50)
    cut = SequenceCut(stream, seq_len=6, context_len=4)
    assert cut.num_sequences == (50 - 1 - 4) // 6 == 7
    inputs, targets = cut.batch(torch.tensor([0, 3]))
    assert inputs.shape == (2, 10) and targets.shape == (2, 6)
    # sequence 3 predicts positions 23..28 from positions 22..27 and 4 context tokens 18..21
    assert inputs[1].tolist() == list(range(18, 28))
    assert targets[1].tolist() == list(range(23, 29))
    assert inputs[0].tolist() == list(range(0, 10)) and targets[0].tolist() == list(range(5, 11))
    # evaluation scores every position after the first context_len once, with full context
    scored = torch.cat([t.flatten() for _, t in cut.eval_batches(4)])
    assert torch.equal(scored, stream[5:])
    for inputs, targets in cut.eval_batches(4):
        assert inputs.shape[1] == targets.shape[1] + 4
        assert torch.equal(inputs[:, -1] + 1, targets[:, -1])


@pytest.mark.parametrize(
    ("n", "b", "m"), [(103, 10, 10), (103, 7, 15), (100, 10, 10), (103, 103, 1)]
)
def test_each_epoch_sees_every_sequence_exactly_once(n, b, m):
    """Seed 000 Def. 2.1 (N = m b) for b that does not divide N: m = round(N / b) batches whose
    sizes differ by at most one cover a fresh permutation of all N sequences every epoch."""
    sampler = EpochSampler(n, b, seed=7)
    assert sampler.batches_per_epoch == m
    epochs = []
    for epoch in range(3):
        batches = [sampler.batch_indices(epoch * m + j) for j in range(m)]
        sizes = [len(batch) for batch in batches]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
        seen = torch.cat(batches)
        assert sorted(seen.tolist()) == list(range(n))  # each sequence once, none dropped
        assert seen.tolist() == epoch_permutation(7, epoch, n).tolist()
        epochs.append(seen)
    assert not torch.equal(epochs[0], epochs[1])  # a new order every epoch
    # the order depends on (seed, epoch) only: a new sampler (a resumed run) agrees
    start, stop = batch_bounds(n, m, m - 1)
    assert torch.equal(EpochSampler(n, b, seed=7).batch_indices(3 * m - 1), epochs[2][start:stop])
    assert not np.array_equal(epoch_permutation(8, 0, n), epoch_permutation(7, 0, n))


def test_batches_per_epoch_is_the_nearest_whole_number():
    # seed 000's batch sizes on WikiText-2 with seq_len 128 (N = 16,317): realised b within 0.5 %
    n = 16_317
    for b in (128, 256, 512, 1024, 2048, 4096, 8192):
        assert batches_per_epoch(n, b) == round(n / b)
        assert batch_deviation(n, b) < 0.005
    assert batches_per_epoch(n, n) == 1 and mean_batch_size(n, n) == n  # full batch
    assert batches_per_epoch(10, 4) == 3  # 2.5 rounds up, not to even
    assert batch_deviation(n, 12_000) == pytest.approx(16_317 / 12_000 - 1)  # m = 1


def test_permutations_are_uniform():
    # position of sequence 0 over many epochs: uniform over the 5 places (chi-square, 4 dof)
    counts = np.bincount(
        [int(np.argmax(epoch_permutation(0, e, 5) == 0)) for e in range(5000)], minlength=5
    )
    chi2 = float(((counts - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 18.5  # 99.9 % quantile of chi-square(4)


def test_batch_larger_than_data_is_refused():
    with pytest.raises(ValueError, match="exceeds"):
        EpochSampler(5, 8, seed=0)
    with pytest.raises(ValueError, match="exceeds"):
        batches_per_epoch(16_317, 16_384)  # seed 000's largest batch on WikiText-2


def test_micro_batches():
    assert split_micro_batches(8, 2) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    assert split_micro_batches(8, 8) == [slice(0, 4), slice(4, 8)]  # halves for B_simple
    assert split_micro_batches(7, 7) == [slice(0, 4), slice(4, 7)]
    assert split_micro_batches(1, 1) == [slice(0, 1)]
    # a full batch need not be a multiple of the micro-batch: ceil(b/micro) near-equal slices
    slices = split_micro_batches(10, 4)
    assert [s.stop - s.start for s in slices] == [4, 3, 3]
    assert slices[0].start == 0 and slices[-1].stop == 10
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:], strict=False))


def test_train_subset_and_sequence_count():
    stream = torch.arange(200)
    assert SequenceCut(stream, 8).num_sequences == sequence_count(200, 8) == 24
    assert sequence_count(200, 8, context_len=4) == (200 - 1 - 4) // 8
    cut = SequenceCut(stream, 8, max_sequences=5)
    assert cut.num_sequences == 5
    inputs, targets = cut.batch(torch.arange(5))
    assert torch.equal(targets.flatten(), stream[1:41])  # the first K sequences
    with pytest.raises(ValueError, match="exceeds"):
        SequenceCut(stream, 8, max_sequences=25)


def test_epoch_budget_grows_with_batch_size():
    assert epochs_for_batch(64, 40, 128, 0.5) == 40  # below the reference: the base budget
    assert epochs_for_batch(512, 40, 128, 0.5) == pytest.approx(80)
    assert epochs_for_batch(512, 40, 128, 0.0) == 40


def test_batches_stay_on_the_stream_device():
    """A stream on a non-CPU device (meta: any tensor left on the CPU meets it and raises) gives
    batches and evaluation windows on that device."""
    cut = SequenceCut(torch.arange(10000).to("meta"), 64, 0)
    inputs, targets = cut.batch(torch.arange(4, device="meta"))
    assert inputs.device.type == targets.device.type == "meta"
    assert inputs.shape == (4, 64) and targets.shape == (4, 64)
    assert all(x.device.type == "meta" for batch in cut.eval_batches(50) for x in batch)
