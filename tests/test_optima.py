"""Seed statistics of a beta sweep on synthetic aggregates whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from adamnoise.optima import (
    candidate_ppl,
    predicted_slope_sign,
    slope_verdict,
    sweep_optima,
    table1,
    theory_applies,
)
from adamnoise.published import seed000_table1

BETA2 = [0.9, 0.99, 0.999]


def synthetic(ppl, status=None, best_is_last=None, batch_sizes=(8,), lrs=(1e-3,)):
    """An aggregate with dims (batch_size, beta1, beta2, lr, seed) from ppl[b, beta2, lr, seed]."""
    ppl = np.asarray(ppl, dtype=float)
    shape = (len(batch_sizes), 1, len(BETA2), len(lrs), ppl.shape[-1])
    dims = ("batch_size", "beta1", "beta2", "lr", "seed")
    status = np.zeros(shape, np.int8) if status is None else np.asarray(status).reshape(shape)
    last = np.zeros(shape, np.int8) if best_is_last is None else np.asarray(best_is_last)
    return xr.Dataset(
        {
            "min_val_ppl": (dims, ppl.reshape(shape)),
            "status": (dims, status),
            "best_is_last": (dims, last.reshape(shape)),
        },
        coords={
            "batch_size": list(batch_sizes),
            "beta1": [0.9],
            "beta2": BETA2,
            "lr": list(lrs),
            "seed": np.arange(shape[-1]),
            "mean_batch_size": ("batch_size", [float(b) for b in batch_sizes]),
        },
    )


def cell(optima, name):
    return optima[name].squeeze().item()


def test_best_beta_and_delta_against_the_default():
    # seed means 11, 9, 10: best 0.99, Delta = (10 - 9) / 10 = 10 % against beta2 = 0.999
    ppl = [[[[11.1, 10.9, 11.0]], [[9.1, 8.9, 9.0]], [[10.2, 9.8, 10.0]]]]
    optima = sweep_optima(synthetic(ppl), "beta2")
    assert cell(optima, "best_beta2") == 0.99
    assert cell(optima, "best_min_val_ppl") == pytest.approx(9.0)
    assert cell(optima, "delta_pct") == pytest.approx(10.0)
    assert cell(optima, "p_best") == 1.0  # separated far beyond the seed spread
    assert cell(optima, "best_low") == cell(optima, "best_high") == 0.99
    std = optima["std_min_val_ppl"].squeeze().values
    np.testing.assert_allclose(std, [0.1, 0.1, 0.2])


def test_a_beta_with_a_diverged_seed_cannot_win():
    # beta2 = 0.9 has the lowest surviving value (5) but its third seed diverged
    ppl = [[[[5.0, 5.0, np.nan]], [[9.0, 9.0, 9.0]], [[10.0, 10.0, 10.0]]]]
    status = np.zeros((1, 3, 1, 3), np.int8)
    status[0, 0, 0, 2] = 1
    data = synthetic(ppl, status=status)
    assert np.isinf(candidate_ppl(data).values).sum() == 1
    optima = sweep_optima(data, "beta2")
    assert cell(optima, "best_beta2") == 0.99
    assert optima["n_diverged"].squeeze().values.tolist() == [1, 0, 0]
    assert np.isinf(optima["mean_min_val_ppl"].squeeze().values[0])
    # and no bootstrap resample lets it win either
    assert cell(optima, "best_low") == 0.99 and cell(optima, "p_best") == 1.0


def test_a_missing_run_is_not_judged():
    ppl = [[[[5.0, np.nan]], [[9.0, 9.0]], [[10.0, 10.0]]]]
    status = np.zeros((1, 3, 1, 2), np.int8)
    status[0, 0, 0, 1] = -1
    optima = sweep_optima(synthetic(ppl, status=status), "beta2")
    assert cell(optima, "best_beta2") == 0.99
    assert np.isnan(optima["mean_min_val_ppl"].squeeze().values[0])


def test_bootstrap_interval_covers_a_seed_dependent_winner():
    # 0.9 wins on seeds 0 and 1, 0.99 on seed 2 by a wide margin; means 6.33 vs 6.67: 0.9 best,
    # but a resample with two copies of seed 2 makes 0.99 the winner
    ppl = [[[[4.0, 4.0, 11.0]], [[7.0, 7.0, 6.0]], [[20.0, 20.0, 20.0]]]]
    optima = sweep_optima(synthetic(ppl), "beta2", n_resamples=4000)
    assert cell(optima, "best_beta2") == 0.9
    assert cell(optima, "best_low") == 0.9 and cell(optima, "best_high") == 0.99
    # P(0.9 wins) = P(seed 2 drawn at most once) = (8 + 12) / 27 = 20/27 (3 seeds, 27 draws)
    assert cell(optima, "p_best") == pytest.approx(20 / 27, abs=0.03)


def test_slope_near_one_and_its_verdict():
    # ppl = 20 - 2 * (-log10(1 - beta)): exactly -2 per decade of 1 - beta, no seed noise
    x = -np.log10(1 - np.array(BETA2))
    values = 20 - 2 * x
    ppl = [[[[v, v, v]] for v in values], [[[40 - v, 40 - v, 40 - v]] for v in values]]
    data = synthetic(ppl, batch_sizes=(8, 512))
    lam = xr.DataArray([5.0, 0.0], coords={"batch_size": [8, 512]}, dims="batch_size")
    optima = sweep_optima(data, "beta2", noise_ratio=lam)
    slope = optima["slope"].squeeze().values
    np.testing.assert_allclose(slope, [-2.0, 2.0])
    # small batch (lambda = 5 > 0.508): ppl predicted to fall towards beta2 -> 1, and it does;
    # full batch (lambda = 0 < 0.4945): predicted to rise, and it does
    assert optima["predicted_slope_sign"].squeeze().values.tolist() == [-1, 1]
    assert optima["slope_verdict"].squeeze().values.tolist() == ["agrees", "agrees"]
    between = sweep_optima(data, "beta2", noise_ratio=lam.copy(data=[5.0, 0.5]))
    assert between["slope_verdict"].squeeze().values.tolist() == ["agrees", "no prediction"]
    # a contradiction is reported as such
    flipped = sweep_optima(synthetic(ppl[::-1], batch_sizes=(8, 512)), "beta2", noise_ratio=lam)
    assert flipped["slope_verdict"].squeeze().values.tolist()[0] == "contradicts"


def test_predicted_signs_follow_the_lemma_thresholds():
    lam = xr.DataArray([2.0, 0.51, 0.5, 0.3, 0.0, np.nan])
    # Lemma 3.4 (beta1 = 0.9): increasing for lambda >= 0.5082, decreasing for lambda <= 0.4945
    assert predicted_slope_sign("beta2", lam, 0.9).values.tolist() == [-1, -1, 0, 1, 1, 0]
    # Lemma 3.6 (beta2 = 0.999): decreasing for lambda >= 1.0015, increasing for <= 0.9956
    assert predicted_slope_sign("beta1", lam, 0.999).values.tolist() == [1, -1, -1, -1, -1, 0]
    assert slope_verdict(-1, -3.0, 1.0, 3) == "inconclusive"
    assert slope_verdict(1, 0.5, 1.0, 3) == "agrees"
    assert slope_verdict(-1, 0.5, 1.0, 3) == "contradicts"
    # one degree of freedom is never called a verdict, however narrow its interval
    assert slope_verdict(1, 0.5, 1.0, 2) == "too few seeds"


def test_runs_whose_best_is_last_are_counted_and_flag_the_best():
    ppl = [[[[11.0, 11.0]], [[9.0, 9.0]], [[10.0, 10.0]]]]
    last = np.zeros((1, 1, 3, 1, 2), np.int8)
    last[0, 0, 1, 0, 1] = 1
    optima = sweep_optima(synthetic(ppl, best_is_last=last), "beta2")
    assert cell(optima, "n_best_is_last") == 1 and cell(optima, "best_flagged") == 1


def test_theory_applies_only_to_adam_one_beta_sweeps():
    adam = {"optimizer": {"name": "adam"}, "grid": {"beta1": [0.9], "beta2": [0.99, 0.999]}}
    assert theory_applies(adam, "beta2") is None
    assert "not Adam" in theory_applies({**adam, "optimizer": {"name": "signum"}}, "beta2")
    assert "tied" in theory_applies({**adam, "tie_betas": True}, "beta2")
    other = {**adam, "grid": {"beta1": [0.8], "beta2": [0.99, 0.999]}}
    assert "beta1 is [0.8]" in theory_applies(other, "beta2")
    beta1_sweep = {"optimizer": {"name": "adam"}, "grid": {"beta1": [0.5, 0.9], "beta2": [0.99]}}
    assert "beta2 is [0.99]" in theory_applies(beta1_sweep, "beta1")


def test_table1_puts_the_printed_values_beside_ours():
    ppl = [[[[11.0, 11.0]], [[9.0, 9.0]], [[10.0, 10.0]]]]
    data = synthetic(ppl, batch_sizes=(16317,), lrs=(1e-3,))
    frame = table1(sweep_optima(data, "beta2"), seed000_table1(16317))
    row = frame.iloc[0]
    assert row["batch_size"] == 16317 and row["best_beta2"] == 0.99
    # seed 000 Table 1, batch 16384 (full batch), lr 1e-3: beta2 0.848, Delta 5.29 %
    assert row["paper_beta2"] == 0.848 and row["paper_delta_pct"] == 5.29
    assert row["delta_pct"] == pytest.approx(10.0)
    assert seed000_table1(16317)[(128, 3.162e-4)] == (0.981, 1.39)


def test_slope_interval_is_a_t_interval_over_the_seeds_own_slopes():
    # seed slopes -1 and -3 per decade: mean -2, s.d. sqrt(2), t(0.975, 1) = 12.706
    x = -np.log10(1 - np.array(BETA2))
    ppl = [[[[20 - x[k], 20 - 3 * x[k]]] for k in range(3)]]
    lam = xr.DataArray([5.0], coords={"batch_size": [8]}, dims="batch_size")
    optima = sweep_optima(synthetic(ppl), "beta2", noise_ratio=lam)
    assert cell(optima, "slope") == pytest.approx(-2.0)
    half = 12.7062047 * np.sqrt(2) / np.sqrt(2)
    assert cell(optima, "slope_low") == pytest.approx(-2.0 - half, rel=1e-6)
    assert cell(optima, "slope_high") == pytest.approx(-2.0 + half, rel=1e-6)
    # both seeds fall as predicted, but two seeds give no verdict
    assert cell(optima, "seeds_agreeing") == 2
    assert cell(optima, "slope_verdict") == "too few seeds"


def test_seed_winners_late_minima_and_an_unsorted_axis():
    from adamnoise.optima import STOP_CAP_CODE
    from adamnoise.status import STOP_CODES

    assert STOP_CODES["cap"] == STOP_CAP_CODE
    # seed 0 prefers 0.99, seed 1 prefers 0.9; the means favour 0.99
    ppl = [[[[11.0, 9.5]], [[9.0, 9.6]], [[10.0, 10.0]]]]
    data = synthetic(ppl)
    # every run trained to its cap of 100 steps; one has its best at step 95 (late), one at 89
    data["stop_reason"] = xr.full_like(data["status"], STOP_CODES["cap"])
    data["best_step"] = xr.full_like(data["min_val_ppl"], 40.0)
    data["best_step"].loc[{"beta2": 0.99, "seed": 1}] = 95.0
    data["best_step"].loc[{"beta2": 0.9, "seed": 0}] = 89.0
    data["eval_step"] = (
        data["min_val_ppl"]
        .expand_dims(eval=2)
        .copy(
            data=np.broadcast_to(
                np.array([0.0, 100.0])[:, None, None, None, None, None], (2, 1, 1, 3, 1, 2)
            )
        )
    )
    optima = sweep_optima(data.isel(beta2=[2, 0, 1]), "beta2")  # an unsorted grid
    assert optima["beta2"].values.tolist() == BETA2
    assert cell(optima, "best_beta2") == 0.99 and cell(optima, "seed_winners") == 1
    assert cell(optima, "best_low") <= cell(optima, "best_high")
    assert cell(optima, "n_late_best") == 1 and cell(optima, "best_flagged") == 1


def test_predicted_sign_over_a_window_near_one():
    """Known answers from seed 000's Lemma 3.4 (beta1 = 0.9): C_total is increasing in beta2 on
    all of [0.9, 1) for lambda >= 0.5082 and decreasing for lambda <= 0.4945, so on any window
    inside it the sign is -1 / +1 on either side of that band, whatever the window."""
    lam = xr.DataArray([0.49, 0.52, 3.0, 0.0])
    for window in ((0.99, 0.999), (0.9, 0.95), (0.95, 0.9999)):
        signs = predicted_slope_sign("beta2", lam, 0.9, window).values.tolist()
        assert signs == [1, -1, -1, 1], window


def test_held_out_delta_removes_the_bias_of_the_argmin():
    """Three betas of equal true perplexity 10 (default 0.999), seed noise only: the in-sample
    Delta is positive by construction (the best of noisy means), the held-out Delta is not."""
    # seed s favours a different beta each: in-sample best mean 9.667 vs default 10.0
    ppl = [[[[9.0, 10.5, 10.5]], [[10.5, 9.0, 10.5]], [[10.5, 10.5, 9.0]]]]
    optima = sweep_optima(synthetic(ppl), "beta2")
    assert cell(optima, "delta_pct") == pytest.approx(0.0)  # all means tie at 10: no gain
    ppl = [[[[9.0, 10.5, 10.4]], [[10.5, 9.0, 10.6]], [[10.5, 10.5, 9.0]]]]
    optima = sweep_optima(synthetic(ppl), "beta2")
    # means 9.967, 10.033, 10.0: best 0.9, in-sample Delta (10 - 9.967)/10 = +0.33 %
    assert cell(optima, "delta_pct") == pytest.approx(100 * (10.0 - 29.9 / 3) / 10.0)
    # held out, by hand: seed 0 -> seeds 1, 2 pick 0.999 (means 10.45, 9.8, 9.75): Delta 0;
    # seed 1 -> seeds 0, 2 pick 0.9 (9.7, 10.55, 9.75): 10.5 vs 10.5, 0; seed 2 -> seeds 0, 1
    # tie 0.9 / 0.99 at 9.75, the first wins: 10.4 vs the default's 9.0, -15.56 %
    assert cell(optima, "delta_cv_pct") == pytest.approx((0 + 0 - 100 * 1.4 / 9.0) / 3)
    assert cell(optima, "delta_cv_pct") < 0 < cell(optima, "delta_pct")


def test_eval_noise_effect_and_test_statistics():
    ppl = [[[[10.0, 12.0]], [[11.0, 13.0]], [[12.0, 14.0]]]]
    data = synthetic(ppl)
    data["min_val_ppl_se"] = xr.full_like(data["min_val_ppl"], 0.2)
    data["min_val_ppl_se"].loc[{"beta2": 0.9, "seed": 1}] = 0.4
    # the test perplexity prefers 0.99 (by 1 on both seeds)
    data["test_ppl"] = data["min_val_ppl"] + 1.0
    data["test_ppl"].loc[{"beta2": 0.99}] = data["min_val_ppl"].sel(beta2=0.99) - 1.0
    optima = sweep_optima(data, "beta2")
    assert optima["eval_se"].squeeze().values.tolist() == pytest.approx([0.3, 0.2, 0.2])
    assert cell(optima, "effect") == pytest.approx(2.0)  # means 11, 12, 13
    assert cell(optima, "best_beta2") == 0.9 and cell(optima, "best_beta2_test") == 0.99
    # test means 12, 11, 14: Delta = (14 - 11) / 14
    assert cell(optima, "delta_test_pct") == pytest.approx(100 * 3 / 14)


def test_beta1_sweep_predicts_the_opposite_direction_and_draws():
    """Seed 000 for beta1 (beta2 = 0.999): small batches favour a low beta1, large a high one."""
    import matplotlib

    matplotlib.use("Agg")
    from adamnoise import plots

    rng = np.random.default_rng(0)
    dims = ("batch_size", "beta1", "beta2", "lr", "seed")
    shape = (2, 3, 1, 1, 2)
    zeros = np.zeros(shape, np.int8)
    data = xr.Dataset(
        {
            "min_val_ppl": (dims, 10 + rng.random(shape)),
            "status": (dims, zeros),
            "best_is_last": (dims, zeros),
            "stop_reason": (dims, zeros),
        },
        coords={
            "batch_size": [8, 64],
            "beta1": [0.5, 0.9, 0.99],
            "beta2": [0.999],
            "lr": [1e-3],
            "seed": [0, 1],
            "mean_batch_size": ("batch_size", [8.0, 64.0]),
        },
        attrs={"experiment": "b1"},
    )
    lam = xr.DataArray([3.0, 0.1], coords={"batch_size": [8, 64]}, dims="batch_size")
    optima = sweep_optima(data, "beta1", noise_ratio=lam)
    assert optima["predicted_slope_sign"].squeeze().values.tolist() == [1, -1]
    flips = xr.Dataset(
        {
            "flip_batch_size": (("threshold", "quantile"), [[20, 30, 40], [10, 15, 20]]),
            "flip_batch_size_own": ("threshold", [25.0, 12.0]),
        },
        coords={"threshold": [1.0, 0.5], "quantile": [0.25, 0.5, 0.75]},
        attrs={"n_train_sequences": 512},
    )
    figure = plots.beta_sweep(data, flips, optima, "beta1")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert [label for label in labels if label.startswith("b=")] == [
        "b=8 (low β1 predicted)",
        "b=64 (high β1 predicted)",
    ]
    assert "± 1 evaluation s.e." in labels  # the band of evaluation noise is explained
    figure = plots.beta_sweep(data, flips, optima, "beta1", "optimizer 'sgd' is not Adam")
    assert "no flip prediction (optimizer 'sgd' is not Adam)" in figure._suptitle.get_text()
    assert not [line for line in figure.axes[1].get_lines() if line.get_linestyle() == "--"]


def test_paired_differences_with_the_default_and_their_intervals():
    """beta2 0.9 worse than 0.999 by 1, 2, 3 on three seeds: mean 2, s.d. 1, t(0.975, 2) =
    4.303: interval 2 +- 4.303/sqrt(3) = [-0.484, 4.484], not detected; 0.99 worse by 2, 2.1,
    1.9: detected. The test perplexity gets the same statistics."""
    from adamnoise.optima import paired_comparisons

    ppl = [[[[21.0, 22.0, 23.0]], [[22.0, 22.1, 21.9]], [[20.0, 20.0, 20.0]]]]
    data = synthetic(ppl)
    data["test_ppl"] = data["min_val_ppl"] - 5
    optima = sweep_optima(data, "beta2")
    table = paired_comparisons(optima).set_index("beta2")
    half = 4.302653 / np.sqrt(3)
    assert table.loc[0.9, "diff_vs_default"] == pytest.approx(2.0)
    assert table.loc[0.9, "diff_low"] == pytest.approx(2.0 - half, rel=1e-5)
    assert table.loc[0.9, "diff_high"] == pytest.approx(2.0 + half, rel=1e-5)
    assert not table.loc[0.9, "detected"] and table.loc[0.99, "detected"]
    assert table.loc[0.99, "test_diff_vs_default"] == pytest.approx(2.0)
    assert bool(table.loc[0.99, "test_detected"])
    assert 0.999 not in table.index
