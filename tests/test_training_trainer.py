"""End-to-end trainer runs on a tiny real-text corpus: result file, determinism, divergence,
checkpoint/resume (including a SIGKILLed subprocess), CLI errors."""

from __future__ import annotations

import io
import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from test_training_support import adamnoise, tiny_run, write_tiny_corpus

from adamnoise.training.checkpoint import checkpoint_file, load_checkpoint
from adamnoise.training.config import ConfigError, RunConfig
from adamnoise.training.result import TIMING_VARIABLES
from adamnoise.training.trainer import Trainer, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    torch.set_num_threads(1)
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus") / "pydoc-slice")


def run_raw(raw: dict, out):
    outcome = train(RunConfig.from_dict(raw), out, progress_stream=io.StringIO())
    with xr.open_dataset(out) as ds:
        return outcome, ds.load()


def run(corpus, out, **training):
    return run_raw(tiny_run(corpus, **training), out)


def assert_same_series(a: xr.Dataset, b: xr.Dataset):
    """Every recorded number bit-identical (NaN equal to NaN), timings aside."""
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.variables:
        if name in TIMING_VARIABLES:
            continue
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name, strict=True)
    for key in ("status", "run_id", "run_config"):
        assert a.attrs[key] == b.attrs[key]


def direct_valid_loss(corpus_dir, seed: int, seq_len: int) -> float:
    """Validation loss of the freshly initialised model, computed window by window here."""
    from adamnoise.data.corpus import load_prepared
    from adamnoise.models import build_model

    data = load_prepared(corpus_dir)
    torch.manual_seed(seed)
    model = build_model(tiny_run(corpus_dir)["model"], len(data.vocab)).eval()
    stream, total, count = data.valid, 0.0, 0
    with torch.no_grad():
        for start in range(0, stream.numel() - 1, seq_len):
            window = stream[start : start + seq_len + 1]
            losses = model(window[None, :-1], window[None, 1:])
            total += losses.double().sum().item()
            count += losses.numel()
    return total / count


def test_run_writes_the_documented_result(corpus, tmp_path):
    out = tmp_path / "run.nc"
    outcome, ds = run(corpus, out)
    # 3000 chars, seq_len 16: 187 sequences, 23 batches of 8 per epoch; 2 epochs
    assert outcome.status == "completed" and outcome.steps == 46
    assert ds.attrs["status"] == "completed" and ds.attrs["run_id"] == "unit"
    assert ds.attrs["steps_per_epoch"] == 23 and ds.attrs["train_sequences"] == 187
    assert RunConfig.from_dict(json.loads(ds.attrs["run_config"])).run_id == "unit"
    assert ds.attrs["provenance_device"] == "cpu" and "provenance_git_commit" in ds.attrs
    assert not Path(f"{out}.ckpt").exists()  # checkpoint removed after the result

    # evaluations every round(0.5 * 23) = 12 steps, before training, and at the end
    assert ds["step"].values.tolist() == [0, 12, 24, 36, 46]
    np.testing.assert_allclose(ds["epoch"].values, ds["step"].values / 23)
    assert ds.sizes["train_step"] == 46 and ds["train_step"].values.tolist() == list(range(1, 47))
    for name in ("val_loss", "val_ppl", "train_loss", "b_simple", "grad_noise_trace"):
        assert ds[name].dims == ("eval",) and ds[name].attrs["units"]
    for name in ("loss", "lr", "grad_norm", "max_update", "clip_fraction"):
        assert ds[name].dims == ("train_step",) and ds[name].attrs["description"]

    val_loss = ds["val_loss"].values
    assert val_loss[0] == pytest.approx(direct_valid_loss(corpus, 0, 16), rel=1e-6)
    np.testing.assert_allclose(ds["val_ppl"].values, np.exp(val_loss))
    assert val_loss[-1] < val_loss[0] - 0.5  # it learns
    loss = ds["loss"].values
    assert math.isnan(ds["train_loss"].values[0])
    assert ds["train_loss"].values[1] == pytest.approx(loss[:12].mean())
    assert ds["train_loss"].values[-1] == pytest.approx(loss[36:46].mean())

    best = int(np.argmin(val_loss))
    assert float(ds["min_val_ppl"]) == pytest.approx(np.exp(val_loss[best]))
    assert int(ds["best_step"]) == ds["step"].values[best]
    assert float(ds["best_epoch"]) == pytest.approx(ds["epoch"].values[best])
    assert np.isfinite(float(ds["test_ppl"])) and float(ds["test_ppl"]) > 1
    assert float(ds["tokens_per_s"]) > 0 and float(ds["wall_time_s"]) > 0

    np.testing.assert_array_equal(ds["lr"].values, 3e-3)
    assert np.all(ds["clip_fraction"].values == 0)  # no clipping configured
    # Adam's first update moves every coordinate by about lr: max-update / lr is about 1
    assert ds["max_update"].values[0] == pytest.approx(1.0, rel=1e-3)
    assert np.all(np.isfinite(ds["grad_norm"].values)) and np.all(ds["grad_norm"].values > 0)
    assert math.isnan(ds["b_simple"].values[0])
    b_simple = ds["b_simple"].values[1:]
    assert np.all(np.isfinite(b_simple))
    np.testing.assert_allclose(
        b_simple, ds["grad_noise_trace"].values[1:] / ds["grad_sq_norm"].values[1:], rtol=1e-12
    )


def test_same_config_and_seed_give_identical_results(corpus, tmp_path):
    _, first = run(corpus, tmp_path / "a.nc", epochs=1)
    _, second = run(corpus, tmp_path / "b.nc", epochs=1)
    assert_same_series(first, second)
    _, other_seed = run(corpus, tmp_path / "c.nc", epochs=1, seed=1)
    assert not np.array_equal(first["loss"].values, other_seed["loss"].values)


def test_divergence_stops_and_writes_the_result(corpus, tmp_path):
    # the initial loss is about log(vocabulary) > 3: the first step counts as diverged
    outcome, ds = run(corpus, tmp_path / "div.nc", divergence_loss=3.0)
    assert outcome.status == "diverged" and ds.attrs["status"] == "diverged"
    assert ds.sizes["train_step"] == 1 and ds["loss"].values[0] > 3.0
    assert ds["step"].values.tolist() == [0]  # the evaluation before training is kept
    assert np.isfinite(float(ds["min_val_ppl"]))

    config = tiny_run(corpus)
    config["optimizer"] = {"name": "sgd", "lr": 1e4, "beta1": 0.0}  # a real blow-up
    outcome, ds = run_raw(config, tmp_path / "blowup.nc")
    assert outcome.status == "diverged" and outcome.steps == ds.sizes["train_step"] < 46
    assert not ds["loss"].values[-1] <= 30.0  # above the default threshold, or NaN


def test_checkpoint_resume_in_process_and_refusal(corpus, tmp_path):
    out = tmp_path / "r.nc"
    config = RunConfig.from_dict(tiny_run(corpus, epochs=1, checkpoint_every=5))
    trainer = Trainer(config, out, progress_stream=io.StringIO())
    for _ in range(7):
        trainer.train_step()
    path = trainer.save_checkpoint()
    assert path == checkpoint_file(f"{out}.ckpt")
    state = load_checkpoint(f"{out}.ckpt")
    assert state["step"] == 7 and state["engine"] == "sequential"
    assert len(state["members"][0]["history"]["loss"]) == 7

    different = tiny_run(corpus, epochs=1, checkpoint_every=5, batch_size=4)
    with pytest.raises(ConfigError, match=r"training\.batch_size \(8 -> 4\)"):
        Trainer(RunConfig.from_dict(different), out, resume=True, progress_stream=io.StringIO())

    # --resume without a checkpoint is a fresh start
    fresh = Trainer(config, tmp_path / "other.nc", resume=True, progress_stream=io.StringIO())
    assert fresh.step == 0 and fresh.resumed_from is None

    resumed = Trainer(config, out, resume=True, progress_stream=io.StringIO())
    assert resumed.step == 7
    resumed.run()
    with xr.open_dataset(out) as ds:
        resumed_ds = ds.load()
    assert not checkpoint_file(f"{out}.ckpt").exists()
    _, uninterrupted = run(corpus, tmp_path / "u.nc", epochs=1, checkpoint_every=5)
    # the manual steps skipped the step-0 evaluation: compare the per-step series
    for name in ("loss", "grad_norm", "max_update", "lr"):
        np.testing.assert_array_equal(resumed_ds[name].values, uninterrupted[name].values)


def test_context_len_model_trains(corpus, tmp_path):
    raw = tiny_run(corpus, max_steps=3, eval_every=10.0)
    raw["model"] = {"preset": "txl-tiny", "n_layer": 1, "mem_len": 8, "carry_memory": True}
    outcome = train(RunConfig.from_dict(raw), tmp_path / "txl.nc", progress_stream=io.StringIO())
    assert outcome.status == "completed" and outcome.steps == 3
    with xr.open_dataset(tmp_path / "txl.nc") as ds:
        # (3000 - 1 - 8) // 16 sequences: every one has 8 preceding tokens
        assert ds.attrs["train_sequences"] == 186
        assert np.all(np.isfinite(ds["val_loss"].values))


def test_plain_log_lines_when_not_a_terminal(corpus, tmp_path):
    stream = io.StringIO()
    config = RunConfig.from_dict(tiny_run(corpus, epochs=1, log_every=10))
    train(config, tmp_path / "log.nc", progress_stream=stream)
    lines = stream.getvalue().splitlines()
    assert any("step 10/23 loss" in line for line in lines)
    assert any("step 23/23 val_ppl" in line for line in lines)
    assert all(line.startswith("[unit] epoch ") for line in lines)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal(corpus, tmp_path):
    stream = Terminal()
    train(
        RunConfig.from_dict(tiny_run(corpus, epochs=1)), tmp_path / "bar.nc", progress_stream=stream
    )
    shown = stream.getvalue()
    assert "23/23" in shown and "val_ppl=" in shown and "loss=" in shown  # tqdm's bar
    assert "[unit] epoch" not in shown  # no plain log lines


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def test_cli_config_error_names_the_key(tmp_path):
    from adamnoise.cli import main

    raw = tiny_run(tmp_path, patience=0)
    config = write_config(tmp_path / "bad.yaml", raw)
    proc = adamnoise("train", str(config), "--out", str(tmp_path / "x.nc"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "training.patience: must be >= 1 or null, got 0" in err
    assert "Traceback" not in err
    # a missing corpus is reported on data.corpus, also with exit code 2
    config = write_config(tmp_path / "nocorpus.yaml", tiny_run(tmp_path / "missing"))
    assert main(["train", str(config), "--out", str(tmp_path / "y.nc")]) == 2


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_identical(corpus, tmp_path):
    raw = tiny_run(corpus, epochs=6, checkpoint_every=4, eval_every=1.0, test_at_best=True)
    config = write_config(tmp_path / "run.yaml", raw)
    out = tmp_path / "killed.nc"
    checkpoint = checkpoint_file(f"{out}.ckpt")

    proc = adamnoise("train", str(config), "--out", str(out))
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        assert proc.poll() is None, "run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.1)  # land somewhere after the first checkpoint, mid-step or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    killed_at = load_checkpoint(checkpoint.parent)["step"]
    assert 4 <= killed_at < 6 * 23

    resumed = adamnoise("train", str(config), "--out", str(out), "--resume")
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"resumed from step {killed_at}" in stderr
    assert not checkpoint.parent.exists()

    with xr.open_dataset(out) as ds:
        resumed_ds = ds.load()
    _, uninterrupted = run(
        corpus, tmp_path / "straight.nc", epochs=6, checkpoint_every=4, eval_every=1.0
    )
    assert resumed_ds.sizes["train_step"] == 6 * 23
    assert_same_series(resumed_ds, uninterrupted)


def test_bf16_autocast_trains_and_changes_the_arithmetic(corpus, tmp_path):
    """precision: bf16 runs the forward pass under autocast (on CPU here, as on CUDA)."""
    _, fp32 = run(corpus, tmp_path / "fp32.nc", epochs=1)
    outcome, bf16 = run(corpus, tmp_path / "bf16.nc", epochs=1, precision="bf16")
    assert outcome.status == "completed"
    assert json.loads(bf16.attrs["run_config"])["training"]["precision"] == "bf16"
    assert np.all(np.isfinite(bf16["loss"].values))
    # same data order and initialisation, lower-precision matmuls: close but not identical
    assert not np.array_equal(fp32["loss"].values, bf16["loss"].values)
    np.testing.assert_allclose(bf16["loss"].values[:5], fp32["loss"].values[:5], rtol=0.05)


def test_patience_stops_after_the_minimum(corpus, tmp_path):
    """The stopping rule: the run ends at the p-th evaluation in a row without a new minimum."""
    outcome, ds = run(corpus, tmp_path / "run.nc", epochs=200, eval_every=1.0, patience=3)
    val = ds["val_loss"].values
    best = int(np.argmin(val))
    assert outcome.stop_reason == ds.attrs["stop_reason"] == "patience"
    assert outcome.steps < int(ds.attrs["total_steps_planned"])  # stopped before the cap
    assert len(val) - 1 - best == 3  # exactly p evaluations after the best one
    assert np.all(val[best + 1 :] >= val[best])  # none of them improved
    assert ds.attrs["best_is_last"] == 0
    assert float(ds["min_val_ppl"]) == pytest.approx(np.exp(val[best]))


def test_a_run_stopped_by_its_cap_is_flagged(corpus, tmp_path):
    # a fraction of an epoch: still improving when the budget ends
    outcome, ds = run(corpus, tmp_path / "run.nc", epochs=0.5, eval_every=0.25, patience=3)
    assert outcome.stop_reason == ds.attrs["stop_reason"] == "cap"
    assert ds.attrs["best_is_last"] == 1
    assert int(np.argmin(ds["val_loss"].values)) == ds.sizes["eval"] - 1


def test_every_sequence_is_trained_on_once_per_epoch(corpus, tmp_path):
    """187 sequences, b = 8: 23 batches of 8 or 9 sequences, one epoch is all 187 tokens' worth."""
    _, ds = run(corpus, tmp_path / "run.nc", epochs=1, eval_every=1.0)
    assert ds.attrs["steps_per_epoch"] == 23 and ds.attrs["train_sequences"] == 187
    assert ds.attrs["mean_batch_size"] == pytest.approx(187 / 23)
    assert float(ds["tokens_per_s"]) > 0 and ds.sizes["train_step"] == 23


def test_full_batch_with_a_micro_batch_that_does_not_divide_it(corpus, tmp_path):
    """b = N = 187 sequences in micro-batches of 64: slices of 63, 62, 62; one step per epoch."""
    outcome, ds = run(
        corpus, tmp_path / "run.nc", batch_size=187, micro_batch_size=64, epochs=3, eval_every=1.0
    )
    assert outcome.status == "completed" and outcome.steps == 3
    assert ds.attrs["steps_per_epoch"] == 1 and ds.attrs["mean_batch_size"] == 187
    assert ds.attrs["noise_scale_b_big"] == 187
    assert ds.attrs["noise_scale_b_small"] == pytest.approx(3 / (1 / 63 + 2 / 62))
    assert np.all(np.isfinite(ds["b_simple"].values[1:]))


def test_patience_fraction_waits_in_proportion_to_the_best_step(corpus, tmp_path):
    """At full batch an evaluation is one step: the fraction keeps the run going after its best
    step for at least that fraction of it, on top of the p evaluations."""
    common = dict(batch_size=187, micro_batch_size=64, epochs=300, eval_every=1.0, patience=2)
    _, plain = run(corpus, tmp_path / "plain.nc", **common)
    _, patient = run(corpus, tmp_path / "patient.nc", **common, patience_fraction=0.5)
    for ds in (plain, patient):
        assert ds.attrs["stop_reason"] == "patience"
    best = int(patient["best_step"])
    assert patient.sizes["train_step"] - best >= 0.5 * best
    assert plain.sizes["train_step"] - int(plain["best_step"]) == 2
    assert patient.sizes["train_step"] > plain.sizes["train_step"]
