"""Figures across experiments and on the (beta1, beta2) grid: synthetic aggregates, known
answers."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from adamnoise import plots  # noqa: E402
from adamnoise.comparison import (  # noqa: E402
    load_comparisons,
    optimizer_gap,
    tuned_optimum,
)
from adamnoise.config_schema import check_schema  # noqa: E402
from adamnoise.errors import ConfigError  # noqa: E402
from adamnoise.predictions import diagonal_gap  # noqa: E402


def aggregate(
    ppl, optimizer, beta1=(0.9,), beta2=(0.999,), lrs=(1e-3,), batch=(8, 64), status=None
):
    """ppl[batch, beta1, beta2, lr, seed]."""
    ppl = np.asarray(ppl, dtype=float)
    dims = ("batch_size", "beta1", "beta2", "lr", "seed")
    status = np.zeros(ppl.shape, np.int8) if status is None else np.asarray(status, np.int8)
    return xr.Dataset(
        {"min_val_ppl": (dims, ppl), "status": (dims, status)},
        coords={
            "batch_size": list(batch),
            "beta1": list(beta1),
            "beta2": list(beta2),
            "lr": list(lrs),
            "seed": np.arange(ppl.shape[-1]),
        },
        attrs={
            "experiment": f"exp-{optimizer}",
            "experiment_config": json.dumps({"optimizer": {"name": optimizer}}),
        },
    )


def test_tuned_optimum_takes_the_best_complete_setting_per_batch_size():
    # two lrs, two seeds; at b = 8 the lower lr wins (10 vs 12); at b = 64 the higher lr would
    # win on seed 0 (5) but its seed 1 diverged, so the lower lr (11) is the optimum
    ppl = np.array([[[[[10.0, 10.0], [12.0, 12.0]]]], [[[[11.0, 11.2], [5.0, np.nan]]]]])
    status = np.zeros(ppl.shape, np.int8)
    status[1, 0, 0, 1, 1] = 1
    tuned = tuned_optimum(aggregate(ppl, "adam", lrs=(1e-3, 1e-2), status=status))
    assert tuned["tuned_min_val_ppl"].values.tolist() == pytest.approx([10.0, 11.1])
    assert tuned["best_lr"].values.tolist() == [1e-3, 1e-3]
    assert tuned["tuned_std"].values[1] == pytest.approx(np.std([11.0, 11.2], ddof=1))
    assert tuned["n_candidates"].values.tolist() == [2, 1]


def test_optimizer_gap_in_nats_against_the_reference():
    adam = aggregate(np.array([10.0, 20.0]).reshape(2, 1, 1, 1, 1), "adam")
    sgd = aggregate(np.array([10.0, 40.0]).reshape(2, 1, 1, 1, 1), "sgd")
    gap = optimizer_gap({"exp-adam": adam, "exp-sgd": sgd})
    assert gap.attrs["reference"] == "exp-adam"
    assert gap["optimizer"].values.tolist() == ["adam", "sgd"]
    # equal at b = 8, SGD's perplexity twice Adam's at b = 64: ln 2 nats per token
    np.testing.assert_allclose(gap["gap_loss"].sel(experiment="exp-sgd"), [0.0, np.log(2)])
    np.testing.assert_allclose(gap["gap_loss"].sel(experiment="exp-adam"), [0.0, 0.0])
    fig = plots.optimizer_gap(gap)
    left, right = fig.axes
    assert len(right.get_lines()) >= 1 and right.get_xscale() == "log"
    with pytest.raises(ValueError, match="two or more"):
        optimizer_gap({"exp-adam": adam})


@pytest.mark.parametrize(
    "entry, key, message",
    [
        ({"figure": "beta2_sweep", "experiments": ["a", "b"]}, "figure", "not a comparison"),
        ({"figure": "optimizer_gap", "experiments": ["a", "zz"]}, "experiments", "named zz"),
    ],
)
def test_bad_comparisons_name_the_key(entry, key, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_comparisons({"comparisons": {"gap": entry}}, {"a": None, "b": None})
    assert error.value.key == f"comparisons.gap.{key}"


@pytest.mark.parametrize(
    "experiments, message",
    [(["a"], "at least 2 value"), (["a", "a"], "values repeat")],
)
def test_the_schema_wants_two_or_more_distinct_experiments(experiments, message):
    entry = {"figure": "optimizer_gap", "experiments": experiments}
    config = {"active": ["a"], "experiments": {}, "comparisons": {"gap": entry}}
    with pytest.raises(ConfigError, match=message) as error:
        check_schema(config)
    assert error.value.key == "comparisons.gap.experiments"


def test_comparisons_load():
    loaded = load_comparisons(
        {"comparisons": {"gap": {"figure": "optimizer_gap", "experiments": ["a", "b"]}}},
        {"a": None, "b": None},
    )
    assert loaded["gap"].experiments == ("a", "b")


def test_diagonal_gap_on_an_off_diagonal_grid():
    betas = (0.9, 0.99, 0.999)
    # seed means over (beta1 rows, beta2 columns); optimum off the diagonal at (0.9, 0.999) = 9,
    # best diagonal (0.99, 0.99) = 9.5: gap 0.5, rank 2 of 8 candidates (one diverged)
    means = np.array([[12.0, 10.0, 9.0], [11.0, 9.5, 10.5], [13.0, 12.0, 11.0]])
    ppl = np.stack([means - 0.1, means + 0.1], axis=-1)[None, :, :, None, :]
    status = np.zeros(ppl.shape, np.int8)
    status[0, 2, 0, 0, 1] = 1  # (0.999, 0.9) diverged on seed 1
    data = aggregate(ppl, "adam", beta1=betas, beta2=betas, batch=(8,), status=status)
    row = diagonal_gap(data).iloc[0]
    assert (row["best_beta1"], row["best_beta2"]) == (0.9, 0.999)
    assert row["diagonal_beta"] == 0.99
    assert row["gap"] == pytest.approx(0.5)
    assert row["gap_pct"] == pytest.approx(0.5 / 9 * 100)
    assert row["diagonal_rank"] == 2 and row["candidates"] == 8
    fig = plots.beta_grid(data)
    heat = fig.axes[0]
    assert len(heat.patches) == 3  # the diagonal cells are outlined
    tied = data.isel(beta1=0, drop=True)
    with pytest.raises(ValueError, match="grid"):
        diagonal_gap(tied)
