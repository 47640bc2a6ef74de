"""Seed 004 Fig. 1 as configuration: betas along a normal curve, runs that train on past a
divergence, and the aggregate, growth analysis and figure of such runs (real runs, tiny model)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from experiment_fixtures import changed_config, train_runs
from test_training_support import tiny_run, write_tiny_corpus

from adamnoise.aggregate import aggregate_directory
from adamnoise.analysis import max_update_growth
from adamnoise.errors import ConfigError
from adamnoise.status import STATUS_CODES, STOP_CODES
from adamnoise.theory import stability as st
from adamnoise.training.config import RunConfig
from adamnoise.training.trainer import Trainer, train
from adamnoise.workflow_config import load_experiments

REPO = Path(__file__).resolve().parents[1]
# the run-id wildcard of workflow/rules/common.smk: every curve run must match it
RUN_ID = re.compile(r"bs\d+_b1-[^_/]+_b2-[^_/]+_lr-[^_/]+_s\d+")
SEED_POINT = {"beta1": 0.9, "beta2": 0.999}  # (beta, gamma) = (0.999, 0.9) in seed 004's letters

CURVE = yaml.safe_load(
    """
active: [curve]
experiments:
  curve:
    dataset: pydoc-char
    seq_len: 32
    model: {preset: gpt-tiny}
    optimizer: {name: adam, eps: 1.0e-30}
    training: {micro_batch_size: 4, epochs: 1, stop_on_divergence: false}
    grid:
      batch_size: [8, 16]
      betas:
        normal_curve:
          through: {beta1: 0.9, beta2: 0.999}
          beta1_range: [0.9, 0.999]
          points: 64
      lr: [1.0e-3]
      seed: [0, 1]
    figures: [stability]
"""
)


def curve_config(**changes):
    """CURVE with dotted (``a__b``) keys of the experiment replaced (None deletes the key)."""
    return changed_config(CURVE, "curve", **changes)


# ---------------------------------------------------------------------------------------------
# The points: on the normal curve of App. E, 64 of them, uniform, both regions
# ---------------------------------------------------------------------------------------------


def test_curve_points_lie_on_the_normal_curve_uniformly_in_both_regions():
    experiment = load_experiments(CURVE)["curve"]
    pairs = np.array(experiment.curve_pairs)
    beta1, beta2 = pairs[:, 0], pairs[:, 1]
    assert pairs.shape == (64, 2)  # "taking 64 points (beta, gamma) uniformly along this curve"
    # App. E: gamma = (k - 2 beta^3)^(1/3), k = 2 beta0^3 + gamma0^3; beta = beta2, gamma = beta1
    k = 2 * 0.999**3 + 0.9**3
    assert k == pytest.approx(2.723005998, abs=1e-12)
    np.testing.assert_allclose(2 * beta2**3 + beta1**3, k, rtol=1e-13)
    # the curve through the seed's point starts there, exactly, and ends at beta1 = 0.999
    assert tuple(pairs[0]) == (0.9, 0.999) and beta1[-1] == 0.999
    # uniformly along the curve: equal steps of Euclidean arc length in the (beta, gamma) plane
    steps = np.hypot(np.diff(beta1), np.diff(beta2))
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-6)
    # the curve is normal to the level curves of C: the App. E ODE d gamma / d beta =
    # (dC/d gamma) / (dC/d beta) = (-2/gamma^2) / (1/beta^2), checked by finite differences
    slope = np.diff(beta1) / np.diff(beta2)
    mid1, mid2 = (beta1[1:] + beta1[:-1]) / 2, (beta2[1:] + beta2[:-1]) / 2
    np.testing.assert_allclose(slope, -2 * mid2**2 / mid1**2, rtol=1e-5)
    # C falls monotonically along it (Sec. 3.1), from the default's C = 0.2212 (B+) into B-
    c = st.stability_constant(beta1, beta2)
    assert c[0] == pytest.approx(2 / 0.9 - 1 / 0.999 - 1) and c[0] == pytest.approx(0.22122, 1e-4)
    assert np.all(np.diff(c) < 0)
    regions = st.stability_region(beta1, beta2)
    assert (regions == "B+").sum() == 52 and (regions == "B-").sum() == 12
    # B0 is crossed between two neighbours, where normal_curve_zero_crossing puts it
    zero_beta1, _ = st.normal_curve_zero_crossing(0.9, 0.999)
    last_stable = int(np.flatnonzero(c > 0)[-1])
    assert beta1[last_stable] < zero_beta1 < beta1[last_stable + 1]


def test_section_ends_and_direction_follow_the_range():
    beta1, beta2 = st.normal_curve_section(0.9, 0.999, (0.99, 0.95), 5)
    assert beta1[0] == 0.99 and beta1[-1] == 0.95 and np.all(np.diff(beta1) < 0)
    np.testing.assert_allclose(2 * beta2**3 + beta1**3, st.normal_curve_constant(0.9, 0.999))
    low, high = st.normal_curve_beta1_interval(float(st.normal_curve_constant(0.9, 0.999)))
    # the curve enters the unit square at beta2 = 1 and leaves it at beta1 = 1 (beta2 = 0.9515)
    assert low == pytest.approx((2.723005998 - 2) ** (1 / 3)) and high == 1.0
    for bad in ((0.85, 0.99), (0.9, 1.0), (0.95, 0.95)):
        with pytest.raises(ValueError):
            st.normal_curve_section(0.9, 0.999, bad, 8)


# ---------------------------------------------------------------------------------------------
# Experiment config: runs, ids, dims, and errors at parse time
# ---------------------------------------------------------------------------------------------


def test_curve_is_crossed_with_the_other_axes_under_the_usual_run_ids():
    experiment = load_experiments(CURVE)["curve"]
    assert experiment.grid_dims() == ("batch_size", "point", "lr", "seed")
    assert len(experiment.points()) == 2 * 64 * 1 * 2
    run_ids = experiment.run_ids()
    assert len(set(run_ids)) == len(run_ids)
    assert all(RUN_ID.fullmatch(run_id) for run_id in run_ids)
    assert "bs8_b1-0.9_b2-0.999_lr-0.001_s0" in run_ids
    assert "bs16_b1-0.999_b2-0.952074_lr-0.001_s1" in run_ids
    # every run sits at its own cell of the aggregate; its config carries the exact betas
    cells = {experiment.grid_index(point) for point in experiment.points()}
    assert len(cells) == len(run_ids)
    point = experiment.points()[-1]
    assert experiment.grid_index(point) == (1, 63, 0, 1)
    run = experiment.run_config(point, "d")
    assert (run["optimizer"]["beta1"], run["optimizer"]["beta2"]) == experiment.curve_pairs[63]
    assert type(run["optimizer"]["beta2"]) is float  # a plain float: the run config is YAML
    assert run["training"]["stop_on_divergence"] is False
    RunConfig.from_dict(yaml.safe_load(yaml.safe_dump(run)))


@pytest.mark.parametrize(
    ("changes", "named_key"),
    [
        ({"grid__beta1": [0.9]}, "grid.beta1: the betas come from grid.betas"),
        ({"tie_betas": True}, "tie_betas"),
        ({"grid__betas": {"level_curve": {}}}, "grid.betas.level_curve: unknown key"),
        ({"grid__betas__normal_curve__steps": 3}, "normal_curve.steps: unknown key"),
        ({"grid__betas__normal_curve__points": None}, "normal_curve.points: required"),
        ({"grid__betas__normal_curve__points": 1}, "normal_curve.points: expected an integer"),
        ({"grid__betas__normal_curve__through": [0.999, 0.9]}, "normal_curve.through: expected"),
        ({"grid__betas__normal_curve__through": {"beta1": 1.0, "beta2": 0.9}}, "through.beta1"),
        ({"grid__betas__normal_curve__beta1_range": [0.8, 0.999]}, r"beta1_range: \[0.8, 0.999\]"),
        ({"grid__betas__normal_curve__beta1_range": [0.95, 0.95]}, "beta1_range"),
        ({"grid__betas__normal_curve__beta1_range": [0.95]}, "beta1_range: expected"),
        ({"optimizer": {"name": "sgd"}}, "grid.betas: optimizer 'sgd' has no beta2"),
        ({"training__stop_on_divergence": None}, "training.stop_on_divergence: set it to false"),
        ({"training__patience": 3}, "training.patience: remove it"),
        ({"figures": ["beta2_sweep"]}, "figures: 'beta2_sweep' reads a beta1 or beta2 axis"),
    ],
)
def test_bad_curve_is_rejected_at_parse_time_naming_the_key(changes, named_key):
    with pytest.raises(ConfigError, match=r"experiments\.curve\.") as error:
        load_experiments(curve_config(**changes))
    assert re.search(named_key, str(error.value)), str(error.value)


def test_points_that_share_a_run_id_are_rejected_naming_points():
    """100,000 points 1.1e-6 apart in arc length: run ids print 0.9xxxxx to 1e-6, so somewhere
    two neighbours print alike."""
    with pytest.raises(ConfigError, match=r"grid\.betas\.normal_curve\.points: points") as error:
        load_experiments(curve_config(grid__betas__normal_curve__points=100_000))
    first, second = map(int, re.search(r"points (\d+) and (\d+)", str(error.value)).groups())
    assert second == first + 1 and "run id part 'b1-" in str(error.value)


def test_a_curve_or_both_axes_but_not_neither_is_a_rule_of_the_package_not_the_schema():
    """The schema checks the shape of the grid; which betas it gives, a rule across keys, is
    checked once, by the package."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    jsonschema.validate(CURVE, schema)
    for config in (
        yaml.safe_load((REPO / "config/seeds/stability.yaml").read_text()),
        yaml.safe_load((REPO / "tests/config/stability_cpu.yaml").read_text()),
    ):
        jsonschema.validate(config, schema)
    for changes, message in (
        ({"grid__betas": None}, r"grid\.beta1: required key is missing \(give beta1 and beta2"),
        ({"grid__beta1": [0.9], "grid__beta2": [0.99]}, r"grid\.beta1: the betas come from"),
    ):
        config = curve_config(**changes)
        jsonschema.validate(config, schema)
        with pytest.raises(ConfigError, match=rf"^experiments\.curve\.{message}"):
            load_experiments(config)


def test_seed_config_reproduces_fig1_and_matches_kadam_with_adam():
    config = yaml.safe_load((REPO / "config/seeds/stability.yaml").read_text())
    experiments = load_experiments(config)
    fig1 = experiments["stability-adam"]
    assert len(fig1.points()) == 64 and fig1.grid_dims()[1] == "point"
    beta1, beta2 = np.array(fig1.curve_pairs).T
    assert (beta1[0], beta2[0]) == (0.9, 0.999)
    regions = set(st.stability_region(beta1, beta2))
    assert regions == {"B+", "B-"}
    training = fig1.config["training"]
    assert training["stop_on_divergence"] is False and training["max_steps"] == 1500
    assert fig1.config["optimizer"]["name"] == "adam" and fig1.config["grid"]["lr"] == [1e-3]
    # k-Adam against Adam: the same everything but k
    adam, kadam = experiments["kadam-vs-adam-k1"], experiments["kadam-vs-adam-k2"]
    for section in ("dataset", "seq_len", "model", "schedule", "training", "grid"):
        assert adam.config[section] == kadam.config[section], section
    assert {**adam.config["optimizer"], "k": 2} == kadam.config["optimizer"]
    assert kadam.config["optimizer"]["eps"] == 1e-30  # App. S Algorithm 1's default
    assert kadam.config["optimizer"]["strategy"] == "inverse_exp"  # the seed's best (Sec. 4.2)
    assert adam.run_ids() == kadam.run_ids()


# ---------------------------------------------------------------------------------------------
# Full-length logging: a diverging run trains on to its last step
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    torch.set_num_threads(1)
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus") / "pydoc-slice")


def run_raw(raw: dict, out: Path) -> tuple:
    outcome = train(RunConfig.from_dict(raw), out, progress_stream=io.StringIO())
    with xr.open_dataset(out) as ds:
        return outcome, ds.load()


def blow_up(corpus, **training) -> dict:
    """SGD at lr 1e4: the loss is NaN within a few steps and the weights with it."""
    config = tiny_run(corpus, **training)
    config["optimizer"] = {"name": "sgd", "lr": 1e4, "beta1": 0.0}
    return config


def test_a_blown_up_run_trains_to_its_cap_and_says_so(corpus, tmp_path):
    outcome, stopped = run_raw(blow_up(corpus), tmp_path / "stopped.nc")
    assert outcome.stop_reason == "diverged" and stopped.sizes["train_step"] < 46
    assert stopped.attrs["diverged_at_step"] == stopped.sizes["train_step"]
    assert stopped.attrs["steps_after_divergence"] == 0

    outcome, kept = run_raw(blow_up(corpus, stop_on_divergence=False), tmp_path / "kept.nc")
    # the whole run, 2 epochs of 23 steps, every step recorded
    assert outcome.status == kept.attrs["status"] == "diverged"
    assert outcome.stop_reason == kept.attrs["stop_reason"] == "cap"
    assert outcome.steps == kept.sizes["train_step"] == kept["max_update"].size == 46
    first = kept.attrs["diverged_at_step"]
    assert first == stopped.attrs["diverged_at_step"]
    assert kept.attrs["steps_after_divergence"] == 46 - first
    assert not kept["loss"].values[first - 1] <= 30.0  # the divergent step: huge or NaN
    # the same steps up to the divergence, then the NaN weights give NaN losses and updates
    np.testing.assert_array_equal(kept["loss"].values[:first], stopped["loss"].values[:first])
    assert np.isnan(kept["loss"].values[-1]) and np.isnan(kept["max_update"].values[-1])
    assert kept["step"].values.tolist() == [0, 12, 24, 36, 46]  # evaluations went on too
    assert np.isfinite(float(kept["min_val_ppl"]))  # the finite evaluation before training


def test_b_minus_adam_run_logs_the_max_update_at_every_step(corpus, tmp_path):
    """beta1 = 0.999 > beta2 = 0.9, far in B- (C = -0.109); a loss threshold it crosses at once."""
    assert float(st.stability_constant(0.999, 0.9)) == pytest.approx(-0.10911, abs=1e-5)
    config = tiny_run(corpus, divergence_loss=3.0, stop_on_divergence=False)
    config["optimizer"].update(beta1=0.999, beta2=0.9, eps=1e-30)
    outcome, ds = run_raw(config, tmp_path / "b_minus.nc")
    assert outcome.steps == ds.sizes["train_step"] == 46 == ds["max_update"].size
    assert ds.attrs["diverged_at_step"] == 1 and ds.attrs["steps_after_divergence"] == 45
    assert np.all(np.isfinite(ds["max_update"].values))  # it diverged by threshold, not NaN


def test_divergence_survives_a_resume(corpus, tmp_path):
    out = tmp_path / "resumed.nc"
    config = RunConfig.from_dict(
        tiny_run(corpus, divergence_loss=3.0, stop_on_divergence=False, epochs=1)
    )
    trainer = Trainer(config, out, progress_stream=io.StringIO())
    for _ in range(5):
        trainer.train_step()
    trainer.history.diverged_at_step = 1  # as run() records it
    trainer.save_checkpoint()
    resumed = Trainer(config, out, resume=True, progress_stream=io.StringIO())
    (outcome,) = resumed.run()
    with xr.open_dataset(out) as ds:
        assert outcome.status == ds.attrs["status"] == "diverged"
        assert ds.attrs["diverged_at_step"] == 1 and ds.sizes["train_step"] == 23


# ---------------------------------------------------------------------------------------------
# Aggregate, growth analysis and figure of curve runs
# ---------------------------------------------------------------------------------------------

TINY_CURVE = {
    "active": ["tiny-curve"],
    "experiments": {
        "tiny-curve": {
            "dataset": "pydoc-char",
            "seq_len": 16,
            "model": {"preset": "gpt-tiny", "n_layer": 1, "d_model": 32, "d_mlp": 64},
            "optimizer": {"name": "adam", "eps": 1e-30},
            "train_sequences": 64,
            "training": {
                "micro_batch_size": 8,
                "epochs": 100,
                "max_steps": 16,
                "eval_every": 2.0,
                "eval_batch_size": 64,
                "num_threads": 1,
                "stop_on_divergence": False,
            },
            "grid": {
                "batch_size": [8],
                "betas": {
                    "normal_curve": {
                        "through": SEED_POINT,
                        "beta1_range": [0.9, 0.999],
                        "points": 3,
                    }
                },
                "lr": [1e-3, 1e30],  # 1e30: a run that blows up and trains on with NaN weights
                "seed": [0],
            },
            "figures": ["stability"],
        }
    },
}


@pytest.fixture(scope="module")
def tiny_curve(tmp_path_factory):
    """Five of the six runs of 3 curve points x 2 learning rates, trained by `adamnoise train`
    for 16 steps each on 64 sequences of a small slice of the pydoc text (test_training_support)."""
    root = tmp_path_factory.mktemp("tiny-curve")
    corpus = write_tiny_corpus(root / "data" / "pydoc-slice")
    experiment = load_experiments(TINY_CURVE)["tiny-curve"]
    missing = experiment.points()[-1].run_id
    train_runs(experiment, corpus, root, skip=missing)
    return experiment, root, missing


def test_aggregate_of_a_curve_has_a_point_dimension(tiny_curve):
    experiment, root, missing = tiny_curve
    dataset = aggregate_directory(experiment, root / "runs")
    assert dataset["max_update"].dims == ("batch_size", "point", "lr", "seed", "train_step")
    assert dataset["min_val_ppl"].dims == ("batch_size", "point", "lr", "seed")
    assert dataset["point"].values.tolist() == [0, 1, 2]
    pairs = np.array(experiment.curve_pairs)
    np.testing.assert_array_equal(dataset["beta1"].values, pairs[:, 0])
    np.testing.assert_array_equal(dataset["beta2"].values, pairs[:, 1])
    assert (
        dataset["beta1"].dims == ("point",)
        and "seed 004's gamma" in dataset["beta1"].attrs["description"]
    )
    assert json.loads(dataset.attrs["missing_runs"]) == [missing]
    stable = dataset.sel(lr=1e-3).squeeze()
    assert (stable["status"].values == STATUS_CODES["completed"]).all()
    assert np.isnan(stable["diverged_at_step"].values).all()
    assert np.isfinite(stable["max_update"].values).all()
    # lr 1e30 blows up: diverged, trained on to its 16th step, NaN after the blow-up
    blown = dataset.sel(lr=1e30).squeeze()
    assert int(blown["status"].values[2]) == STATUS_CODES["missing"]
    assert (blown["status"].values[:2] == STATUS_CODES["diverged"]).all()
    assert (blown["stop_reason"].values[:2] == STOP_CODES["cap"]).all()
    assert (blown["diverged_at_step"].values[:2] >= 1).all()
    assert np.isnan(blown["max_update"].values[:2, -1]).all()


@pytest.mark.filterwarnings("error")
def test_growth_and_figure_of_curve_runs_with_nan_runs_among_them(tiny_curve):
    import matplotlib

    matplotlib.use("Agg")
    from adamnoise import plots

    experiment, root, _ = tiny_curve
    dataset = aggregate_directory(experiment, root / "runs")
    growth = max_update_growth(dataset, step=8, half_window=4)
    assert growth["measured"].dims == ("batch_size", "point", "lr", "seed")
    assert growth["predicted"].dims == ("point",)
    beta1, beta2 = dataset["beta1"].values, dataset["beta2"].values
    np.testing.assert_allclose(growth["predicted"], st.growth_exponent(beta1, beta2))
    assert growth["region"].values.tolist() == [1, 1, -1]  # 3 points: the last one in B-
    # the slope from the two recorded steps themselves
    u = dataset["max_update"].sel(lr=1e-3).squeeze().values.astype(float)
    expected = (np.log(u[:, 11]) - np.log(u[:, 3])) / 8
    np.testing.assert_allclose(growth["measured"].sel(lr=1e-3).squeeze(), expected)
    assert np.isnan(growth["measured"].sel(lr=1e30)).all()  # NaN weights: no slope, no crash
    assert growth["max_update_bound"].dims == ("point", "train_step")
    np.testing.assert_allclose(
        growth["max_update_bound"].isel(train_step=0),
        st.max_update_bound(beta1, beta2, 0),  # train_step 1 holds u_0 of eq. 1
    )
    assert growth.attrs["normal_curve_constant"] == pytest.approx(2 * 0.999**3 + 0.9**3)
    np.testing.assert_allclose(
        2 * growth["curve_beta2"] ** 3 + growth["curve_beta1"] ** 3, 2 * 0.999**3 + 0.9**3
    )

    figure = plots.stability(dataset, growth)
    curves, rates, plane = figure.axes[:3]
    # one max-update curve and one dotted bound per point (first batch size, lr, seed)
    assert len([line for line in curves.get_lines() if line.get_linestyle() == "-"]) == 3
    assert len([line for line in curves.get_lines() if line.get_linestyle() == ":"]) == 3 + 1
    assert len(rates.collections[0].get_offsets()) == growth["measured"].size
    assert len(plane.collections[0].get_offsets()) == 3


@pytest.mark.filterwarnings("error")
def test_growth_reads_the_slope_of_synthetic_curve_runs_and_skips_non_finite():
    """64 curve points with max-updates exp(|C|/2 n) in B- (bounded in B+), one of them with a
    blow-up to inf and then NaN before n = 500: measured = predicted where it can be measured."""
    import matplotlib

    matplotlib.use("Agg")
    from adamnoise import plots

    experiment = load_experiments(CURVE)["curve"]
    beta1, beta2 = np.array(experiment.curve_pairs).T
    rate = st.growth_exponent(beta1, beta2)
    steps = np.arange(1, 601)
    updates = np.exp(rate[:, None] * steps).astype(np.float32)
    updates[-1, 400:450], updates[-1, 450:] = np.inf, np.nan
    updates[0, 504] = 0.0  # a step without any update: log 0 is no slope either
    aggregate = xr.Dataset(
        {"max_update": (("point", "train_step"), updates)},
        coords={
            "point": np.arange(64),
            "beta1": ("point", beta1),
            "beta2": ("point", beta2),
            "train_step": steps,
        },
        attrs={
            "experiment": "curve",
            "experiment_config": json.dumps(CURVE["experiments"]["curve"]),
        },
    )
    growth = max_update_growth(aggregate)
    measured = growth["measured"].values
    assert np.isnan(measured[[0, -1]]).all()
    np.testing.assert_allclose(measured[1:-1], rate[1:-1], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(growth["stability_constant"], st.stability_constant(beta1, beta2))
    # the whole bound's slope: |C|/2 plus that of 1/(1 - gamma^(n+1)), -gamma^n ln(1/gamma) /
    # (1 - gamma^n) = -0.00154 at gamma = 0.999, n = 500 (the sqrt(1 - beta^(n+1)) factor is flat)
    bias_slope = 0.999**500 * np.log(0.999) / (1 - 0.999**500)
    assert bias_slope == pytest.approx(-0.001541, abs=1e-6)
    assert float(growth["bound_slope"][-1]) == pytest.approx(rate[-1] + bias_slope, rel=2e-3)
    assert float(growth["bound_slope"][0]) == pytest.approx(0.000771, rel=1e-3)  # B+: bounded
    figure = plots.stability(aggregate, growth)
    assert len(figure.axes) == 4  # (a), (b), (c) and the colour bar of C


def test_growth_window_and_summary():
    from adamnoise.analysis import growth_summary, growth_window

    assert growth_window(1500) == (500, 5)
    assert growth_window(24) == (12, 5)  # smoke runs: their middle
    assert growth_window(8) == (6, 5)
    growth = xr.Dataset(
        {
            "measured": ("run", [0.009, 0.018, 0.0, np.nan]),
            "predicted": ("run", [0.01, 0.02, 0.0, 0.03]),
            "region": ("run", [-1, -1, 1, -1]),
        }
    )
    aggregate = xr.Dataset(
        {
            "status": ("run", [1, 0, 0, 1]),
            "stop_reason": ("run", [STOP_CODES["cap"], 0, 0, STOP_CODES["diverged"]]),
        }
    )
    summary = growth_summary(growth, aggregate)
    assert summary["runs_in_b_minus"] == 3
    assert summary["ratio_median"] == pytest.approx(0.9)  # the NaN run is left out
    assert summary["diverged_and_kept_going"] == 1
