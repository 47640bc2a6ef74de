"""Empirical optima of a beta sweep, with their seed uncertainty (seed 000 Figs. 2/3, Table 1).

For every (batch size, learning rate) of a sweep along ``axis`` (``beta2`` or ``beta1``):

* **Seed means.** A beta value is a *candidate* only if every seed of it completed: a value whose
  other seeds diverged cannot win on one survivor, and a value with a missing run is not judged
  yet. Diverged seeds count as +inf, missing ones as NaN; ``n_completed`` / ``n_diverged`` say
  which. ``std_min_val_ppl`` is the spread over the completed seeds (ddof = 1).
* **Best beta and its bootstrap interval.** The point estimate minimises the seed mean. Seeds are
  resampled with replacement, the same resample for every beta (runs of one seed share the
  initialisation and data order, so the comparison is paired), and each resample's argmin is
  recorded: ``best_low`` / ``best_high`` are the 2.5 % / 97.5 % quantiles of the winning beta
  and ``p_best`` the share of resamples the point estimate wins. With S seeds there are only
  C(2S-1, S) distinct resamples (3 for S = 2, 10 for S = 3): the interval is coarse, not wrong.
* **The sign the theory predicts.** Seed 000 predicts on which side of the flip the minimal
  perplexity falls or rises towards beta -> 1 (full batch, lambda = 0, included). ``slope`` is
  the least-squares slope of the seed mean against ``-log10(1 - beta)`` over the
  ``slope_points`` values nearest to 1, with a
  bootstrap interval; ``slope_verdict`` compares its sign with the prediction from lambda
  (``predicted_slope_sign``: -1, +1, or 0 where lambda lies between the lemma thresholds).
* **Delta (Table 1).** ``delta_pct`` = (ppl(default) - ppl(best)) / ppl(default) * 100 with the
  default beta (0.999 for beta2, 0.9 for beta1) as the baseline, as seed 000 Table 1 defines the
  relative improvement over the default.
* **Flags.** ``n_best_is_last`` counts runs whose best evaluation was their last one (possibly
  stopped before their minimum); ``best_flagged`` marks a best beta that includes such a run.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

# the "default" value of each beta, the baseline of Table 1's Delta
DEFAULT_BETA = {"beta2": 0.999, "beta1": 0.9}
# the beta that the other sweep holds fixed, where seed 000's lemmas apply
THEORY_FIXED = {"beta2": ("beta1", (0.9, 0.99)), "beta1": ("beta2", (0.999,))}
CONFIDENCE = 0.95
VERDICTS = ("agrees", "contradicts", "inconclusive", "no prediction")


def candidate_ppl(aggregate: xr.Dataset) -> xr.DataArray:
    """Minimal validation perplexity per run: completed as is, diverged +inf, missing NaN."""
    ppl = aggregate["min_val_ppl"].where(aggregate["status"] == 0)
    return ppl.where(aggregate["status"] != 1, np.inf)


def _matching_index(values: np.ndarray, target: float, rel: float = 0.01) -> int | None:
    """Index of the grid value whose 1 - beta is within ``rel`` of 1 - target (None if absent)."""
    distance = np.abs(np.log((1 - values) / (1 - target)))
    index = int(np.argmin(distance))
    return index if distance[index] <= np.log1p(rel) else None


def _seed_means(ppl: np.ndarray) -> np.ndarray:
    """Mean over the last axis; +inf if any seed diverged, NaN if any is missing."""
    with np.errstate(invalid="ignore"):
        mean = ppl.mean(axis=-1)
    mean = np.where(np.isinf(ppl).any(axis=-1), np.inf, mean)
    return np.where(np.isnan(ppl).any(axis=-1), np.nan, mean)


def _argmin_candidates(mean: np.ndarray) -> np.ndarray:
    """Argmin over the last axis among finite entries; -1 where no entry is finite."""
    finite = np.isfinite(mean)
    index = np.where(finite, mean, np.inf).argmin(axis=-1)
    return np.where(finite.any(axis=-1), index, -1)


def _slopes(mean: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``mean`` (last axis) against ``x``; NaN if any value is not finite."""
    centred = x - x.mean()
    slope = (mean * centred).sum(axis=-1) / (centred**2).sum()
    return np.where(np.isfinite(mean).all(axis=-1), slope, np.nan)


def bootstrap_seeds(n_seeds: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Seed indices drawn with replacement, shape [n_resamples, n_seeds] (deterministic)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_seeds, size=(n_resamples, n_seeds))


def sweep_optima(
    aggregate: xr.Dataset,
    axis: str,
    noise_ratio: xr.DataArray | None = None,
    n_resamples: int = 2000,
    slope_points: int = 3,
    bootstrap_seed: int = 0,
) -> xr.Dataset:
    """The statistics of the module docstring over every grid point except ``axis`` and seed.

    ``noise_ratio``: lambda per batch size (``predict_flips``'s ``noise_ratio_own``); without it,
    or where the theory does not apply (``theory_applies``), no sign is predicted.
    """
    ppl = candidate_ppl(aggregate)
    cells = [d for d in ppl.dims if d not in (axis, "seed")]
    ppl = ppl.transpose(*cells, axis, "seed")
    values = ppl.values  # [..., K, S]
    betas = np.asarray(aggregate[axis].values, dtype=float)
    n_seeds = values.shape[-1]

    mean = _seed_means(values)
    completed = np.isfinite(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells with fewer than two seeds: NaN
        spread = np.where(completed, values, np.nan)
        std = np.nanstd(spread, axis=-1, ddof=1)
    best = _argmin_candidates(mean)
    has_best = best >= 0
    take = np.where(has_best, best, 0)[..., None]
    best_beta = np.where(has_best, betas[take[..., 0]], np.nan)
    best_ppl = np.where(has_best, np.take_along_axis(mean, take, -1)[..., 0], np.nan)

    draws = bootstrap_seeds(n_seeds, n_resamples, bootstrap_seed)
    resampled = _seed_means(values[..., draws])  # [..., K, R]
    # a value that is not a candidate on all seeds is not one in any resample either
    resampled = np.where(np.isfinite(mean)[..., None], resampled, np.inf)
    resampled = np.moveaxis(resampled, -1, 0)  # [R, ..., K]
    boot_best = _argmin_candidates(resampled)  # [R, ...]
    alpha = (1 - CONFIDENCE) / 2
    valid = boot_best >= 0
    low = np.full(best.shape, np.nan)
    high = np.full(best.shape, np.nan)
    p_best = np.full(best.shape, np.nan)
    for cell in np.ndindex(best.shape):
        winners = boot_best[(slice(None), *cell)]
        winners = winners[valid[(slice(None), *cell)]]
        if winners.size and has_best[cell]:
            low[cell] = betas[int(np.quantile(winners, alpha, method="lower"))]
            high[cell] = betas[int(np.quantile(winners, 1 - alpha, method="higher"))]
            p_best[cell] = float(np.mean(winners == best[cell]))

    top = np.argsort(betas)[-slope_points:]
    x = -np.log10(1 - betas[top])
    slope = _slopes(mean[..., top], x)
    boot_slope = _slopes(resampled[..., top], x)  # [R, ...]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells without a finite slope: NaN
        slope_low = np.nanquantile(boot_slope, alpha, axis=0)
        slope_high = np.nanquantile(boot_slope, 1 - alpha, axis=0)
    slope_low = np.where(np.isfinite(slope), slope_low, np.nan)
    slope_high = np.where(np.isfinite(slope), slope_high, np.nan)

    default_index = _matching_index(betas, DEFAULT_BETA[axis])
    no_default = np.full(best.shape, np.nan)
    default_ppl = no_default if default_index is None else mean[..., default_index]
    with np.errstate(invalid="ignore"):
        delta = np.where(
            np.isfinite(default_ppl), (default_ppl - best_ppl) / default_ppl * 100, np.nan
        )

    last = aggregate["best_is_last"].where(aggregate["status"] >= 0)
    last = last.transpose(*cells, axis, "seed").values
    n_last = np.nansum(last, axis=(-2, -1)).astype(int)
    best_flagged = np.take_along_axis(np.nansum(last, axis=-1), take, -1)[..., 0] > 0
    best_flagged &= has_best

    coords = {d: aggregate[d].values for d in cells}
    if "mean_batch_size" in aggregate.coords and "batch_size" in cells:
        coords["mean_batch_size"] = ("batch_size", aggregate["mean_batch_size"].values)
    cell_dims = tuple(cells)
    result = xr.Dataset(
        {
            "mean_min_val_ppl": (
                (*cell_dims, axis),
                mean,
                {"description": "mean over seeds (inf: a seed diverged; NaN: a run is missing)"},
            ),
            "std_min_val_ppl": (
                (*cell_dims, axis),
                std,
                {"description": "standard deviation over completed seeds (ddof 1)"},
            ),
            "n_completed": ((*cell_dims, axis), completed.sum(-1)),
            "n_diverged": ((*cell_dims, axis), np.isinf(values).sum(-1)),
            f"best_{axis}": (cell_dims, best_beta, {"description": "argmin of the seed mean"}),
            "best_min_val_ppl": (cell_dims, best_ppl),
            "best_low": (cell_dims, low, {"description": f"{alpha:.1%} bootstrap quantile"}),
            "best_high": (cell_dims, high, {"description": f"{1 - alpha:.1%} bootstrap quantile"}),
            "p_best": (cell_dims, p_best, {"description": "share of resamples the best wins"}),
            "default_min_val_ppl": (cell_dims, default_ppl),
            "delta_pct": (
                cell_dims,
                delta,
                {"units": "%", "description": "(ppl(default) - ppl(best)) / ppl(default)"},
            ),
            "slope": (
                cell_dims,
                slope,
                {"description": f"d(mean ppl)/d(-log10(1-{axis})) over the top values"},
            ),
            "slope_low": (cell_dims, slope_low),
            "slope_high": (cell_dims, slope_high),
            "n_best_is_last": (cell_dims, n_last),
            "best_flagged": (cell_dims, best_flagged.astype(np.int8)),
        },
        coords={**coords, axis: betas},
        attrs={
            "axis": axis,
            "default_beta": DEFAULT_BETA[axis],
            "default_in_grid": int(default_index is not None),
            "n_seeds": n_seeds,
            "n_resamples": n_resamples,
            "confidence": CONFIDENCE,
            "slope_betas": " ".join(f"{b:g}" for b in betas[top]),
        },
    )
    predicted = xr.zeros_like(result["slope"], dtype=np.int8)
    if noise_ratio is not None:
        predicted = predicted_slope_sign(axis, noise_ratio, _fixed_beta(aggregate, axis))
        predicted = predicted.broadcast_like(result["slope"]).astype(np.int8)
    result["predicted_slope_sign"] = predicted.assign_attrs(
        description="sign of d ppl / d beta near 1 that seed 000 predicts (0: none)"
    )
    result["slope_verdict"] = xr.apply_ufunc(
        slope_verdict, predicted, result["slope_low"], result["slope_high"], vectorize=True
    ).assign_attrs(description="measured sign vs predicted: " + ", ".join(VERDICTS))
    return result


def _fixed_beta(aggregate: xr.Dataset, axis: str) -> float:
    other = THEORY_FIXED[axis][0]
    return float(aggregate[other].values[0]) if other in aggregate.dims else float("nan")


def predicted_slope_sign(axis: str, noise_ratio: xr.DataArray, fixed: float) -> xr.DataArray:
    """Sign of d(min ppl)/d(beta) near 1 predicted by seed 000 Lemmas 3.4-3.6.

    C_total (the implicit regulariser) increasing in the beta is read as a falling perplexity
    (sign -1), decreasing as a rising one (+1); between the two lemma thresholds the lemmas say
    nothing (0). For beta2 (beta1 fixed) small batches (large lambda) predict -1; for beta1
    (beta2 = 0.999) the opposite. The "below" side includes lambda = 0 (full batch): there the
    derivative of C_total is its full-batch part alone, whose sign is that of the small-lambda side
    (the threshold is the infimum of -FB'/S' > 0, so FB' has the sign of that side throughout).
    """
    from adamnoise.theory.implicit_bias import monotonicity_thresholds

    t = monotonicity_thresholds(axis, fixed)

    def side(lam: float, threshold: float, where: str) -> bool:
        return lam >= threshold if where == "above" else 0 <= lam <= threshold

    def sign(lam: float) -> int:
        if not np.isfinite(lam):
            return 0
        if side(lam, t.lambda_increasing, t.increasing_side):
            return -1
        if side(lam, t.lambda_decreasing, t.decreasing_side):
            return 1
        return 0

    return xr.apply_ufunc(np.vectorize(sign, otypes=[np.int8]), noise_ratio)


def slope_verdict(predicted: int, low: float, high: float) -> str:
    """'agrees' / 'contradicts' when the interval excludes 0, else 'inconclusive'."""
    if predicted == 0:
        return "no prediction"
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return "inconclusive"
    measured = 1 if low > 0 else -1
    return "agrees" if measured == predicted else "contradicts"


def theory_applies(experiment_config: dict, axis: str) -> str | None:
    """None if seed 000's flip prediction applies to this sweep, else the reason it does not.

    The lemmas are about Adam with one beta swept and the other fixed: beta2 with beta1 fixed at
    0.9 or 0.99 (Lemmas 3.4, 3.5), beta1 with beta2 fixed at 0.999 (Lemma 3.6). SGD, sign
    methods, tied betas and other fixed values are outside them.
    """
    optimizer = experiment_config.get("optimizer", {}).get("name")
    if optimizer not in ("adam", "adamw"):
        return f"optimizer {optimizer!r} is not Adam"
    if experiment_config.get("tie_betas"):
        return "beta1 = beta2 (tied) is not a one-beta sweep"
    other, allowed = THEORY_FIXED[axis]
    fixed = experiment_config["grid"][other]
    if len(fixed) != 1 or not any(abs(fixed[0] - value) < 1e-12 for value in allowed):
        return f"{other} is {fixed}, the lemmas hold it at one of {list(allowed)}"
    if len(experiment_config["grid"][axis]) < 2:
        return f"only one {axis} value"
    return None


def table1(optima: xr.Dataset, published: dict | None = None) -> pd.DataFrame:  # noqa: F821
    """Seed 000 Table 1 as a table: per (batch size, lr) the best beta, its interval and Delta,
    next to the printed values where ``published`` has them (``adamnoise.published``)."""

    axis = optima.attrs["axis"]
    names = [
        f"best_{axis}",
        "best_low",
        "best_high",
        "p_best",
        "best_min_val_ppl",
        "delta_pct",
        "slope",
        "slope_low",
        "slope_high",
        "predicted_slope_sign",
        "slope_verdict",
        "n_best_is_last",
        "best_flagged",
    ]
    frame = optima[names].to_dataframe().reset_index()
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("beta") and c != axis])
    from adamnoise.published import round_lr

    paper_beta, paper_delta = [], []
    for row in frame.itertuples():
        printed = (published or {}).get((int(row.batch_size), round_lr(float(row.lr))))
        paper_beta.append(printed[0] if printed else np.nan)
        paper_delta.append(printed[1] if printed else np.nan)
    frame[f"paper_{axis}"] = paper_beta
    frame["paper_delta_pct"] = paper_delta
    return frame
