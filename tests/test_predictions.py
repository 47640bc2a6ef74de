"""Regret of the competing beta rules on synthetic sweeps whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from adamnoise.predictions import competing_predictions, regret_summary, regret_table

BETA2 = [0.9, 0.99, 0.999]
BATCH = [8, 32, 256]


def sweep(ppl, status=None):
    """Aggregate (batch_size, beta1, beta2, lr, seed) from ppl[batch, beta2, seed], one lr."""
    ppl = np.asarray(ppl, dtype=float)
    shape = (len(BATCH), 1, len(BETA2), 1, ppl.shape[-1])
    dims = ("batch_size", "beta1", "beta2", "lr", "seed")
    status = np.zeros(shape, np.int8) if status is None else np.asarray(status).reshape(shape)
    return xr.Dataset(
        {"min_val_ppl": (dims, ppl.reshape(shape)), "status": (dims, status)},
        coords={
            "batch_size": BATCH,
            "beta1": [0.9],
            "beta2": BETA2,
            "lr": [1e-3],
            "seed": np.arange(shape[-1]),
            "mean_batch_size": ("batch_size", [8.0, 32.0, 256.0]),
        },
        attrs={"experiment": "synthetic"},
    )


def flips(lam):
    """predict_flips' output as the predictions read it: lambda per batch size (one scale)."""
    return xr.Dataset(
        {"noise_ratio": ("batch_size", np.asarray(lam, float))}, coords={"batch_size": BATCH}
    )


def value(predictions, name, rule, batch):
    return predictions[name].sel(rule=rule, batch_size=batch).squeeze().item()


# seed means per batch size (rows) and beta2 (columns): best 0.999 / 0.99 / 0.9
PPL = [
    [[10.0, 10.2], [9.0, 9.2], [8.0, 8.2]],
    [[10.0, 10.0], [9.0, 9.0], [9.5, 9.5]],
    [[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]],
]


def test_each_rule_on_a_sweep_with_a_flip():
    predictions = competing_predictions(sweep(PPL), flips([2.0, 0.8, 0.0]), "beta2")
    assert predictions["best_beta2"].squeeze().values.tolist() == [0.999, 0.99, 0.9]
    # seed 000: lambda 2 and 0.8 > 0.5 -> highest beta2, full batch (lambda 0) -> lowest
    assert predictions["grid_beta"].sel(rule="implicit_bias").squeeze().values.tolist() == [
        0.999,
        0.999,
        0.9,
    ]
    assert value(predictions, "regret", "implicit_bias", 8) == 0.0
    assert value(predictions, "regret", "implicit_bias", 32) == pytest.approx(0.5)  # 9.5 - 9
    assert value(predictions, "regret", "implicit_bias", 256) == 0.0
    # token half-life from 0.999 at b = 8: 0.999^4 = 0.996 -> 0.99 on the grid (1 - beta =
    # 0.004 is nearer 0.01 than 0.001 in log); 0.999^32 = 0.9685 -> 0.99 (0.0315: nearer 0.01)
    assert value(predictions, "rule_beta", "token_half_life", 32) == pytest.approx(0.999**4)
    assert value(predictions, "grid_beta", "token_half_life", 32) == 0.99
    assert value(predictions, "regret", "token_half_life", 32) == 0.0
    assert value(predictions, "grid_beta", "token_half_life", 256) == 0.99
    assert value(predictions, "regret", "token_half_life", 256) == pytest.approx(1.0)
    # sqrt: 1 - 32 * 0.001 = 0.968 at 256 -> 0.9 (0.032 is just nearer 0.1 than 0.01 in log,
    # where the half-life's 0.0315 is not): regret 0; 0.996 at 32 -> 0.99
    assert value(predictions, "rule_beta", "sqrt_scaling", 256) == pytest.approx(0.968)
    assert value(predictions, "grid_beta", "sqrt_scaling", 256) == 0.9
    assert value(predictions, "regret", "sqrt_scaling", 256) == 0.0
    assert value(predictions, "regret", "sqrt_scaling", 32) == 0.0
    # beta1 = beta2 = 0.9 everywhere: regret 2.0 / 1.0 / 0 (seed means 10.1 - 8.1, 10 - 9)
    assert value(predictions, "regret", "equal_betas", 8) == pytest.approx(2.0)
    assert value(predictions, "regret", "equal_betas", 256) == 0.0
    # the default 0.999: 0 / 0.5 / 2
    assert value(predictions, "regret", "fixed_default", 256) == pytest.approx(2.0)
    anchor = predictions["anchor"].squeeze()
    assert anchor.sel(rule="token_half_life").values.tolist() == [1, 0, 0]
    assert anchor.sel(rule="implicit_bias").values.tolist() == [0, 0, 0]  # tested everywhere
    # well separated: every resample agrees, the interval is the point
    assert value(predictions, "regret_low", "fixed_default", 256) == pytest.approx(2.0)
    assert value(predictions, "p_rule_best", "implicit_bias", 256) == 1.0
    assert value(predictions, "p_rule_best", "fixed_default", 256) == 0.0
    assert value(predictions, "regret_pct", "fixed_default", 256) == pytest.approx(2.0 / 7 * 100)


def test_seed_uncertainty_widens_the_regret_interval():
    # at b = 32 the two seeds disagree on the best (0.9 vs 0.99): the rule choosing 0.999 ...
    ppl = np.array(PPL)
    ppl[1] = [[8.0, 10.0], [9.0, 8.5], [9.5, 9.5]]  # means 9.0, 8.75, 9.5
    predictions = competing_predictions(sweep(ppl), flips([2.0, 0.8, 0.0]), "beta2")
    assert value(predictions, "regret", "implicit_bias", 32) == pytest.approx(0.75)
    # ... has regret 0.75 on the means, 1.5 when only seed 0 is drawn (best 8.0), 1.0 for seed 1
    assert value(predictions, "regret_low", "implicit_bias", 32) == pytest.approx(0.75)
    assert value(predictions, "regret_high", "implicit_bias", 32) == pytest.approx(1.5)
    # the default 0.999 is never the winner, 0.9 wins when seed 0 is drawn twice (1/4)
    assert value(predictions, "p_rule_best", "equal_betas", 32) == pytest.approx(0.25, abs=0.04)


def test_a_diverged_rule_beta_has_infinite_regret_and_missing_runs_none():
    status = np.zeros((3, 3, 2), np.int8)
    status[2, 2, 1] = 1  # b = 256, beta2 = 0.999, seed 1 diverged
    ppl = np.array(PPL)
    ppl[2, 2, 1] = np.nan
    predictions = competing_predictions(sweep(ppl, status), flips([2.0, 0.8, 0.0]), "beta2")
    assert np.isinf(value(predictions, "regret", "fixed_default", 256))
    assert value(predictions, "regret", "implicit_bias", 256) == 0.0
    ppl[1, 0, 0] = np.nan  # a missing run at b = 32: no best there, nothing is judged
    status[2, 2, 1] = 0
    status[1, 0, 0] = -1
    predictions = competing_predictions(sweep(ppl, status), flips([2.0, 0.8, 0.0]), "beta2")
    assert np.isnan(predictions["regret"].sel(batch_size=32)).all()


def test_tables_leave_the_anchor_out_of_the_summary():
    predictions = competing_predictions(sweep(PPL), flips([2.0, 0.8, 0.0]), "beta2")
    table = regret_table(predictions)
    assert len(table) == 5 * 3
    assert {"rule", "batch_size", "lr", "grid_beta", "regret", "anchor", "best_beta2"} <= set(
        table.columns
    )
    summary = regret_summary(predictions).set_index("rule")
    # the non-transfer rules are tested at all three batch sizes, the transfer rules at two
    assert summary.loc["implicit_bias", "hits"] == 2  # b = 8, 256 (b = 32 costs 0.5)
    assert summary.loc["implicit_bias", "mean_regret"] == pytest.approx(0.5 / 3)
    assert summary.loc["fixed_default", "mean_regret"] == pytest.approx(2.5 / 3)
    assert summary.loc["equal_betas", "cells"] == 3
    assert summary.loc["token_half_life", "cells"] == 2
    assert (
        summary.loc["sqrt_scaling", "hits"] == 2
        and summary.loc["sqrt_scaling", "no_prediction"] == 0
    )
    # judged on the same cells (b = 32, 256: b = 8 is the transfer rules' anchor)
    assert (summary["common_cells"] == 2).all()
    assert summary.loc["implicit_bias", "mean_regret_common"] == pytest.approx(0.25)
    assert summary.loc["fixed_default", "mean_regret_common"] == pytest.approx(1.25)


def test_the_figure_has_a_column_per_lr_and_a_marker_per_rule():
    import matplotlib

    matplotlib.use("Agg")
    from adamnoise import plots

    predictions = competing_predictions(sweep(PPL), flips([2.0, 0.8, 0.0]), "beta2")
    fig = plots.competing_predictions(predictions)
    top, bottom = fig.axes[:2]
    assert len(fig.axes) == 2  # one lr: a column of two panels
    legend = [text.get_text() for text in top.get_legend().get_texts()]
    assert legend[0] == "empirical best" and len(legend) == 1 + 5
    assert bottom.get_ylabel().startswith("regret")
    assert top.get_yscale() == "function"  # betas on the log(1 - beta) scale
    assert predictions.attrs["swept_values"].tolist() == BETA2


def test_on_a_beta1_beta2_grid_each_cell_uses_its_own_fixed_beta():
    """A beta2 sweep at two beta1 values: beta1 = beta2 predicts each cell's own beta1."""
    base = sweep(PPL)
    grid = xr.concat([base, base.assign_coords(beta1=[0.99])], dim="beta1")
    predictions = competing_predictions(grid, flips([2.0, 0.8, 0.0]), "beta2")
    equal = predictions["rule_beta"].sel(rule="equal_betas").squeeze("lr")
    assert equal.sel(beta1=0.9).values.tolist() == [0.9, 0.9, 0.9]
    assert equal.sel(beta1=0.99).values.tolist() == [0.99, 0.99, 0.99]


def test_the_anchor_is_rechosen_in_every_resample():
    # at b = 8 the seeds disagree on the best (0.9 on seed 0, 0.999 on seed 1; 0.9 on the mean);
    # at b = 32 the best is 0.99 on both seeds
    ppl = [
        [[9.0, 11.0], [10.5, 10.5], [11.0, 9.2]],
        [[10.0, 10.0], [9.0, 9.0], [12.0, 12.0]],
        [[7.0, 7.0], [8.0, 8.0], [9.0, 9.0]],
    ]
    predictions = competing_predictions(sweep(ppl), flips([2.0, 0.8, 0.0]), "beta2")
    # anchored at 0.9: 0.9^4 -> 0.9 on the grid, regret 1.0; in the resamples that draw seed 1
    # twice (1/4) the anchor is 0.999 and 0.999^4 = 0.996 -> 0.99, regret 0
    assert value(predictions, "regret", "token_half_life", 32) == pytest.approx(1.0)
    assert value(predictions, "regret_low", "token_half_life", 32) == 0.0
    assert value(predictions, "regret_high", "token_half_life", 32) == pytest.approx(1.0)
    assert value(predictions, "p_rule_best", "token_half_life", 32) == pytest.approx(0.25, abs=0.04)
    # beta1 = beta2 = 0.9 has no anchor: always 0.9, regret 1.0 in every resample
    assert value(predictions, "regret_low", "equal_betas", 32) == pytest.approx(1.0)


def test_a_missing_run_at_the_anchor_leaves_the_transfer_rules_without_a_prediction():
    ppl = np.array(PPL)
    ppl[0, 2, 1] = np.nan  # b = 8, beta2 = 0.999 (the best there), seed 1: no result yet
    status = np.zeros((3, 3, 2), np.int8)
    status[0, 2, 1] = -1
    predictions = competing_predictions(sweep(ppl, status), flips([2.0, 0.8, 0.0]), "beta2")
    for rule in ("token_half_life", "sqrt_scaling"):
        assert np.isnan(predictions["rule_beta"].sel(rule=rule)).all()
    assert value(predictions, "regret", "implicit_bias", 256) == 0.0  # the others are judged


def test_two_lrs_have_their_own_anchors():
    # lr 1e-3 as PPL (best 0.999 at b = 8); lr 1e-2 with the rows of b = 8 reversed (best 0.9)
    base = sweep(PPL)
    other = base.copy(deep=True).assign_coords(lr=[1e-2])
    other["min_val_ppl"][0] = other["min_val_ppl"][0].isel(beta2=[2, 1, 0]).values
    predictions = competing_predictions(
        xr.concat([base, other], dim="lr"), flips([2.0, 0.8, 0.0]), "beta2"
    )
    half_life = predictions["rule_beta"].sel(rule="token_half_life", batch_size=32).squeeze()
    assert half_life.sel(lr=1e-3).item() == pytest.approx(0.999**4)
    assert half_life.sel(lr=1e-2).item() == pytest.approx(0.9**4)


def test_a_tied_sweep_takes_the_highest_beta_by_lemma_3_7():
    tied = sweep(PPL).isel(beta1=0, drop=True)  # beta1 = beta2: no beta1 dimension
    predictions = competing_predictions(tied, flips([2.0, 0.8, 0.0]), "beta2")
    chosen = predictions["grid_beta"].sel(rule="implicit_bias").squeeze()
    # lambda > 0: C_total rises along the diagonal; at full batch (lambda = 0) it is 0 everywhere
    assert chosen.values[:2].tolist() == [0.999, 0.999] and np.isnan(chosen.values[2])
    assert np.isnan(predictions["rule_beta"].sel(rule="equal_betas")).all()
