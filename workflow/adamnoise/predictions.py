"""Competing predictions of the best beta, held against one sweep: each rule's beta and its regret.

For every cell (batch size, lr, ...) of a beta sweep, every rule of
``adamnoise.theory.scaling_rules`` predicts a beta. The comparison is made on the grid the sweep
ran: the rule's beta is mapped to the nearest swept value in log(1 - beta) (``grid_beta``;
``off_grid`` marks a prediction outside the swept range, compared at the end of the grid).

* **Regret** = seed-mean min. val. perplexity at the rule's grid beta minus the seed-mean at the
  empirical best (``adamnoise.optima``'s best: all seeds completed, smallest mean). It is >= 0 by
  construction and 0 when the rule picks the empirical best; it is biased upwards, since the
  empirical best is the smallest of several noisy seed means (with no true effect at all every
  rule but the one that happens to pick the argmin has a positive regret): read it against
  ``optima``'s ``eval_se``, ``std_min_val_ppl`` and ``delta_cv_pct``. A rule whose beta diverged
  on some seed has infinite regret; a missing run anywhere in the cell makes every regret there
  NaN (the missing value could be the best).
* **Seed uncertainty.** Seeds are resampled with replacement (paired: the same resample for every
  beta, as in ``optima``); in each resample the best is chosen anew, so the interval includes the
  uncertainty of the argmin itself. ``regret_low`` / ``regret_high`` are the 2.5 % / 97.5 %
  quantiles, ``p_rule_best`` the share of resamples in which the rule's beta is the winner. The
  transfer rules' anchor is re-chosen in every resample too. With two or three seeds these
  describe the seed spread, not a calibrated interval (see ``optima``).
* **Anchors.** Transfer rules (token half-life, square-root scaling) start from the empirical best
  at the smallest batch size of the same lr; at that batch size they are fitted, not tested
  (``anchor`` = 1 for those rules there), and the summaries leave those cells out. The other
  rules are tested at every batch size. A missing run at the anchor leaves the transfer rules
  without a prediction for that lr.
* **One learning rate per cell.** Every rule is held against the sweep at the same lr. The
  square-root SDE rule also scales lr (by sqrt(b/b0)) and eps (by 1/sqrt(b/b0)), and the
  half-life rule's authors tune lr per batch size; with one lr per cell only their beta part is
  tested. With several lrs, each (batch size, lr) is its own cell.
* **lambda.** The seed 000 rule uses lambda at each realised batch size with one B_simple scale
  for all batch sizes, the pooled median of the runs' estimates at their best evaluations
  (``predict_flips``'s ``noise_ratio``; 0 at full batch), as seed 000 does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from adamnoise.optima import (
    CONFIDENCE,
    argmin_candidates,
    bootstrap_seeds,
    candidate_ppl,
    fixed_beta,
    seed_means,
)
from adamnoise.theory.scaling_rules import RULES, SweepContext, nearest_candidate


def competing_predictions(
    aggregate: xr.Dataset,
    flips: xr.Dataset,
    axis: str,
    n_resamples: int = 2000,
    bootstrap_seed: int = 0,
) -> xr.Dataset:
    """Every rule's beta, its grid value and its regret per cell of the sweep along ``axis``."""
    aggregate = aggregate.sortby(axis).sortby("batch_size")
    ppl = candidate_ppl(aggregate)
    cells = [d for d in ppl.dims if d not in (axis, "seed")]
    if "batch_size" not in cells:
        raise ValueError("the aggregate has no batch_size dimension")
    # batch size last among the cells: the rules map a row of batch sizes at once
    cells = [d for d in cells if d != "batch_size"] + ["batch_size"]
    values = ppl.transpose(*cells, axis, "seed").values  # [..., B, K, S]
    betas = np.asarray(aggregate[axis].values, dtype=float)
    realised = (
        aggregate["mean_batch_size"].values.astype(float)
        if "mean_batch_size" in aggregate.coords
        else aggregate["batch_size"].values.astype(float)
    )
    lam = _noise_ratio(flips, aggregate["batch_size"].values)
    # the other beta: one value (a one-beta sweep), or a cell dimension (a (beta1, beta2) grid),
    # where each cell's rules use that cell's own value
    other = "beta1" if axis == "beta2" else "beta2"
    fixed = fixed_beta(aggregate, axis)
    other_dim = cells.index(other) if other in cells and aggregate.sizes[other] > 1 else None
    tied = other not in aggregate.dims  # tie_betas: the other beta equals the swept one

    mean = seed_means(values)  # [..., B, K]
    best = argmin_candidates(mean)  # [..., B]
    names = list(RULES)
    rule_beta = np.full((len(names), *best.shape), np.nan)
    anchor_beta = _anchor(best[..., 0], mean[..., 0, :], betas)  # [...]
    for cell in np.ndindex(best.shape[:-1]):
        context = SweepContext(
            axis=axis,
            fixed=fixed if other_dim is None else float(aggregate[other].values[cell[other_dim]]),
            batch_sizes=realised,
            noise_ratio=lam,
            anchor_batch_size=realised[0],
            anchor_beta=float(anchor_beta[cell]),
            candidates=betas,
            tied=tied,
        )
        for r, name in enumerate(names):
            rule_beta[(r, *cell)] = RULES[name](context)
    grid_index, off_grid = nearest_candidate(rule_beta, betas)

    draws = bootstrap_seeds(values.shape[-1], n_resamples, bootstrap_seed)
    resampled = seed_means(values[..., draws])  # [..., B, K, R]
    resampled = np.where(np.isfinite(mean)[..., None], resampled, np.inf)
    resampled = np.moveaxis(resampled, -1, 0)  # [R, ..., B, K]
    # the transfer rules' anchor is re-chosen in every resample, like the best it is held against
    boot_anchor = _anchor(
        argmin_candidates(resampled[..., 0, :]), mean[None, ..., 0, :], betas
    )  # [R, ...]
    boot_index = np.broadcast_to(grid_index[:, None], (len(names), *resampled.shape[:-1])).copy()
    for r, name in enumerate(names):
        if RULES[name].anchored:
            context = SweepContext(
                axis=axis,
                fixed=fixed,
                batch_sizes=realised,
                noise_ratio=lam,
                anchor_batch_size=realised[0],
                anchor_beta=boot_anchor[..., None],
                candidates=betas,
                tied=tied,
            )
            boot_index[r] = nearest_candidate(RULES[name](context), betas)[0]
    regret, low, high, p_best = _regrets(mean, resampled, grid_index, boot_index)
    best_ppl = np.where(
        best >= 0, np.take_along_axis(mean, np.maximum(best, 0)[..., None], -1)[..., 0], np.nan
    )
    # the transfer rules reproduce the anchor's best by construction: fitted there, not tested
    anchor = np.zeros(rule_beta.shape, dtype=np.int8)
    for r, name in enumerate(names):
        if RULES[name].anchored:
            anchor[r, ..., 0] = 1

    rule_dims = ("rule", *cells)
    coords = {d: aggregate[d].values for d in cells}
    coords["rule"] = names
    coords["mean_batch_size"] = ("batch_size", realised)
    with np.errstate(invalid="ignore", divide="ignore"):
        regret_pct = regret / best_ppl * 100
    dataset = xr.Dataset(
        {
            "rule_beta": (rule_dims, rule_beta, {"description": f"{axis} the rule predicts"}),
            "grid_beta": (
                rule_dims,
                np.where(grid_index >= 0, betas[np.maximum(grid_index, 0)], np.nan),
                {"description": f"swept {axis} nearest to the rule's in log(1 - beta)"},
            ),
            "off_grid": (
                rule_dims,
                off_grid.astype(np.int8),
                {"description": "1: the rule's beta lies outside the swept range"},
            ),
            "regret": (
                rule_dims,
                regret,
                {
                    "units": "perplexity",
                    "description": "seed-mean min. val. ppl at grid_beta minus at the best "
                    "(inf: a seed diverged there; NaN: no prediction or a run is missing)",
                },
            ),
            "regret_pct": (rule_dims, regret_pct, {"units": "%", "description": "regret / best"}),
            "regret_low": (
                rule_dims,
                low,
                {"units": "perplexity", "description": "2.5 % quantile over seed resamples"},
            ),
            "regret_high": (
                rule_dims,
                high,
                {"units": "perplexity", "description": "97.5 % quantile over seed resamples"},
            ),
            "p_rule_best": (
                rule_dims,
                p_best,
                {"description": "share of seed resamples in which grid_beta is the winner"},
            ),
            f"best_{axis}": (
                tuple(cells),
                np.where(best >= 0, betas[np.maximum(best, 0)], np.nan),
                {"description": "empirical best (argmin of the seed mean)"},
            ),
            "best_min_val_ppl": (tuple(cells), best_ppl, {"units": "perplexity"}),
            "noise_ratio": (
                "batch_size",
                lam,
                {"description": "lambda (eq. 8) with that batch size's median B_simple"},
            ),
            "anchor": (
                rule_dims,
                anchor,
                {"description": "1: the anchor of a transfer rule (fitted there, not tested)"},
            ),
        },
        coords=coords,
        attrs={
            "axis": axis,
            "fixed_beta": fixed if other_dim is None else float("nan"),
            "n_seeds": int(values.shape[-1]),
            "n_resamples": n_resamples,
            "confidence": CONFIDENCE,
            "experiment": aggregate.attrs.get("experiment", ""),
            "swept_values": betas,
        },
    )
    dataset["rule"].attrs.update(
        labels=" | ".join(rule.label for rule in RULES.values()),
        sources=" | ".join(rule.source for rule in RULES.values()),
        anchored=" ".join(str(int(rule.anchored)) for rule in RULES.values()),
    )
    return dataset


def _noise_ratio(flips: xr.Dataset, batch_sizes: np.ndarray) -> np.ndarray:
    """lambda per batch size from ``predict_flips`` (one B_simple scale: the pooled median)."""
    return flips["noise_ratio"].sel(batch_size=batch_sizes).values.astype(float)


def _anchor(best_index: np.ndarray, row: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """The empirical best beta at the anchor batch size (NaN if none, or if a run is missing
    there: the missing value could be the best)."""
    incomplete = np.isnan(row).any(axis=-1)
    chosen = betas[np.maximum(best_index, 0)]
    return np.where((best_index >= 0) & ~incomplete, chosen, np.nan)


def _regrets(mean, resampled, grid_index, boot_index):
    """Point regret, its resample quantiles and the share of resamples the rule wins.

    mean [..., B, K]; resampled [R, ..., B, K]; grid_index [rules, ..., B] and boot_index
    [rules, R, ..., B] (the rule's grid value in each resample; -1: no prediction).
    """
    alpha = (1 - CONFIDENCE) / 2
    take = np.maximum(grid_index, 0)[..., None]  # [rules, ..., B, 1]
    best_mean = np.where(np.isfinite(mean), mean, np.inf).min(axis=-1)
    rule_mean = np.take_along_axis(
        np.broadcast_to(mean, (*take.shape[:-1], mean.shape[-1])), take, -1
    )[..., 0]
    with np.errstate(invalid="ignore"):
        regret = rule_mean - best_mean
    # a cell with a missing run is not judged: the missing value could be the best
    no_best = ~np.isfinite(best_mean) | np.isnan(mean).any(axis=-1)
    regret = np.where((grid_index < 0) | no_best, np.nan, regret)

    boot_best = np.where(np.isfinite(resampled), resampled, np.inf).min(axis=-1)  # [R, ..., B]
    boot_winner = argmin_candidates(resampled)  # [R, ..., B]
    n_rules = grid_index.shape[0]
    low, high, p_best = (np.full(grid_index.shape, np.nan) for _ in range(3))
    for r in range(n_rules):
        index = np.maximum(boot_index[r], 0)[..., None]  # [R, ..., B, 1]
        boot_rule = np.take_along_axis(resampled, index, -1)[..., 0]
        with np.errstate(invalid="ignore"):
            boot_regret = boot_rule - boot_best  # inf where the rule's beta diverged
        boot_regret = np.where(boot_index[r] >= 0, boot_regret, np.nan)
        valid = (grid_index[r] >= 0) & ~no_best
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cell with no prediction at all
            # "lower" / "higher": no interpolation between inf and finite resamples
            low[r] = np.where(
                valid, np.nanquantile(boot_regret, alpha, axis=0, method="lower"), np.nan
            )
            high[r] = np.where(
                valid, np.nanquantile(boot_regret, 1 - alpha, axis=0, method="higher"), np.nan
            )
        wins = (boot_winner == boot_index[r]) & (boot_index[r] >= 0)
        p_best[r] = np.where(valid, wins.mean(axis=0), np.nan)
    return regret, low, high, p_best


def regret_table(predictions: xr.Dataset) -> pd.DataFrame:
    """One row per (rule, cell): predicted and grid beta, regret with its interval, anchor."""
    axis = predictions.attrs["axis"]
    names = [
        "rule_beta",
        "grid_beta",
        "off_grid",
        "regret",
        "regret_low",
        "regret_high",
        "regret_pct",
        "p_rule_best",
        "anchor",
    ]
    frame = predictions[names].to_dataframe().reset_index()
    cell = predictions[[f"best_{axis}", "best_min_val_ppl", "noise_ratio"]]
    frame = frame.merge(cell.to_dataframe().reset_index(), how="left")
    drop = [c for c in frame.columns if c.startswith("beta") or c == "quantile"]
    return frame.drop(columns=drop)


def regret_summary(predictions: xr.Dataset) -> pd.DataFrame:
    """Per rule over its tested cells (a transfer rule's anchor left out).

    ``cells``: cells the rule was judged in (a prediction, no missing run); ``no_prediction``:
    cells where it gave no beta (the square-root rule beyond its range, a missing anchor);
    ``hits``: regret 0 with the rule's beta inside the swept range, ``hits_off_grid`` the same
    reached only at the end of the grid; mean / max regret over the finite ones (``diverged``
    counts the infinite); ``mean_regret_common``: the mean over the cells in which every rule was
    judged (judged by the same cells, so rules with fewer predictions do not look better for it).
    """
    table = regret_table(predictions)
    # the anchor is left out for the transfer rules only; the common cells exclude it for all
    tested = table[table["anchor"] == 0]
    cell_keys = [c for c in ("batch_size", "lr", "beta1", "beta2", "point") if c in table]
    cell_keys = [c for c in cell_keys if c in tested.columns and c != predictions.attrs["axis"]]
    anchored = table.groupby(cell_keys)["anchor"].max()
    judged = tested.assign(judged=tested["regret"].notna()).pivot_table(
        index=cell_keys, columns="rule", values="judged", aggfunc="first"
    )
    common = judged.index[judged.all(axis=1) & (anchored.reindex(judged.index) == 0)]
    rows = []
    for name, group in tested.groupby("rule", sort=False):
        finite = group["regret"][np.isfinite(group["regret"])]
        pct = group["regret_pct"][np.isfinite(group["regret_pct"])]
        hit = group["regret"] == 0
        in_common = group.set_index(cell_keys).index.isin(common)
        common_regret = group["regret"][in_common]
        rows.append(
            {
                "rule": name,
                "cells": int(group["regret"].notna().sum()),
                "no_prediction": int(group["rule_beta"].isna().sum()),
                "hits": int((hit & (group["off_grid"] == 0)).sum()),
                "hits_off_grid": int((hit & (group["off_grid"] == 1)).sum()),
                "mean_regret": float(finite.mean()) if len(finite) else np.nan,
                "max_regret": float(finite.max()) if len(finite) else np.nan,
                "mean_regret_pct": float(pct.mean()) if len(pct) else np.nan,
                "diverged": int(np.isinf(group["regret"]).sum()),
                "off_grid": int(group["off_grid"].sum()),
                "common_cells": int(len(common)),
                "mean_regret_common": float(common_regret.mean()) if len(common) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def diagonal_gap(aggregate: xr.Dataset) -> pd.DataFrame:
    """Seed 003's claim on an off-diagonal (beta1, beta2) grid: is beta1 = beta2 near-optimal?

    Per (batch size, lr): the best setting over the whole grid and the best on the diagonal
    (seed means; a setting counts only if all its seeds completed), the gap between them in
    perplexity and %, and the rank of the best diagonal setting among all candidates (1: the
    diagonal holds the optimum).
    """
    if "beta1" not in aggregate.dims or "beta2" not in aggregate.dims:
        raise ValueError("the aggregate has no (beta1, beta2) grid (tied betas?)")
    ppl = candidate_ppl(aggregate)
    others = [d for d in ppl.dims if d not in ("beta1", "beta2", "seed")]
    ppl = ppl.transpose(*others, "beta1", "beta2", "seed")
    mean = seed_means(ppl.values)  # [..., beta1, beta2]
    beta1 = np.asarray(aggregate["beta1"].values, float)
    beta2 = np.asarray(aggregate["beta2"].values, float)
    on_diagonal = np.isclose(beta1[:, None], beta2[None, :], rtol=0, atol=1e-12)
    rows = []
    for cell in np.ndindex(mean.shape[:-2]):
        grid = mean[cell]
        row = {d: ppl[d].values[i].item() for d, i in zip(others, cell, strict=True)}
        finite = np.isfinite(grid)
        if not finite.any():
            rows.append(row)
            continue
        i, j = np.unravel_index(np.where(finite, grid, np.inf).argmin(), grid.shape)
        row.update(best_beta1=beta1[i], best_beta2=beta2[j], best_ppl=grid[i, j])
        diagonal = np.where(on_diagonal & finite, grid, np.inf)
        if np.isfinite(diagonal).any():
            k, m = np.unravel_index(diagonal.argmin(), grid.shape)
            row.update(
                diagonal_beta=beta1[k],
                diagonal_ppl=grid[k, m],
                gap=grid[k, m] - grid[i, j],
                gap_pct=(grid[k, m] - grid[i, j]) / grid[i, j] * 100,
                diagonal_rank=int((grid[finite] < grid[k, m]).sum()) + 1,
                candidates=int(finite.sum()),
            )
        rows.append(row)
    return pd.DataFrame(rows)
