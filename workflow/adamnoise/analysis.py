"""Measurements held against theory: empirical optima of a sweep and the predicted flip batch sizes.

Seed 000 §3.3: with lambda = (N/b - 1)/(N - 1) * B_simple (eq. 8), C_total decreases in beta2 when
lambda is well below 0.5 and increases when it is well above; for beta1 the thresholds are about 1
(Lemma 3.6). The batch sizes where lambda crosses 1 and 0.5 are where the best beta2 is predicted
to flip from "high" (small batches) to "low" (large batches), and the best beta1 the other way.

Seed 004 §3: in the region B- (C(beta, gamma) < 0) the max-update grows like exp(n |C| / 2);
``max_update_growth`` sets the measured growth rate of every run next to that exponent.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from adamnoise import provenance
from adamnoise.theory.implicit_bias import flip_batch_size, noise_ratio
from adamnoise.theory.stability import growth_exponent, stability_constant

THRESHOLDS = (1.0, 0.5)
QUANTILES = (0.25, 0.5, 0.75)


def predict_flips(aggregate: xr.Dataset) -> xr.Dataset:
    """Predicted flip batch sizes from the measured B_simple and the number of training sequences.

    Which B_simple: for every completed run, the median of its B_simple over the evaluations after
    step 0 up to its best one (``b_simple_window`` of the aggregate): the training that produced
    the minimum, measured the same way for every batch size and learning rate. Seed 000 (App. B)
    argues only the scale matters; it also varies with the batch size, so both are given:

    * pooled: quartiles over all completed runs, the flip batch sizes where lambda (eq. 8) with
      them crosses each threshold (``flip_batch_size``; the median is the prediction, the
      quartiles its spread);
    * per batch size: quartiles over that batch size's runs (``b_simple_by_batch``) and lambda
      with them at the realised batch size N/m (``noise_ratio_own``, m batches per epoch), and
      the batch size where that lambda crosses each threshold, interpolated in log b
      (``flip_batch_size_own``; NaN if it does not cross inside the grid).
    """
    if "n_train_sequences" not in aggregate.attrs:
        raise ValueError("the aggregate has no n_train_sequences attribute")
    n_samples = int(aggregate.attrs["n_train_sequences"])
    source = "b_simple_window" if "b_simple_window" in aggregate else "b_simple_at_best"
    measured = aggregate[source].where(aggregate["status"] == 0)
    values = measured.values[np.isfinite(measured.values)]
    if values.size == 0:
        raise ValueError("no completed run has a finite B_simple estimate")
    quantiles = np.quantile(values, QUANTILES)
    thresholds = np.asarray(THRESHOLDS)
    flips = flip_batch_size(n_samples, quantiles[None, :], thresholds[:, None])

    batch_sizes = aggregate["batch_size"].values
    realised = (
        aggregate["mean_batch_size"].values
        if "mean_batch_size" in aggregate.coords
        else batch_sizes.astype(float)
    )
    others = [d for d in measured.dims if d != "batch_size"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a batch size without finite values
        by_batch = measured.quantile(list(QUANTILES), dim=others, skipna=True)
    by_batch = by_batch.transpose("batch_size", "quantile").values
    own = noise_ratio(n_samples, realised[:, None], by_batch)
    own[realised >= n_samples] = 0.0  # full batch: no mini-batch noise, whatever B_simple is
    own_flips = np.array([crossing(realised, own[:, 1], t) for t in thresholds])
    result = xr.Dataset(
        {
            "b_simple": (
                "quantile",
                quantiles,
                {"units": "sequence", "description": "B_simple quartiles over all completed runs"},
            ),
            "flip_batch_size": (
                ("threshold", "quantile"),
                flips,
                {
                    "units": "sequence",
                    "description": "batch size at which lambda (eq. 8) with the pooled B_simple "
                    "equals the threshold",
                },
            ),
            "b_simple_by_batch": (
                ("batch_size", "quantile"),
                by_batch,
                {"units": "sequence", "description": "B_simple quartiles, that batch size's runs"},
            ),
            "noise_ratio": (
                "batch_size",
                noise_ratio(n_samples, realised, quantiles[1]),
                {"description": "lambda (eq. 8) at N/m with the pooled median B_simple"},
            ),
            "noise_ratio_own": (
                ("batch_size", "quantile"),
                own,
                {"description": "lambda (eq. 8) at N/m with that batch size's B_simple quartiles"},
            ),
            "flip_batch_size_own": (
                "threshold",
                own_flips,
                {
                    "units": "sequence",
                    "description": "where lambda with each batch size's median B_simple crosses "
                    "the threshold (log-linear interpolation; NaN: no crossing in the grid)",
                },
            ),
        },
        coords={
            "threshold": thresholds,
            "quantile": list(QUANTILES),
            "batch_size": batch_sizes,
            "mean_batch_size": ("batch_size", realised),
        },
    )
    result["threshold"].attrs["description"] = (
        "lambda threshold: 1 for beta1 (Lemma 3.6), 0.5 for beta2 (Lemma 3.4)"
    )
    result.attrs.update(
        experiment=aggregate.attrs.get("experiment", ""),
        n_train_sequences=n_samples,
        n_runs_used=int(values.size),
        b_simple_runs="every completed run of the experiment",
        b_simple_window=aggregate[source].attrs.get("description", source),
    )
    result.attrs.update(provenance.as_attrs(provenance.collect()))
    return result


def crossing(batch_sizes: np.ndarray, ratios: np.ndarray, threshold: float) -> float:
    """First b where ``ratios`` (lambda per batch size, falling with b) crosses ``threshold``.

    Linear interpolation of lambda in log b between the two grid points that bracket it; NaN if
    no adjacent pair brackets it. lambda = 0 at full batch, so the last point may be 0.
    """
    order = np.argsort(batch_sizes)
    b, lam = np.log(np.asarray(batch_sizes, float)[order]), np.asarray(ratios, float)[order]
    for i in range(len(b) - 1):
        lo, hi = lam[i], lam[i + 1]
        if np.isfinite(lo) and np.isfinite(hi) and (lo - threshold) * (hi - threshold) <= 0:
            if lo == hi:
                return float(np.exp(b[i]))
            return float(np.exp(b[i] + (lo - threshold) / (lo - hi) * (b[i + 1] - b[i])))
    return float("nan")


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
