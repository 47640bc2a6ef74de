"""Empirical optima of a beta sweep, with their seed uncertainty (seed 000 Figs. 2/3, Table 1).

For every (batch size, learning rate) of a sweep along ``axis`` (``beta2`` or ``beta1``):

* **Seed means.** A beta value is a *candidate* only if every seed of it completed: a value whose
  other seeds diverged cannot win on one survivor, and a value with a missing run is not judged
  yet. Diverged seeds count as +inf, missing ones as NaN; ``n_completed`` / ``n_diverged`` say
  which. ``std_min_val_ppl`` is the spread over the completed seeds (ddof = 1).
* **Best beta and its bootstrap range.** The point estimate minimises the seed mean;
  ``seed_winners`` counts the seeds whose own argmin it is. Seeds are resampled with replacement,
  the same resample for every beta (runs of one seed share the initialisation and data order, so
  the comparison is paired), and each resample's argmin is recorded: ``best_low`` / ``best_high``
  are the 2.5 % / 97.5 % quantiles of the winning beta and ``p_best`` the share of resamples the
  point estimate wins. With S seeds a resample of one seed repeated has probability S^(1-S)
  (1/2 for S = 2, 1/9 for S = 3), so the range spans the single-seed winners: it describes the
  seed spread and is not a calibrated 95 % interval below about 5 seeds.
* **The sign the theory predicts.** Seed 000 predicts on which side of the flip the minimal
  perplexity falls or rises towards beta -> 1 (full batch, lambda = 0, included). ``slope`` is
  the least-squares slope of the seed mean against ``-log10(1 - beta)`` over the
  ``slope_points`` values nearest to 1; each seed's own slope gives a paired t-interval
  (``slope_low`` / ``slope_high``, 95 %, S - 1 degrees of freedom: wide for 2 or 3 seeds, as it
  should be) and ``seeds_agreeing`` counts the seeds whose slope has the predicted sign.
  ``slope_verdict`` compares the interval with the prediction (``predicted_slope_sign``: -1, +1,
  or 0 where C_total is not monotone over those beta values for the measured lambda).
* **Delta (Table 1).** ``delta_pct`` = (ppl(default) - ppl(best)) / ppl(default) * 100 with the
  default beta (0.999 for beta2, 0.9 for beta1) as the baseline, as seed 000 Table 1 defines the
  relative improvement over the default.
  Picking the argmin of noisy seed means biases ``delta_pct`` upwards (the best of K noisy means
  is low by chance); ``delta_cv_pct`` removes that bias with held-out seeds: for each seed, the
  best beta is chosen on the other seeds and its improvement over the default is measured on the
  held-out one, then averaged (leave one seed out; NaN below two seeds).
* **Noise beside the effect.** ``eval_se`` is the evaluation noise of a minimum (the median over
  seeds of ``min_val_ppl_se``: the standard error over the validation sequences),
  ``std_min_val_ppl`` the seed spread, ``effect`` the range of the seed means over the swept
  values: a beta effect is only visible where it is larger than both.
* **Test perplexity at the validation-chosen step.** The minimum over evaluations of a noisy
  curve is biased low; the test perplexity of the weights at that evaluation is not (the test
  split played no part in choosing them). ``mean_test_ppl``, ``best_{axis}_test`` and
  ``delta_test_pct`` are the same statistics on it.
* **Flags.** Among completed runs, ``n_best_is_last`` counts those whose best evaluation was their
  last one (possibly stopped before their minimum) and ``n_late_best`` those that reached their
  budget with their best evaluation in its last ``LATE_FRACTION`` (a minimum that more training
  may still lower: ``adamnoise check-stopping`` tells); ``best_flagged`` marks a best beta that
  includes a run of either kind.
* **Paired comparisons with the default.** ``diff_vs_default`` is the seed mean of
  ppl(beta, s) - ppl(default, s) with its paired t-interval over seeds (``diff_low`` /
  ``diff_high``; ``test_diff_*`` the same on the test perplexity): an interval that excludes 0
  detects a difference; ``power.minimum_detectable_effect`` says how large one must be to be
  detected. A positive control (a beta known to be much worse) must come out detected.
* **Verdicts need seeds.** With fewer than ``MIN_SEEDS_FOR_VERDICT`` seeds the t-interval has one
  degree of freedom (+-12.7 standard errors) and no verdict is given ("too few seeds").
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from adamnoise.status import LATE_FRACTION, STOP_CAP, STOP_CODES

STOP_CAP_CODE = STOP_CODES[STOP_CAP]  # a run that reached its budget
MIN_SEEDS_FOR_VERDICT = 3

# the "default" value of each beta, the baseline of Table 1's Delta
DEFAULT_BETA = {"beta2": 0.999, "beta1": 0.9}
# the beta that the other sweep holds fixed, where seed 000's lemmas apply
THEORY_FIXED = {"beta2": ("beta1", (0.9, 0.99)), "beta1": ("beta2", (0.999,))}
CONFIDENCE = 0.95
VERDICTS = ("agrees", "contradicts", "inconclusive", "no prediction", "too few seeds")


def candidate_ppl(aggregate: xr.Dataset, statistic: str = "min_val_ppl") -> xr.DataArray:
    """A run's perplexity statistic: completed as is, diverged +inf, missing NaN."""
    ppl = aggregate[statistic].where(aggregate["status"] == 0)
    return ppl.where(aggregate["status"] != 1, np.inf)


def _matching_index(values: np.ndarray, target: float, rel: float = 0.01) -> int | None:
    """Index of the grid value whose 1 - beta is within ``rel`` of 1 - target (None if absent)."""
    distance = np.abs(np.log((1 - values) / (1 - target)))
    index = int(np.argmin(distance))
    return index if distance[index] <= np.log1p(rel) else None


def seed_means(ppl: np.ndarray) -> np.ndarray:
    """Mean over the last axis; +inf if any seed diverged, NaN if any is missing."""
    with np.errstate(invalid="ignore"):
        mean = ppl.mean(axis=-1)
    mean = np.where(np.isinf(ppl).any(axis=-1), np.inf, mean)
    return np.where(np.isnan(ppl).any(axis=-1), np.nan, mean)


def argmin_candidates(mean: np.ndarray) -> np.ndarray:
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

    ``noise_ratio``: lambda per batch size (``predict_flips``'s ``noise_ratio``); without it,
    or where the theory does not apply (``theory_applies``), no sign is predicted.
    """
    aggregate = aggregate.sortby(axis)
    ppl = candidate_ppl(aggregate)
    cells = [d for d in ppl.dims if d not in (axis, "seed")]
    ppl = ppl.transpose(*cells, axis, "seed")
    values = ppl.values  # [..., K, S]
    betas = np.asarray(aggregate[axis].values, dtype=float)
    n_seeds = values.shape[-1]

    mean = seed_means(values)
    delta_cv = _held_out_delta(values, _matching_index(betas, DEFAULT_BETA[axis]))
    completed = np.isfinite(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells with fewer than two seeds: NaN
        spread = np.where(completed, values, np.nan)
        std = np.nanstd(spread, axis=-1, ddof=1)
    best = argmin_candidates(mean)
    has_best = best >= 0
    take = np.where(has_best, best, 0)[..., None]
    best_beta = np.where(has_best, betas[take[..., 0]], np.nan)
    best_ppl = np.where(has_best, np.take_along_axis(mean, take, -1)[..., 0], np.nan)

    draws = bootstrap_seeds(n_seeds, n_resamples, bootstrap_seed)
    resampled = seed_means(values[..., draws])  # [..., K, R]
    # a value that is not a candidate on all seeds is not one in any resample either
    resampled = np.where(np.isfinite(mean)[..., None], resampled, np.inf)
    resampled = np.moveaxis(resampled, -1, 0)  # [R, ..., K]
    alpha = (1 - CONFIDENCE) / 2
    low, high, p_best = _winner_spread(argmin_candidates(resampled), best, betas, alpha)

    # each seed's own argmin (NaN-safe: a seed with a missing or diverged value has none)
    own_best = argmin_candidates(np.moveaxis(np.where(np.isfinite(values), values, np.nan), -1, -2))
    seed_winners = np.where(has_best, (own_best == best[..., None]).sum(-1), 0)

    top = np.arange(len(betas))[-slope_points:]  # sorted: the values nearest 1
    x = -np.log10(1 - betas[top])
    slope = _slopes(mean[..., top], x)
    seed_slopes = _slopes(np.moveaxis(values[..., top, :], -1, -2), x)  # [..., S]
    slope_low, slope_high = _t_interval(seed_slopes)
    slope_low = np.where(np.isfinite(slope), slope_low, np.nan)
    slope_high = np.where(np.isfinite(slope), slope_high, np.nan)

    default_index = _matching_index(betas, DEFAULT_BETA[axis])
    no_default = np.full(best.shape, np.nan)
    default_ppl = no_default if default_index is None else mean[..., default_index]
    with np.errstate(invalid="ignore"):
        delta = np.where(
            np.isfinite(default_ppl), (default_ppl - best_ppl) / default_ppl * 100, np.nan
        )

    last, late = (flags.transpose(*cells, axis, "seed").values for flags in run_flags(aggregate))
    n_last = last.sum(axis=(-2, -1)).astype(int)
    n_late = late.sum(axis=(-2, -1)).astype(int)
    flagged_runs = ((last + late) > 0).sum(-1)
    noise = _cell_noise(aggregate, cells, axis, mean)
    test = _test_statistics(aggregate, cells, axis, betas)
    paired = _paired_with_default(aggregate, cells, axis, default_index)
    best_flagged = np.take_along_axis(flagged_runs, take, -1)[..., 0] > 0
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
            "seed_winners": (
                cell_dims,
                seed_winners,
                {"description": "seeds whose own argmin is the best value"},
            ),
            "best_low": (
                cell_dims,
                low,
                {"description": f"{alpha:.1%} quantile of the winner over seed resamples"},
            ),
            "best_high": (
                cell_dims,
                high,
                {"description": f"{1 - alpha:.1%} quantile of the winner over seed resamples"},
            ),
            "p_best": (cell_dims, p_best, {"description": "share of resamples the best wins"}),
            "default_min_val_ppl": (cell_dims, default_ppl),
            "delta_pct": (
                cell_dims,
                delta,
                {
                    "units": "%",
                    "description": "(ppl(default) - ppl(best)) / ppl(default); biased upwards by "
                    "picking the best of noisy means (delta_cv_pct is not)",
                },
            ),
            "delta_cv_pct": (
                cell_dims,
                delta_cv,
                {
                    "units": "%",
                    "description": "Delta with the best chosen on the other seeds and measured on "
                    "the held-out one, averaged over seeds",
                },
            ),
            **noise,
            **test,
            **paired,
            "slope": (
                cell_dims,
                slope,
                {"description": f"d(mean ppl)/d(-log10(1-{axis})) over the top values"},
            ),
            "slope_low": (
                cell_dims,
                slope_low,
                {"description": "paired t-interval over the seeds' own slopes, lower end"},
            ),
            "slope_high": (cell_dims, slope_high, {"description": "upper end"}),
            "n_best_is_last": (cell_dims, n_last),
            "n_late_best": (
                cell_dims,
                n_late,
                {"description": "capped runs with their best in the last LATE_FRACTION of steps"},
            ),
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
            "late_fraction": LATE_FRACTION,
            "slope_betas": " ".join(f"{b:g}" for b in betas[top]),
        },
    )
    predicted = xr.zeros_like(result["slope"], dtype=np.int8)
    if noise_ratio is not None:
        window = (float(betas[top].min()), float(betas[top].max()))
        predicted = predicted_slope_sign(axis, noise_ratio, fixed_beta(aggregate, axis), window)
        predicted = predicted.broadcast_like(result["slope"]).astype(np.int8)
    result["predicted_slope_sign"] = predicted.assign_attrs(
        description="sign of d ppl / d beta over the slope's beta values that seed 000 predicts "
        "(0: none)"
    )
    result["seeds_agreeing"] = (
        cell_dims,
        np.where(
            predicted.values != 0,
            (np.sign(seed_slopes) == predicted.values[..., None]).sum(-1),
            0,
        ),
        {"description": "seeds whose own slope has the predicted sign"},
    )
    result["slope_verdict"] = xr.apply_ufunc(
        lambda p, lo, hi: slope_verdict(p, lo, hi, n_seeds),
        predicted,
        result["slope_low"],
        result["slope_high"],
        vectorize=True,
    ).assign_attrs(description="measured sign vs predicted: " + ", ".join(VERDICTS))
    return result


def _winner_spread(
    boot_best: np.ndarray, best: np.ndarray, betas: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: the alpha / 1 - alpha quantiles of the winning beta over resamples (``boot_best``,
    [R, ...], -1 where none won) and the share of resamples the point estimate ``best`` wins."""
    low, high, p_best = (np.full(best.shape, np.nan) for _ in range(3))
    for cell in np.ndindex(best.shape):
        winners = boot_best[(slice(None), *cell)]
        winners = winners[winners >= 0]
        if winners.size and best[cell] >= 0:
            low[cell] = betas[int(np.quantile(winners, alpha, method="lower"))]
            high[cell] = betas[int(np.quantile(winners, 1 - alpha, method="higher"))]
            p_best[cell] = float(np.mean(winners == best[cell]))
    return low, high, p_best


def run_flags(aggregate: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """Completed runs whose best evaluation was their last, and those that hit their cap with
    their best evaluation in its last ``LATE_FRACTION`` of steps (0/1)."""
    completed = aggregate["status"] == 0
    last = aggregate["best_is_last"].where(completed, 0)
    late = xr.zeros_like(last)
    if "stop_reason" in aggregate and "eval_step" in aggregate:
        steps = aggregate["eval_step"].max("eval")
        near_end = aggregate["best_step"] >= (1 - LATE_FRACTION) * steps
        capped = aggregate["stop_reason"] == STOP_CAP_CODE
        late = (capped & near_end & completed).astype(last.dtype)
    return last, late


def _held_out_delta(values: np.ndarray, default_index: int | None) -> np.ndarray:
    """Leave-one-seed-out Delta (%): the best beta chosen on the other seeds, measured on the
    held-out seed against the default there; mean over held-out seeds. ``values`` [..., K, S]."""
    n_seeds = values.shape[-1]
    if default_index is None or n_seeds < 2:
        return np.full(values.shape[:-2], np.nan)
    deltas = []
    for held in range(n_seeds):
        others = np.delete(values, held, axis=-1)
        chosen = argmin_candidates(seed_means(others))  # [...]
        own = values[..., held]  # [..., K]
        picked = np.take_along_axis(own, np.maximum(chosen, 0)[..., None], -1)[..., 0]
        default = own[..., default_index]
        with np.errstate(invalid="ignore"):
            delta = (default - picked) / default * 100
        deltas.append(np.where((chosen >= 0) & np.isfinite(delta), delta, np.nan))
    stacked = np.stack(deltas, axis=-1)
    return np.where(np.isnan(stacked).any(axis=-1), np.nan, stacked.mean(axis=-1))


def _cell_noise(aggregate: xr.Dataset, cells: list[str], axis: str, mean: np.ndarray) -> dict:
    """Evaluation noise per (cell, beta) and the effect of beta per cell (module docstring)."""
    dims = (*cells, axis)
    if "min_val_ppl_se" in aggregate:
        se = aggregate["min_val_ppl_se"].where(aggregate["status"] == 0)
        eval_se = se.median("seed", skipna=True).transpose(*dims).values
    else:
        eval_se = np.full(mean.shape, np.nan)
    finite = np.where(np.isfinite(mean), mean, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell without candidates
        effect = np.nanmax(finite, axis=-1) - np.nanmin(finite, axis=-1)
    return {
        "eval_se": (
            dims,
            eval_se,
            {"description": "evaluation noise of the minimum: median over seeds of min_val_ppl_se"},
        ),
        "effect": (
            tuple(cells),
            effect,
            {"description": "range of the seed means over the swept values (completed only)"},
        ),
    }


def _paired_with_default(
    aggregate: xr.Dataset, cells: list[str], axis: str, default_index: int | None
) -> dict:
    """Paired differences to the default beta over seeds and their t-intervals (docstring)."""
    out = {}
    dims = (*cells, axis)
    for prefix, statistic in (("", "min_val_ppl"), ("test_", "test_ppl")):
        if statistic not in aggregate or default_index is None:
            continue
        values = candidate_ppl(aggregate, statistic).transpose(*dims, "seed").values
        with np.errstate(invalid="ignore"):
            diffs = values - values[..., default_index : default_index + 1, :]
        diffs = np.where(np.isfinite(diffs), diffs, np.nan)  # a diverged seed: no interval
        low, high = _t_interval(diffs)
        text = f"{statistic} minus the default's, paired over seeds"
        out[f"{prefix}diff_vs_default"] = (dims, diffs.mean(axis=-1), {"description": text})
        out[f"{prefix}diff_low"] = (dims, low, {"description": f"{CONFIDENCE:.0%} t-interval, low"})
        out[f"{prefix}diff_high"] = (dims, high, {"description": "high end"})
    return out


def paired_comparisons(optima: xr.Dataset):
    """One row per cell and non-default beta: the paired differences to the default with their
    intervals, for the minimum and the test perplexity, and whether each is detected."""
    axis = optima.attrs["axis"]
    names = [
        n
        for n in (
            "diff_vs_default", "diff_low", "diff_high",
            "test_diff_vs_default", "test_diff_low", "test_diff_high",
        )
        if n in optima
    ]  # fmt: skip
    frame = optima[names].to_dataframe().reset_index()
    frame = frame[~np.isclose(frame[axis], optima.attrs["default_beta"])]
    for prefix in ("", "test_"):
        if f"{prefix}diff_low" in frame:
            low, high = frame[f"{prefix}diff_low"], frame[f"{prefix}diff_high"]
            frame[f"{prefix}detected"] = (low > 0) | (high < 0)
    return frame.reset_index(drop=True)


def _test_statistics(aggregate: xr.Dataset, cells: list[str], axis: str, betas) -> dict:
    """Seed means of the test perplexity at the validation-chosen step, its best beta and Delta."""
    dims = (*cells, axis)
    if "test_ppl" not in aggregate:
        return {}
    values = candidate_ppl(aggregate, "test_ppl").transpose(*dims, "seed").values
    mean = seed_means(values)
    best = argmin_candidates(mean)
    best_beta = np.where(best >= 0, betas[np.maximum(best, 0)], np.nan)
    default_index = _matching_index(betas, DEFAULT_BETA[axis])
    if default_index is None:
        delta = np.full(best.shape, np.nan)
    else:
        best_mean = np.take_along_axis(mean, np.maximum(best, 0)[..., None], -1)[..., 0]
        default = mean[..., default_index]
        with np.errstate(invalid="ignore"):
            delta = np.where(best >= 0, (default - best_mean) / default * 100, np.nan)
    return {
        "mean_test_ppl": (dims, mean, {"description": "seed mean of test_ppl"}),
        f"best_{axis}_test": (
            tuple(cells),
            best_beta,
            {"description": "argmin of the seed mean test ppl at the validation-chosen step"},
        ),
        "delta_test_pct": (
            tuple(cells),
            delta,
            {"units": "%", "description": "Delta of the test perplexity (best vs default)"},
        ),
        "delta_test_cv_pct": (
            tuple(cells),
            _held_out_delta(values, default_index),
            {"units": "%", "description": "held-out-seed Delta of the test perplexity"},
        ),
    }


def _t_interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``CONFIDENCE`` t-interval of the mean over the last axis (NaN if any is NaN)."""
    from scipy import stats

    n = samples.shape[-1]
    if n < 2:
        nan = np.full(samples.shape[:-1], np.nan)
        return nan, nan
    mean = samples.mean(axis=-1)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * samples.std(axis=-1, ddof=1) / np.sqrt(n)
    return mean - half, mean + half


def fixed_beta(aggregate: xr.Dataset, axis: str) -> float:
    other = THEORY_FIXED[axis][0]
    return float(aggregate[other].values[0]) if other in aggregate.dims else float("nan")


def predicted_slope_sign(
    axis: str,
    noise_ratio: xr.DataArray,
    fixed: float,
    window: tuple[float, float] | None = None,
) -> xr.DataArray:
    """Sign of d(min ppl)/d(beta) over ``window`` predicted by seed 000 (Sec. 3.3).

    C_total (the implicit regulariser) strictly increasing in the beta over the window is read as
    a falling perplexity (sign -1), strictly decreasing as a rising one (+1); where its derivative
    changes sign inside the window there is no prediction (0). The derivative is
    C_total' = FB' + lambda S' (``c_total_derivative``), evaluated on a dense grid of the window.
    Without a window, [0.9, 1): the lemmas' interval, so that Lemmas 3.4-3.6 are reproduced
    (beta2 with beta1 = 0.9: -1 for lambda >= 0.5082, +1 for lambda <= 0.4945). For beta2, small
    batches (large lambda) predict -1 and full batch (lambda = 0) +1; for beta1 the opposite.
    """
    from adamnoise.theory.implicit_bias import OPEN_END, c_total_derivative, sweep_grid

    lo, hi = window if window is not None else (0.9, OPEN_END)
    grid = sweep_grid(lo, min(hi, OPEN_END), n_uniform=401, n_geometric=101)

    def sign(lam: float) -> int:
        if not np.isfinite(lam):
            return 0
        derivative = c_total_derivative(axis, fixed, grid, lam)
        if np.all(derivative > 0):
            return -1
        if np.all(derivative < 0):
            return 1
        return 0

    return xr.apply_ufunc(np.vectorize(sign, otypes=[np.int8]), noise_ratio)


def slope_verdict(predicted: int, low: float, high: float, n_seeds: int) -> str:
    """'agrees' / 'contradicts' when the interval excludes 0, else 'inconclusive'; no verdict
    from fewer than ``MIN_SEEDS_FOR_VERDICT`` seeds."""
    if predicted == 0:
        return "no prediction"
    if n_seeds < MIN_SEEDS_FOR_VERDICT:
        return "too few seeds"
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
        "delta_cv_pct",
        "effect",
        f"best_{axis}_test",
        "delta_test_pct",
        "delta_test_cv_pct",
        "slope",
        "slope_low",
        "slope_high",
        "predicted_slope_sign",
        "slope_verdict",
        "seed_winners",
        "seeds_agreeing",
        "n_best_is_last",
        "n_late_best",
        "best_flagged",
    ]
    names = [name for name in names if name in optima]
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
