"""Whatever diverged, the figures render: a panel whose runs all diverged says so, titles count the
runs they cannot draw, and a diverged run's minimum is NaN in the aggregate."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import torch
import xarray as xr
from test_training_support import tiny_run, write_tiny_corpus

from adamnoise.aggregate import aggregate_runs
from adamnoise.experiment import Experiment
from adamnoise.optima import sweep_optima
from adamnoise.training.config import RunConfig
from adamnoise.training.trainer import train

matplotlib.use("Agg")


def sweep_with_a_diverged_lr() -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """Two lrs; at the second every run diverged (NaN minimum, status 1), one run of the first
    is missing."""
    rng = np.random.default_rng(0)
    dims = ("batch_size", "beta1", "beta2", "lr", "seed")
    shape = (2, 1, 3, 2, 2)
    ppl = 10 + rng.random(shape)
    status = np.zeros(shape, np.int8)
    status[..., 1, :] = 1
    ppl[..., 1, :] = np.nan
    status[0, 0, 0, 0, 0], ppl[0, 0, 0, 0, 0] = -1, np.nan
    zeros = np.zeros(shape, np.int8)
    data = xr.Dataset(
        {
            "min_val_ppl": (dims, ppl),
            "status": (dims, status),
            "best_is_last": (dims, zeros),
            "stop_reason": (dims, zeros),
        },
        coords={
            "batch_size": [8, 64],
            "beta1": [0.9],
            "beta2": [0.9, 0.99, 0.999],
            "lr": [1e-3, 100.0],
            "seed": [0, 1],
            "mean_batch_size": ("batch_size", [8.0, 64.0]),
        },
        attrs={"experiment": "diverging"},
    )
    lam = xr.DataArray([3.0, 0.1], coords={"batch_size": [8, 64]}, dims="batch_size")
    optima = sweep_optima(data, "beta2", noise_ratio=lam)
    flips = xr.Dataset(
        {
            "flip_batch_size": (("threshold", "quantile"), [[20, 30, 40], [10, 15, 20]]),
            "flip_batch_size_own": ("threshold", [25.0, 12.0]),
        },
        coords={"threshold": [1.0, 0.5], "quantile": [0.25, 0.5, 0.75]},
        attrs={"n_train_sequences": 512},
    )
    return data, flips, optima


def test_a_panel_whose_runs_all_diverged_says_so_and_titles_count_dropped_runs():
    from adamnoise import plots

    data, flips, optima = sweep_with_a_diverged_lr()
    figure = plots.beta_sweep(data, flips, optima, "beta2")
    figure.savefig(io.BytesIO(), format="png")  # drawing is where a log axis of nothing fails
    diverged_panel = figure.axes[1]
    texts = [text.get_text() for text in diverged_panel.texts]
    assert any(
        t.startswith("no completed run") and "12 of 12 runs: 12 diverged" in t for t in texts
    )
    assert diverged_panel.get_title() == "lr = 100\n12 of 12 runs: 12 diverged"
    assert figure.axes[0].get_title() == "lr = 0.001\n1 of 12 runs: 1 missing"
    assert "not drawn: 13 of 24 runs: 12 diverged, 1 missing" in figure._suptitle.get_text()
    assert figure.axes[0].get_legend() is not None  # the legend moved to a panel with curves


def test_a_diverged_run_has_no_minimum_in_the_aggregate(tmp_path):
    torch.set_num_threads(1)
    corpus = write_tiny_corpus(tmp_path / "corpus")
    raw = tiny_run(corpus, epochs=1)
    raw["optimizer"] = {"name": "sgd", "lr": 1e4, "beta1": 0.0}  # NaN within a few steps
    out = tmp_path / "run.nc"
    train(RunConfig.from_dict(raw), out, progress_stream=io.StringIO())
    with xr.open_dataset(out) as result:
        assert result.attrs["status"] == "diverged"
        assert np.isfinite(float(result["min_val_ppl"]))  # the result keeps its step-0 value
        n_train = int(result.attrs["train_sequences"])
    batch_size = raw["training"]["batch_size"]
    experiment = Experiment(
        "diverging",
        {
            "dataset": "pydoc-char",
            "seq_len": raw["data"]["seq_len"],
            "train_sequences": n_train,
            "model": raw["model"],
            "optimizer": {"name": "sgd"},
            "grid": {
                "batch_size": [batch_size],
                "beta1": [0.0],
                "beta2": [0.999],
                "lr": [1e4],
                "seed": [raw["training"]["seed"]],
            },
        },
    )
    (run_id,) = experiment.run_ids()
    aggregate = aggregate_runs(experiment, {run_id: out})
    assert int(aggregate["status"].squeeze()) == 1
    assert np.isnan(float(aggregate["min_val_ppl"].squeeze()))
