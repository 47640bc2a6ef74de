"""The run's measurements against their slow truths, on the tiny real-text corpus:

* the evaluation's standard error against the per-sequence losses computed here;
* the micro-batch B_simple estimator against the exact value from all N per-sequence gradients
  (``exact_noise_scale``), at fixed weights, and ``exact_noise_scale`` against per-sample
  gradients known in closed form;
* a run stopped by the patience rule on a noisy curve against the same run trained longer
  (``adamnoise check-stopping``), which must report that it moved.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from test_training_noise_scale import LinearSamples
from test_training_support import tiny_run, write_tiny_corpus

from adamnoise.training.batches import SequenceCut, micro_batch_plan
from adamnoise.training.config import RunConfig
from adamnoise.training.evaluation import evaluate
from adamnoise.training.exact_noise import exact_noise_scale
from adamnoise.training.gradients import GradientAccumulator
from adamnoise.training.noise_scale import unbiased_estimates
from adamnoise.training.trainer import train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    torch.set_num_threads(1)
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus") / "pydoc-slice")


def tiny_model(corpus, seed=0):
    from adamnoise.data.corpus import load_prepared
    from adamnoise.models import build_model

    data = load_prepared(corpus)
    torch.manual_seed(seed)
    model = build_model(tiny_run(corpus)["model"], len(data.vocab))
    return data, model


def test_evaluation_standard_error_over_sequences(corpus):
    data, model = tiny_model(corpus)
    cut = SequenceCut(data.valid, 16)  # 43 full sequences and a tail of 11 tokens
    assert cut.tail_len == 11
    loss, se = evaluate(model, model, cut, 8, contextlib.nullcontext)
    # by hand: every scored window's mean loss and token count
    with torch.no_grad():
        model.eval()
        sums, lengths = [], []
        stream = data.valid
        for start in range(0, stream.numel() - 1, 16):
            window = stream[start : start + 17]
            losses = model(window[None, :-1], window[None, 1:]).double()
            sums.append(losses.sum().item())
            lengths.append(losses.numel())
    sums, lengths = np.array(sums), np.array(lengths)
    mean = sums.sum() / lengths.sum()
    weights = lengths / lengths.sum()
    n = len(sums)
    expected_se = math.sqrt(n / (n - 1) * np.sum(weights**2 * (sums / lengths - mean) ** 2))
    assert loss == pytest.approx(mean, rel=1e-9)
    assert se == pytest.approx(expected_se, rel=1e-9)
    # without the tail (equal lengths) the weighted form is the plain s / sqrt(n)
    equal = SequenceCut(data.valid[: 43 * 16 + 1], 16)
    _, se_equal = evaluate(model, model, equal, 8, contextlib.nullcontext)
    per_sequence = sums[:-1] / 16
    assert se_equal == pytest.approx(np.std(per_sequence, ddof=1) / math.sqrt(43), rel=1e-9)


def test_exact_noise_scale_of_known_per_sequence_gradients():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(30, 5)) + np.array([1.0, 0, 0, 0, 0])
    model = LinearSamples(torch.from_numpy(samples))
    cut = SequenceCut(torch.arange(31), seq_len=1)  # sequence i's input is token i
    exact = exact_noise_scale(model, [model.theta], cut)
    mean = samples.mean(axis=0)
    assert exact.grad_sq_norm == pytest.approx((mean**2).sum(), rel=1e-12)
    trace = ((samples - mean) ** 2).sum() / (30 - 1)
    assert exact.noise_trace == pytest.approx(trace, rel=1e-12)
    assert exact.b_simple == pytest.approx(trace / (mean**2).sum(), rel=1e-12)


def test_micro_batch_estimator_converges_to_the_exact_value(corpus):
    """At fixed weights of a real model, the mean of the trainer's per-step estimates over many
    batches drawn without replacement equals the exact |G|^2 and tr(Sigma) within their
    standard errors: the estimator the runs report is unbiased for the quantity it names."""
    data, model = tiny_model(corpus)
    model.train()
    cut = SequenceCut(data.train, 16)
    n = cut.num_sequences
    params = [p for p in model.parameters() if p.requires_grad]
    exact = exact_noise_scale(model, params, cut)
    accumulator = GradientAccumulator(params)
    batch_size, generator = 32, torch.Generator().manual_seed(1)
    slices, b_small = micro_batch_plan(batch_size, 8)
    grad_sq, trace = [], []
    for _ in range(300):
        indices = torch.randperm(n, generator=generator)[:batch_size]
        inputs, targets = cut.batch(indices)
        _, small, big = accumulator.run(model, [(inputs[s], targets[s]) for s in slices])
        g, t = unbiased_estimates(small.item(), big.item(), b_small, batch_size, n)
        grad_sq.append(g)
        trace.append(t)
        for p in params:
            p.grad = None
    for estimates, truth in ((grad_sq, exact.grad_sq_norm), (trace, exact.noise_trace)):
        se = np.std(estimates, ddof=1) / math.sqrt(len(estimates))
        assert abs(np.mean(estimates) - truth) < 4 * se, (np.mean(estimates), truth, se)
        assert se < 0.1 * abs(truth)  # the check has the power to see a 40 % bias
    assert exact.b_simple == pytest.approx(exact.noise_trace / exact.grad_sq_norm)
    assert 1 < exact.b_simple < n


def test_run_records_evaluation_noise_and_the_exact_noise_scale(corpus, tmp_path):
    out = tmp_path / "run.nc"
    train(
        RunConfig.from_dict(tiny_run(corpus, exact_noise_scale=True)), out,
        progress_stream=io.StringIO(),
    )  # fmt: skip
    with xr.open_dataset(out) as ds:
        best = int(np.nanargmin(ds["val_loss"].values))
        se = ds["val_loss_se"].values
        assert np.all(se > 0) and np.all(se < 0.5)
        assert float(ds["min_val_ppl_se"]) == pytest.approx(float(ds["min_val_ppl"]) * se[best])
        assert float(ds["b_simple_at_best"]) == pytest.approx(ds["b_simple"].values[best])
        assert np.isfinite(float(ds["b_simple_exact"])) and float(ds["b_simple_exact"]) > 0
        assert np.isfinite(float(ds["test_ppl"])) and float(ds["test_ppl_se"]) > 0


def write_run(results, corpus, run_id, lr=1e-2, **training):
    """A run of experiment ``e`` trained into RESULTS/e/runs/RUN_ID as the workflow lays it out
    (lr 1e-2: a noisy validation curve)."""
    raw = tiny_run(corpus, **training)
    raw["run_id"] = run_id
    raw["optimizer"]["lr"] = lr
    run_dir = results / "e" / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "run.yaml").write_text(yaml.safe_dump(raw))
    train(RunConfig.from_dict(raw), run_dir / "result.nc", progress_stream=io.StringIO())
    return run_dir


def test_check_stopping_finds_a_run_stopped_on_noise(corpus, tmp_path, capsys):
    """Patience 1 stops the run at the first evaluation that is not a new minimum; trained on
    without it, the same run finds a minimum more than 1 % lower, and the check says so."""
    from adamnoise.cli import main

    results = tmp_path / "results"
    run_dir = write_run(results, corpus, "stopped", epochs=6, patience=1)
    with xr.open_dataset(run_dir / "result.nc") as ds:
        assert ds.attrs["stop_reason"] == "patience"
        stored = float(ds["min_val_ppl"])
    assert main(["check-stopping", str(results), "--sample", "1"]) == 1
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "stopped" in row and "MOVED" in row)
    longer = float(line.split()[6])  # MOVED run stop stored @ step longer
    assert longer < 0.99 * stored
    assert "1 of 1 moved by more than 1 %" in out


def test_check_stopping_passes_a_run_trained_to_its_cap(corpus, tmp_path, capsys):
    """A run trained to its cap, retrained to the same cap, repeats its minimum exactly (CPU);
    with twice the budget the check reports whatever the longer run finds."""
    from adamnoise.cli import main

    results = tmp_path / "results"
    run_dir = write_run(results, corpus, "capped", epochs=3)
    with xr.open_dataset(run_dir / "result.nc") as ds:
        stored = float(ds["min_val_ppl"])
    # the results directory or one experiment's directory in it
    assert main(["check-stopping", str(results / "e"), "--sample", "1", "--cap-factor", "1"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "capped" in row)
    assert line.startswith("ok") and "+0.00 %" in line
    assert float(line.split()[6]) == pytest.approx(stored, abs=5e-4)
    assert "0 of 1 moved" in out


def test_check_stopping_draws_from_the_flagged_runs(corpus, tmp_path, capsys):
    """--flagged draws only runs whose best evaluation lies in the last 10 % of their steps: a
    run still improving at its cap (lr 3e-3, two epochs: its best is its last evaluation) is
    drawn, the run stopped by patience (best at step 84 of 96) is not."""
    from adamnoise.check_stopping import is_flagged
    from adamnoise.cli import main

    results = tmp_path / "results"
    improving = write_run(results, corpus, "improving", lr=3e-3, epochs=2)
    stopped = write_run(results, corpus, "stopped", epochs=6, patience=1)
    assert is_flagged(improving) and not is_flagged(stopped)
    # still improving at its cap: its budget was too short, and the check says so
    assert main(["check-stopping", str(results), "--sample", "5", "--flagged"]) == 1
    out = capsys.readouterr().out
    checked = [line.split()[1] for line in out.splitlines() if line.startswith(("ok", "MOVED"))]
    assert "1 of 1 runs" in out and checked == ["improving"]
