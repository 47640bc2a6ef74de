"""Measurements held against theory: empirical optima of a sweep and the predicted flip batch sizes.

Seed 000 §3.3: with lambda = (N/b - 1)/(N - 1) * B_simple (eq. 8), C_total decreases in beta2 when
lambda is well below 0.5 and increases when it is well above; for beta1 the thresholds are about 1
(Lemma 3.6). The batch sizes where lambda crosses 1 and 0.5 are where the best beta2 is predicted
to flip from "high" (small batches) to "low" (large batches), and the best beta1 the other way.

Seed 004 §3: in the region B- (C(beta, gamma) < 0) the max-update grows like exp(n |C| / 2);
``max_update_growth`` sets the measured growth rate of every run next to that exponent.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from adamnoise import provenance
from adamnoise.theory.implicit_bias import flip_batch_size, noise_ratio
from adamnoise.theory.stability import growth_exponent, stability_constant

THRESHOLDS = (1.0, 0.5)
QUANTILES = (0.25, 0.5, 0.75)


def completed_min_ppl(aggregate: xr.Dataset) -> xr.DataArray:
    """Minimal validation perplexity of completed runs (diverged and missing runs are NaN)."""
    return aggregate["min_val_ppl"].where(aggregate["status"] == 0)


def best_along(aggregate: xr.Dataset, axis: str) -> xr.Dataset:
    """The value of ``axis`` that minimises the seed-averaged minimal validation perplexity.

    Returns ``best_<axis>`` and ``best_min_val_ppl`` over the remaining grid axes (seed averaged
    out, as seed 000's figures average three iterations), plus ``relative_improvement``: how much
    better the best value is than the largest value on the axis (Table 1's Delta, for
    beta2 = 0.999).
    """
    mean_ppl = completed_min_ppl(aggregate).mean("seed", skipna=True)
    # argmin over an all-NaN slice raises: fill those with +inf and mask them afterwards
    has_data = mean_ppl.notnull().any(axis)
    filled = mean_ppl.fillna(np.inf)
    best_index = filled.argmin(axis)
    best_value = aggregate[axis].isel({axis: best_index}).where(has_data)
    best_ppl = filled.min(axis).where(has_data)
    largest = mean_ppl.isel({axis: -1})
    improvement = (largest - best_ppl) / largest
    return xr.Dataset(
        {
            f"best_{axis}": best_value.drop_vars(axis, errors="ignore"),
            "best_min_val_ppl": best_ppl,
            "relative_improvement": improvement.drop_vars(axis, errors="ignore"),
            "mean_min_val_ppl": mean_ppl,
        }
    )


def predict_flips(aggregate: xr.Dataset) -> xr.Dataset:
    """Predicted flip batch sizes from the measured B_simple and the number of training sequences.

    B_simple varies over training and between runs; seed 000 (App. B) argues only its scale
    matters and reads it at the relevant epochs. We take, for every completed run, B_simple at the
    evaluation of its minimal validation perplexity, and summarise by quantiles over runs: the
    median gives the prediction, the quartiles its spread.
    """
    if "n_train_sequences" not in aggregate.attrs:
        raise ValueError("the aggregate has no n_train_sequences attribute (no completed run)")
    n_samples = int(aggregate.attrs["n_train_sequences"])
    measured = aggregate["b_simple_at_best"].where(aggregate["status"] == 0)
    values = measured.values[np.isfinite(measured.values)]
    if values.size == 0:
        raise ValueError("no completed run has a finite B_simple estimate")
    quantiles = np.quantile(values, QUANTILES)
    thresholds = np.asarray(THRESHOLDS)
    flips = flip_batch_size(n_samples, quantiles[None, :], thresholds[:, None])

    batch_sizes = aggregate["batch_size"].values
    per_batch = measured.median([d for d in measured.dims if d != "batch_size"], skipna=True)
    result = xr.Dataset(
        {
            "b_simple": (
                "quantile",
                quantiles,
                {"units": "sequence", "description": "B_simple at best evaluation, over runs"},
            ),
            "flip_batch_size": (
                ("threshold", "quantile"),
                flips,
                {
                    "units": "sequence",
                    "description": "batch size at which lambda (eq. 8) equals the threshold",
                },
            ),
            "noise_ratio": (
                "batch_size",
                noise_ratio(n_samples, batch_sizes, quantiles[1]),
                {"description": "lambda (eq. 8) with the median B_simple of all runs"},
            ),
            "noise_ratio_own": (
                "batch_size",
                noise_ratio(n_samples, batch_sizes, per_batch.values),
                {"description": "lambda (eq. 8) with the median B_simple of that batch size"},
            ),
        },
        coords={"threshold": thresholds, "quantile": list(QUANTILES), "batch_size": batch_sizes},
    )
    result["threshold"].attrs["description"] = (
        "lambda threshold: 1 for beta1 (Lemma 3.6), 0.5 for beta2 (Lemma 3.4)"
    )
    result.attrs.update(
        experiment=aggregate.attrs.get("experiment", ""),
        n_train_sequences=n_samples,
        n_runs_used=int(values.size),
    )
    result.attrs.update(provenance.as_attrs(provenance.collect()))
    return result


def max_update_growth(aggregate: xr.Dataset, step: int = 500, half_window: int = 5) -> xr.Dataset:
    """Measured and predicted growth rate of log ||u_n||_inf per step, for every run.

    ``measured`` is the slope (log u[step + w] - log u[step - w]) / 2w, as seed 004 App. H measures
    it (step 500, w = 5); NaN where a run has no such steps (shorter, or diverged before). The
    prediction is |C|/2 in B- and 0 elsewhere (``growth_exponent``), C = C(beta2, beta1) of seed
    004 in its notation. Tied-beta experiments have no beta1 axis: there beta1 = beta2.
    """
    if step - half_window < 1:
        raise ValueError(f"step - half_window must be >= 1, got {step} - {half_window}")
    updates = aggregate["max_update"]
    if aggregate.sizes["train_step"] < step + half_window:  # train_step runs 1, 2, ..., n
        measured = xr.full_like(updates.isel(train_step=0, drop=True), np.nan, dtype=float)
    else:

        def log_at(n):  # only the two steps needed, in float64
            return np.log(updates.sel(train_step=n, drop=True).astype(float))

        measured = (log_at(step + half_window) - log_at(step - half_window)) / (2 * half_window)
    beta2 = aggregate["beta2"]
    beta1 = aggregate["beta1"] if "beta1" in aggregate.dims else beta2
    constant = xr.apply_ufunc(stability_constant, beta1, beta2)
    predicted = xr.apply_ufunc(growth_exponent, beta1, beta2)
    return xr.Dataset(
        {
            "measured": measured.assign_attrs(
                units="1/step", description=f"d log ||u_n||_inf / dn at n = {step}"
            ),
            "predicted": predicted.assign_attrs(
                units="1/step", description="|C|/2 in B-, 0 elsewhere (seed 004 eq. 5)"
            ),
            "stability_constant": constant.assign_attrs(
                units="1", description="C(beta, gamma) of seed 004 (beta = beta2, gamma = beta1)"
            ),
        },
        attrs={"step": step, "half_window": half_window},
    )
