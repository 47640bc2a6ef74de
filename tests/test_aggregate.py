"""Aggregation of real run results into one xarray Dataset, and the flip predictions from it."""

import json

import numpy as np
import pytest
import xarray as xr
from experiment_fixtures import train_runs

from adamnoise.aggregate import aggregate_directory
from adamnoise.analysis import crossing, predict_flips
from adamnoise.data.corpus import prepare_corpus
from adamnoise.io import save_netcdf
from adamnoise.optima import sweep_optima
from adamnoise.status import STATUS_CODES, STOP_CODES
from adamnoise.workflow_config import load_experiments

CONFIG = {
    "active": ["mini"],
    "experiments": {
        "mini": {
            "dataset": "pydoc-char",
            "seq_len": 16,
            "model": {"preset": "gpt-tiny"},
            "optimizer": {"name": "adam", "eps": 1e-6},
            "training": {
                "micro_batch_size": 2,
                "epochs": 1,
                "max_steps": 6,
                "eval_every": 0.0005,
                "eval_batch_size": 512,
                "num_threads": 1,
            },
            "grid": {
                "batch_size": [4, 8],
                "beta1": [0.9],
                "beta2": [0.9, 0.999],
                "lr": [1e-3],
                "seed": [0],
            },
        }
    },
}
MISSING_RUN = "bs8_b1-0.9_b2-0.999_lr-0.001_s0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three of the four runs of a 2x2 grid, trained for real by `adamnoise train`."""
    root = tmp_path_factory.mktemp("aggregate")
    corpus = root / "data" / "pydoc-char"
    prepare_corpus("pydoc-char", corpus)
    experiment = load_experiments(CONFIG)["mini"]
    train_runs(experiment, corpus, root, skip=MISSING_RUN)
    return experiment, root


def test_aggregate_has_grid_dims_units_and_provenance(trained, tmp_path):
    experiment, root = trained
    dataset = aggregate_directory(experiment, root / "runs")
    path = tmp_path / "aggregate.nc"
    save_netcdf(dataset, path)
    reopened = xr.open_dataset(path)
    assert reopened["val_ppl"].dims == ("batch_size", "beta1", "beta2", "lr", "seed", "eval")
    assert reopened["min_val_ppl"].dims == ("batch_size", "beta1", "beta2", "lr", "seed")
    assert list(reopened["batch_size"].values) == [4, 8]
    assert reopened["b_simple"].attrs["units"] == "sequences"
    assert reopened.attrs["provenance_git_commit"]
    assert json.loads(reopened.attrs["experiment_config"])["grid"]["beta2"] == [0.9, 0.999]
    assert reopened.attrs["n_train_sequences"] > 1000


def test_missing_run_is_nan_and_reported(trained, capsys):
    experiment, root = trained
    dataset = aggregate_directory(experiment, root / "runs")
    missing = dataset.sel(batch_size=8, beta2=0.999).squeeze()
    assert np.isnan(missing["min_val_ppl"]) and int(missing["status"]) == STATUS_CODES["missing"]
    assert json.loads(dataset.attrs["missing_runs"]) == [MISSING_RUN]
    assert MISSING_RUN in capsys.readouterr().err
    present = dataset.sel(batch_size=4, beta2=0.9).squeeze()
    assert int(present["status"]) == STATUS_CODES["completed"]
    # the minimum recorded in the run equals the minimum of its own validation series
    assert float(present["min_val_ppl"]) == pytest.approx(float(present["val_ppl"].min()))


def test_stopping_flags_and_noise_scale_at_the_best(trained):
    experiment, root = trained
    dataset = aggregate_directory(experiment, root / "runs")
    present = dataset.sel(batch_size=4, beta2=0.9).squeeze()
    # six steps of a long epoch: every run is still improving when its cap ends it
    assert int(present["stop_reason"]) == STOP_CODES["cap"]
    assert int(present["best_is_last"]) == 1
    missing = dataset.sel(batch_size=8, beta2=0.999).squeeze()
    assert int(missing["stop_reason"]) == STOP_CODES["missing"]
    # each run carries its own evaluation epochs and steps
    steps = present["eval_step"].values
    assert steps[0] == 0 and np.all(np.diff(steps[np.isfinite(steps)]) > 0)
    # B_simple read at the best evaluation, from the run's own series
    at_best = present["b_simple"].values[steps == float(present["best_step"])]
    assert float(present["b_simple_at_best"]) == pytest.approx(float(at_best[0]))
    # the evaluation noise of every evaluation, and of the minimum
    se = present["val_loss_se"].values[np.isfinite(steps)]
    assert np.all(se > 0)
    assert float(present["min_val_ppl_se"]) == pytest.approx(
        float(present["min_val_ppl"])
        * float(se[steps[np.isfinite(steps)] == float(present["best_step"])][0])
    )
    # the realised batch size N/m next to the configured one
    n = dataset.attrs["n_train_sequences"]
    assert n == experiment.num_train_sequences
    m = round(n / 4)
    assert float(dataset["mean_batch_size"].sel(batch_size=4)) == pytest.approx(n / m)


def test_optima_and_flips_from_measured_noise_scale(trained):
    experiment, root = trained
    dataset = aggregate_directory(experiment, root / "runs")
    flips = predict_flips(dataset)
    optima = sweep_optima(dataset, "beta2", noise_ratio=flips["noise_ratio"])
    ppl = dataset["min_val_ppl"].sel(batch_size=4).squeeze()
    expected = float(dataset["beta2"][int(np.nanargmin(ppl.values))])
    assert float(optima["best_beta2"].sel(batch_size=4).squeeze()) == expected
    # one beta2 is missing at batch size 8: the other is not judged against nothing, it wins
    assert float(optima["best_beta2"].sel(batch_size=8).squeeze()) == 0.9
    assert int(optima["n_best_is_last"].sel(batch_size=4).squeeze()) == 2

    n = dataset.attrs["n_train_sequences"]
    b_simple = float(flips["b_simple"].sel(quantile=0.5))
    assert b_simple > 0
    assert flips.attrs["b_simple_source"].startswith("B_simple estimate at the best evaluation")
    # the one scale: lambda at every batch size with the pooled median
    realised_all = dataset["mean_batch_size"].values
    np.testing.assert_allclose(
        flips["noise_ratio"].values, (n / realised_all - 1) / (n - 1) * b_simple
    )
    half = float(flips["flip_batch_size"].sel(threshold=0.5, quantile=0.5))
    assert half == pytest.approx(2 * n * b_simple / (n + 2 * b_simple - 1))
    # lambda per batch size uses that batch size's own B_simple at the realised N/m
    own = flips["noise_ratio_own"].sel(batch_size=4, quantile=0.5)
    b4 = float(flips["b_simple_by_batch"].sel(batch_size=4, quantile=0.5))
    realised = float(dataset["mean_batch_size"].sel(batch_size=4))
    assert float(own) == pytest.approx((n / realised - 1) / (n - 1) * b4)


def test_flip_crossing_is_interpolated_in_log_batch_size():
    sizes = np.array([8.0, 32.0, 512.0])
    # lambda 2 at b = 8, 0.25 at b = 32: crosses 0.5 at log-fraction 1.5/1.75 of the way
    b = crossing(sizes, np.array([2.0, 0.25, 0.0]), 0.5)
    assert b == pytest.approx(np.exp(np.log(8) + 1.5 / 1.75 * np.log(4)))
    assert np.isnan(crossing(sizes, np.array([0.4, 0.3, 0.0]), 0.5))


@pytest.mark.filterwarnings("error")
def test_report_figures_draw_the_measurements_and_the_prediction(trained):
    import matplotlib

    matplotlib.use("Agg")
    from adamnoise import plots

    experiment, root = trained
    dataset = aggregate_directory(experiment, root / "runs")
    flips = predict_flips(dataset)
    optima = sweep_optima(dataset, "beta2", noise_ratio=flips["noise_ratio"])
    figure = plots.beta_sweep(dataset, flips, optima, "beta2")
    sweep_axes, best_axes = figure.axes[0], figure.axes[1]
    # per batch size: the mean curve with error bars, one dot series per seed, the best circled,
    # and red crosses where runs stopped at their last evaluation (all of these tiny runs)
    crosses = [line for line in sweep_axes.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == dataset.sizes["batch_size"]
    circles = [line for line in sweep_axes.get_lines() if line.get_markersize() == 12]
    assert len(circles) == dataset.sizes["batch_size"]
    assert "best evaluation last" in figure._suptitle.get_text()
    flip = float(flips["flip_batch_size"].sel(threshold=0.5, quantile=0.5))
    dashed = [line for line in best_axes.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_xdata()[0] for line in dashed] == [pytest.approx(flip)]
    # each batch size is labelled with the sign predicted from its own lambda, as in Table 1
    labels = [text.get_text() for text in sweep_axes.get_legend().get_texts()]
    labels = [label for label in labels if label.startswith("b=")]
    words = {-1: "high β2 predicted", 1: "low β2 predicted", 0: "no prediction"}
    for label, b in zip(labels, dataset["batch_size"].values, strict=True):
        sign = int(optima["predicted_slope_sign"].sel(batch_size=b).squeeze())
        assert label == f"b={b} ({words[sign]})"

    figure = plots.noise_scale(dataset)
    assert len(figure.axes[0].get_lines()) == 3  # the three runs that exist


def test_max_update_growth_reads_the_slope_and_predicts_abs_c_over_two():
    """Synthetic max-updates exp(r n): the measured rate is r; the prediction is seed 004's."""
    from adamnoise.analysis import max_update_growth
    from adamnoise.theory.stability import stability_constant

    beta1, beta2 = [0.9, 0.999], [0.9, 0.999]
    rates = np.array([[0.0, 0.01], [0.05, -0.002]])  # (beta1, beta2)
    steps = np.arange(1, 601)
    updates = np.exp(rates[:, :, None] * steps)
    aggregate = xr.Dataset(
        {"max_update": (("beta1", "beta2", "train_step"), updates.astype(np.float32))},
        coords={"beta1": beta1, "beta2": beta2, "train_step": steps},
    )
    growth = max_update_growth(aggregate)  # seed 004: n = 500 from n = 495 and 505
    np.testing.assert_allclose(growth["measured"], rates, atol=1e-5)
    c = stability_constant(np.array(beta1)[:, None], np.array(beta2)[None, :])
    np.testing.assert_allclose(growth["stability_constant"], c)
    # beta1 = 0.999 > beta2 = 0.9 is in B- (C = -0.109): growth |C|/2; the rest are in B+
    assert growth["predicted"].sel(beta1=0.999, beta2=0.9) == pytest.approx(0.109109 / 2, rel=1e-4)
    assert float(growth["predicted"].sel(beta1=0.9, beta2=0.999)) == 0.0

    short = aggregate.isel(train_step=slice(0, 100))
    assert np.isnan(max_update_growth(short)["measured"]).all()
    with pytest.raises(ValueError, match="half_window"):
        max_update_growth(aggregate, step=3, half_window=5)


@pytest.mark.filterwarnings("error")
def test_stability_figure_of_a_product_grid(trained):
    """Seed 004's figure on a beta1 x beta2 grid (a missing run among them): one max-update curve
    and one dotted bound per beta pair of the first batch size, every run's slope, every pair."""
    import matplotlib

    matplotlib.use("Agg")
    from adamnoise import plots
    from adamnoise.analysis import max_update_growth

    experiment, root = trained
    dataset = aggregate_directory(experiment, root / "runs")
    growth = max_update_growth(dataset, step=3, half_window=2)
    assert growth["measured"].dims == ("batch_size", "beta1", "beta2", "lr", "seed")
    assert growth["max_update_bound"].dims == ("beta1", "beta2", "train_step")
    assert np.isnan(growth["measured"].sel(batch_size=8, beta2=0.999)).all()  # the missing run
    figure = plots.stability(dataset, growth)
    curves, rates, plane = figure.axes[:3]
    assert len([line for line in curves.get_lines() if line.get_linestyle() == "-"]) == 2
    assert len(rates.collections[0].get_offsets()) == growth["measured"].size == 4
    assert len(plane.collections[0].get_offsets()) == 2


def test_the_aggregate_carries_the_result_files_units():
    """One definition of every variable's metadata: the aggregate reuses the result file's."""
    from adamnoise.aggregate import SCALARS, SERIES
    from adamnoise.training.result import EVAL_VARIABLES, SUMMARY_VARIABLES

    assert SCALARS == SUMMARY_VARIABLES
    for name in ("val_loss", "train_loss", "b_simple", "val_ppl"):
        assert SERIES[name] == EVAL_VARIABLES[name]
