"""Measurements held against theory: empirical optima of a sweep and the predicted flip batch sizes.

Seed 000 §3.3: with lambda = (N/b - 1)/(N - 1) * B_simple (eq. 8), C_total decreases in beta2 when
lambda is well below 0.5 and increases when it is well above; for beta1 the thresholds are about 1
(Lemma 3.6). The batch sizes where lambda crosses 1 and 0.5 are where the best beta2 is predicted
to flip from "high" (small batches) to "low" (large batches), and the best beta1 the other way.

Seed 004 §3: in the region B- (C(beta, gamma) < 0) the max-update grows like exp(n |C| / 2);
``max_update_growth`` sets the measured growth rate of every run next to that exponent.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import xarray as xr

from adamnoise import provenance
from adamnoise.theory.implicit_bias import flip_batch_size, noise_ratio
from adamnoise.theory.stability import (
    growth_exponent,
    level_curve,
    max_update_bound,
    normal_curve_beta1_interval,
    normal_curve_constant,
    normal_curve_section,
    stability_constant,
    stability_region_code,
)

THRESHOLDS = (1.0, 0.5)
QUANTILES = (0.25, 0.5, 0.75)


def predict_flips(aggregate: xr.Dataset) -> xr.Dataset:
    """Predicted flip batch sizes from the measured B_simple and the number of training sequences.

    Which B_simple: for every completed run, its estimate at its best evaluation
    (``b_simple_at_best``), averaged over the same amount of data before it at every batch size
    (``training.noise_scale_horizon``, noise_scale.py): each run is read at the same point of its
    training (its minimum) over the same stretch of data. Seed 000 (App. B, Fig. 4) uses one
    scale for all batch sizes, read at relevant epochs; so does the prediction:

    * pooled (the prediction): quartiles over all completed runs, lambda (eq. 8) with the median
      at every batch size (``noise_ratio``) and the flip batch sizes where lambda crosses each
      threshold (``flip_batch_size``; the quartiles give its spread);
    * per batch size (a diagnostic): quartiles over that batch size's runs
      (``b_simple_by_batch``), lambda with them at the realised batch size N/m
      (``noise_ratio_own``, m batches per epoch), and the batch size where that lambda crosses
      each threshold, interpolated in log b (``flip_batch_size_own``; NaN if none in the grid);
    * the check: where runs measured B_simple exactly from all N per-sequence gradients at their
      best weights (``b_simple_exact``), its quartiles per batch size and pooled, and the
      quartiles of the ratio estimate / exact (``estimate_over_exact``).
    """
    if "n_train_sequences" not in aggregate.attrs:
        raise ValueError("the aggregate has no n_train_sequences attribute")
    n_samples = int(aggregate.attrs["n_train_sequences"])
    source = "b_simple_at_best"
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
    pooled = noise_ratio(n_samples, realised, quantiles[1])
    pooled[realised >= n_samples] = 0.0
    own_flips = np.array([crossing(realised, own[:, 1], t) for t in thresholds])
    exact = _exact_check(aggregate, measured, others)
    result = xr.Dataset(
        {
            "b_simple": (
                "quantile",
                quantiles,
                {"units": "sequences", "description": "B_simple quartiles over all completed runs"},
            ),
            "flip_batch_size": (
                ("threshold", "quantile"),
                flips,
                {
                    "units": "sequences",
                    "description": "batch size at which lambda (eq. 8) with the pooled B_simple "
                    "equals the threshold",
                },
            ),
            "b_simple_by_batch": (
                ("batch_size", "quantile"),
                by_batch,
                {"units": "sequences", "description": "B_simple quartiles, that batch size's runs"},
            ),
            "noise_ratio": (
                "batch_size",
                pooled,
                {
                    "description": "lambda (eq. 8) at N/m with the pooled median B_simple: the one "
                    "scale the predictions use"
                },
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
                    "units": "sequences",
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
    result = result.merge(exact)
    result["threshold"].attrs["description"] = (
        "lambda threshold: 1 for beta1 (Lemma 3.6), 0.5 for beta2 (Lemma 3.4)"
    )
    result.attrs.update(
        experiment=aggregate.attrs.get("experiment", ""),
        n_train_sequences=n_samples,
        n_runs_used=int(values.size),
        b_simple_runs="every completed run of the experiment",
        b_simple_source=aggregate[source].attrs.get("description", source),
    )
    result.attrs.update(provenance.as_attrs(provenance.collect()))
    return result


def _exact_check(aggregate: xr.Dataset, measured: xr.DataArray, others: list[str]) -> xr.Dataset:
    """Quartiles of the exact B_simple and of estimate / exact, pooled and per batch size (all
    NaN where no run measured it)."""
    exact = aggregate["b_simple_exact"] if "b_simple_exact" in aggregate else measured * np.nan
    exact = exact.where(aggregate["status"] == 0)
    ratio = measured / exact
    out = {}
    for name, values, text in (
        ("b_simple_exact", exact, "B_simple from all N per-sequence gradients at the best weights"),
        ("estimate_over_exact", ratio, "ratio of the B_simple estimate (b_simple_at_best) to it"),
    ):
        finite = values.values[np.isfinite(values.values)]
        pooled = np.quantile(finite, QUANTILES) if finite.size else np.full(len(QUANTILES), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            by_batch = values.quantile(list(QUANTILES), dim=others, skipna=True)
        out[name] = ("quantile", pooled, {"description": f"{text}: quartiles over all runs"})
        out[f"{name}_by_batch"] = (
            ("batch_size", "quantile"),
            by_batch.transpose("batch_size", "quantile").values,
            {"description": f"{text}: quartiles over that batch size's runs"},
        )
        out[f"n_{name}"] = ((), int(finite.size), {"description": "runs with a finite value"})
    return xr.Dataset(out)


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
    it (step 500, w = 5); NaN where a run has no such steps (shorter, or diverged before) or a
    max-update there is not a positive finite number (a run trained on past a blow-up has NaN
    weights). The prediction is |C|/2 in B- and 0 elsewhere (``growth_exponent``), C = C(beta2,
    beta1) of seed 004 in its notation. The betas are the aggregate's ``beta1`` / ``beta2``
    coordinates: dimensions of a product grid, or coordinates on ``point`` for betas along a curve;
    tied-beta experiments have no beta1: there beta1 = beta2.

    Also returned, for the figure (seed 004 Fig. 1a/c): ``max_update_bound``, the bound of eq. 5
    on the max-update recorded at every ``train_step`` (train_step t holds (theta_t -
    theta_{t-1}) / eta, which is u_{t-1} in eq. 1's indexing: the bound at n = t - 1);
    ``region`` (+1 B+, 0 B0, -1 B-); the boundary B0 (``boundary_beta1`` / ``boundary_beta2``);
    and for betas along a curve the whole normal curve inside the unit square (``curve_beta1`` /
    ``curve_beta2``, attribute ``normal_curve_constant``).
    """
    if step - half_window < 1:
        raise ValueError(f"step - half_window must be >= 1, got {step} - {half_window}")
    updates = aggregate["max_update"]
    if aggregate.sizes["train_step"] < step + half_window:  # train_step runs 1, 2, ..., n
        measured = xr.full_like(updates.isel(train_step=0, drop=True), np.nan, dtype=float)
    else:

        def log_at(n):  # only the two steps needed, in float64; NaN unless positive and finite
            values = updates.sel(train_step=n, drop=True).astype(float)
            usable = np.isfinite(values) & (values > 0)
            return np.log(values.where(usable))

        measured = (log_at(step + half_window) - log_at(step - half_window)) / (2 * half_window)
    beta2 = aggregate["beta2"]
    beta1 = aggregate["beta1"] if "beta1" in aggregate.coords else beta2
    constant = xr.apply_ufunc(stability_constant, beta1, beta2)
    predicted = xr.apply_ufunc(growth_exponent, beta1, beta2)
    bound = xr.apply_ufunc(max_update_bound, beta1, beta2, aggregate["train_step"] - 1)

    def log_bound(n):  # train_step n holds u_{n-1} of eq. 1
        return np.log(xr.apply_ufunc(max_update_bound, beta1, beta2, n - 1))

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        bound_slope = (log_bound(step + half_window) - log_bound(step - half_window)) / (
            2 * half_window
        )
    growth = xr.Dataset(
        {
            "measured": measured.assign_attrs(
                units="1/step", description=f"d log ||u_n||_inf / dn at n = {step}"
            ),
            "predicted": predicted.assign_attrs(
                units="1/step", description="|C|/2 in B-, 0 elsewhere (seed 004 eq. 5)"
            ),
            "bound_slope": bound_slope.assign_attrs(
                units="1/step",
                description=f"slope of log of eq. 5's whole bound at n = {step}, measured like "
                "`measured`: |C|/2 plus the slopes of the bias corrections (-0.0015 at gamma = "
                "0.999, n = 500)",
            ),
            "stability_constant": constant.assign_attrs(
                units="1", description="C(beta, gamma) of seed 004 (beta = beta2, gamma = beta1)"
            ),
            "region": xr.apply_ufunc(stability_region_code, beta1, beta2).assign_attrs(
                flag_values=np.array([1, 0, -1], dtype=np.int8), flag_meanings="B+ B0 B-"
            ),
            "max_update_bound": bound.astype(np.float64).assign_attrs(
                units="1", description="seed 004 eq. 5: bound on the max-update of train_step"
            ),
        },
        attrs={"step": step, "half_window": half_window},
    )
    # the boundary C = 0 of the (beta, gamma) plane (Fig. 1c): beta1 = 2 beta2 / (beta2 + 1)
    boundary_beta1, boundary_beta2 = level_curve(0.0, n_points=4096)
    growth["boundary_beta1"] = ("boundary", boundary_beta1, {"description": "beta1 on B0"})
    growth["boundary_beta2"] = ("boundary", boundary_beta2, {"description": "beta2 on B0"})
    curve = _curve_of(aggregate)
    if curve is not None:
        through = curve["through"]
        k = float(normal_curve_constant(through["beta1"], through["beta2"]))
        low, high = normal_curve_beta1_interval(k)
        margin = 1e-6 * (high - low)
        curve_beta1, curve_beta2 = normal_curve_section(
            through["beta1"], through["beta2"], (low + margin, high - margin), 512
        )
        growth["curve_beta1"] = ("curve", curve_beta1, {"description": "beta1, whole curve"})
        growth["curve_beta2"] = ("curve", curve_beta2, {"description": "beta2, whole curve"})
        growth.attrs["normal_curve_constant"] = k
    return growth


def _curve_of(aggregate: xr.Dataset) -> dict | None:
    """The experiment's ``grid.betas.normal_curve`` (betas along a curve), or None."""
    if "point" not in aggregate.dims or "experiment_config" not in aggregate.attrs:
        return None
    grid = json.loads(aggregate.attrs["experiment_config"]).get("grid", {})
    return grid.get("betas", {}).get("normal_curve")


def growth_window(n_steps: int, step: int = 500, half_window: int = 5) -> tuple[int, int]:
    """The (step, half_window) at which ``max_update_growth`` can measure runs of ``n_steps``:
    seed 004's n = 500 (from 495 and 505) if the runs reach 505, else their middle (smoke runs)."""
    if n_steps >= step + half_window:
        return step, half_window
    middle = max(n_steps // 2, half_window + 1)
    return middle, min(half_window, middle - 1)


def growth_summary(growth: xr.Dataset, aggregate: xr.Dataset) -> dict:
    """Runs in B- and their measured / predicted slope (median and range, finite ones only), and
    how many runs diverged but trained on to their cap (``stop_on_divergence: false``)."""
    from adamnoise.status import DIVERGED, STATUS_CODES, STOP_CODES, STOP_DIVERGED

    kept_going = (aggregate["status"] == STATUS_CODES[DIVERGED]) & (
        aggregate["stop_reason"] != STOP_CODES[STOP_DIVERGED]
    )
    unstable = growth["region"] == -1
    ratio = (growth["measured"] / growth["predicted"]).where(unstable).values.ravel()
    ratio = ratio[np.isfinite(ratio)]
    return {
        "runs_in_b_minus": int(unstable.sum()),
        "ratio_median": float(np.median(ratio)) if ratio.size else float("nan"),
        "ratio_min": float(ratio.min()) if ratio.size else float("nan"),
        "ratio_max": float(ratio.max()) if ratio.size else float("nan"),
        "diverged_and_kept_going": int(kept_going.sum()),
    }
