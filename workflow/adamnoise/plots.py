"""Figures of the report. Notebooks call these with loaded datasets; nothing here computes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import seaborn as sns
import xarray as xr

from adamnoise.optima import run_flags

# which lambda threshold predicts the flip of which beta (seed 000 Lemmas 3.4 and 3.6)
FLIP_THRESHOLD = {"beta2": 0.5, "beta1": 1.0}
GREEK = {"beta1": "β1", "beta2": "β2"}
# the predicted sign of d(min ppl)/d(beta) (optima.predicted_slope_sign) in words: falling
# perplexity towards beta = 1 favours a high beta
PREDICTED_BY_SIGN = {-1: "high {} predicted", 1: "low {} predicted", 0: "no prediction"}


def _log_one_minus(beta):
    # matplotlib also evaluates the transform at the axis limits, where 1 - beta may reach 0
    return -np.log10(np.clip(1 - np.asarray(beta, dtype=float), 1e-12, None))


def _inverse_log_one_minus(t):
    return 1 - 10.0 ** (-np.asarray(t, dtype=float))


def _one_minus_axis(ax, which: str, values, rotation: float = 0) -> None:
    """Betas near 1 are best read on a log scale of 1 - beta; label ticks with beta itself.

    ``which`` is "x" or "y".
    """
    set_scale = ax.set_xscale if which == "x" else ax.set_yscale
    set_scale("function", functions=(_log_one_minus, _inverse_log_one_minus))
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_ticks(values, [f"{v:g}" for v in values], rotation=rotation)


def _plain_log_labels(axis) -> None:
    """Tick labels of a log axis as plain numbers (6, not 6 x 10^0)."""
    axis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(mticker.FormatStrFormatter("%g"))


def beta_sweep(
    aggregate: xr.Dataset,
    flips: xr.Dataset,
    optima: xr.Dataset,
    axis: str = "beta2",
    theory_reason: str | None = None,
) -> plt.Figure:
    """Seed 000 Fig. 2/3: minimal validation perplexity against beta, one line per batch size.

    Top row, one panel per learning rate: the seed mean of the minimal validation perplexity
    against ``axis`` with +-1 standard deviation over seeds as error bars and every seed as a
    dot; the best value of each batch size is circled; runs whose best evaluation was their last
    (possibly stopped before their minimum) are crossed in red. Bottom row: the best value against
    the realised batch size N/m with the range of the winner over seed resamples, and, where the
    theory applies (``theory_reason`` is None), the predicted flip: lambda = threshold with the
    pooled median B_simple (dashed; band: its quartiles) and with each batch size's own B_simple
    (dotted).
    """
    others = {d: 0 for d in optima["mean_min_val_ppl"].dims if d not in ("batch_size", "lr", axis)}
    mean_ppl = optima["mean_min_val_ppl"].isel(others)
    std_ppl = optima["std_min_val_ppl"].isel(others)
    best = optima.isel({d: 0 for d in others if d in optima[f"best_{axis}"].dims})
    fixed = {d: 0 for d in others if d in aggregate["min_val_ppl"].dims}
    ppl = aggregate["min_val_ppl"].where(aggregate["status"] == 0).isel(fixed)
    threshold = FLIP_THRESHOLD[axis]
    applies = theory_reason is None
    flip = flips["flip_batch_size"].sel(threshold=threshold)
    flip_median = float(flip.sel(quantile=0.5))
    low, high = sorted((float(flip.sel(quantile=0.25)), float(flip.sel(quantile=0.75))))
    flip_own = float(flips["flip_batch_size_own"].sel(threshold=threshold))

    lrs = aggregate["lr"].values
    batch_sizes = aggregate["batch_size"].values
    realised = optima["mean_batch_size"].values if "mean_batch_size" in optima else batch_sizes
    palette = dict(zip(batch_sizes, sns.color_palette("viridis", len(batch_sizes)), strict=True))
    fig, axes = plt.subplots(
        2, len(lrs), figsize=(max(7, 4.8 * len(lrs)), 8), squeeze=False, constrained_layout=True
    )
    values = aggregate[axis].values
    last_runs, capped_runs = (flags.isel(fixed) for flags in run_flags(aggregate))
    n_flagged, n_capped = int(last_runs.sum()), int(capped_runs.sum())
    for column, lr in enumerate(lrs):
        ax = axes[0, column]
        for b in batch_sizes:
            colour = palette[b]
            curve = mean_ppl.sel(lr=lr, batch_size=b)
            label = f"b={b}"
            if applies and "predicted_slope_sign" in best:
                # the sign predicted from this batch size's own lambda, as in Table 1
                sign = int(best["predicted_slope_sign"].sel(lr=lr, batch_size=b))
                label += f" ({PREDICTED_BY_SIGN[sign].format(GREEK[axis])})"
            ax.errorbar(
                values, curve, yerr=std_ppl.sel(lr=lr, batch_size=b).fillna(0), fmt="o-",
                color=colour, ms=3, capsize=2, label=label,
            )  # fmt: skip
            runs = ppl.sel(lr=lr, batch_size=b).transpose(axis, "seed")
            for seed in runs["seed"].values:
                ax.plot(values, runs.sel(seed=seed), ".", color=colour, alpha=0.35, ms=4)
            flagged = last_runs.sel(lr=lr, batch_size=b).transpose(axis, "seed").values == 1
            if flagged.any():
                xs = np.repeat(values[:, None], flagged.shape[1], axis=1)[flagged]
                ax.plot(xs, runs.values[flagged], "x", color="tab:red", ms=8, mew=2)
            cell = best.sel(lr=lr, batch_size=b)
            ax.plot(
                float(cell[f"best_{axis}"]), float(cell["best_min_val_ppl"]), "o", ms=12,
                mfc="none", mec=colour, mew=2,
            )  # fmt: skip
        _one_minus_axis(ax, "x", values, rotation=45)
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis)
        ax.set_title(f"lr = {lr:g}")
        ax.set_xlabel(GREEK[axis])
        ax.set_ylabel("min. validation perplexity (mean ± s.d. over seeds)")

        ax = axes[1, column]
        cells = best.sel(lr=lr)
        centre = cells[f"best_{axis}"].values
        ax.errorbar(
            realised, centre, yerr=_interval(centre, cells["best_low"].values,
                                             cells["best_high"].values),
            fmt="s-", color="k", capsize=3,
            label=f"empirical best {GREEK[axis]} (range over seed resamples)",
        )  # fmt: skip
        flagged = cells["best_flagged"].values == 1
        if flagged.any():
            ax.plot(realised[flagged], centre[flagged], "x", color="tab:red", ms=10, mew=2,
                    label="best includes a run that may not have passed its minimum")  # fmt: skip
        if applies:
            ax.axvspan(low, high, color="tab:red", alpha=0.15, label="flip, B_simple quartiles")
            ax.axvline(flip_median, color="tab:red", ls="--", label=f"flip (λ={threshold:g})")
            if np.isfinite(flip_own):
                ax.axvline(flip_own, color="tab:red", ls=":", label="flip, B_simple per b")
        ax.set_xscale("log", base=2)
        _one_minus_axis(ax, "y", values)
        # half a grid step of padding on the log(1 - beta) scale, so the extremes stay visible
        ends = _log_one_minus([values.min(), values.max()])
        pad = 0.5 * (ends[1] - ends[0]) / max(len(values) - 1, 1)
        ax.set_ylim(*_inverse_log_one_minus([ends[0] - pad, ends[1] + pad]))
        ax.set_xlabel("batch size N/m (sequences)")
        ax.set_ylabel(f"best {GREEK[axis]}")
    axes[0, -1].legend(fontsize=7, loc="best")
    axes[1, -1].legend(fontsize=7, loc="best")
    name = aggregate.attrs.get("experiment", "")
    title = f"{name}: minimal validation perplexity vs {GREEK[axis]}"
    if applies:
        title += f"; predicted flip at b ≈ {flip_median:.0f}"
    else:
        title += f"; no flip prediction ({theory_reason})"
    title += f" (N = {flips.attrs['n_train_sequences']})"
    if n_flagged or n_capped:
        title += (
            f"\n{n_flagged} run(s) had their best evaluation last (red ×), "
            f"{n_capped} reached their budget before the stopping rule"
        )
    fig.suptitle(title)
    return fig


def _interval(centre, low, high):
    """Error-bar lengths below and above ``centre`` (zero where the interval is NaN)."""
    below = np.nan_to_num(np.asarray(centre) - np.asarray(low))
    above = np.nan_to_num(np.asarray(high) - np.asarray(centre))
    return np.vstack([np.maximum(below, 0), np.maximum(above, 0)])


def noise_scale(aggregate: xr.Dataset) -> plt.Figure:
    """Seed 000 Fig. 4: the estimated B_simple during training, one line per run."""
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    b_simple = aggregate["b_simple"]
    stacked = b_simple.stack(run=[d for d in b_simple.dims if d != "eval"])
    batch_sizes = aggregate["batch_size"].values
    palette = dict(zip(batch_sizes, sns.color_palette("viridis", len(batch_sizes)), strict=True))
    labelled = set()
    for run in stacked["run"].values:
        series = stacked.sel(run=run)
        if not np.isfinite(series.values).any():
            continue
        b = dict(zip(stacked.indexes["run"].names, run, strict=True))["batch_size"]
        label = None if b in labelled else f"b={b}"
        labelled.add(b)
        epochs = (
            aggregate["eval_epoch"].stack(run=stacked.indexes["run"].names).sel(run=run)
            if "eval_epoch" in aggregate
            else aggregate["epoch"]
        )
        ax.plot(epochs, series, color=palette[b], alpha=0.6, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("B_simple (sequences)")
    ax.set_title(f"{aggregate.attrs.get('experiment', '')}: estimated simple noise scale")
    ax.legend(fontsize=8)
    return fig


def stability(aggregate: xr.Dataset, growth: xr.Dataset) -> plt.Figure:
    """Seed 004 Fig. 1a/b: the max-update over training, and its growth rate against |C|/2.

    Left: ||u_n||_inf per step for every (beta1, beta2) of the first batch size, learning rate and
    seed, coloured by C(beta, gamma) (blue: B+, stable; red: B-, predicted to grow). Right: the
    measured growth rate of every run against the predicted one, with the identity line.
    """
    first = {d: 0 for d in ("batch_size", "lr", "seed") if d in aggregate["max_update"].dims}
    updates = aggregate["max_update"].isel(first)
    constant = growth["stability_constant"]
    limit = float(np.nanmax(np.abs(constant.values))) or 1.0
    colours = plt.get_cmap("coolwarm_r")
    fig, (ax_curves, ax_rates) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)

    beta_dims = [d for d in ("beta1", "beta2") if d in updates.dims]
    stacked = updates.stack(pair=beta_dims)
    for pair in stacked["pair"].values:
        where = dict(zip(beta_dims, np.atleast_1d(pair), strict=True))
        c = float(constant.sel(where)) if constant.ndim else float(constant)
        label = ", ".join(f"{GREEK[d]}={v:g}" for d, v in where.items())
        ax_curves.plot(
            aggregate["train_step"],
            stacked.sel(pair=pair),
            color=colours(0.5 + 0.5 * c / limit),
            lw=1,
            label=f"{label} (C={c:.2g})",
        )
    ax_curves.axvline(growth.attrs["step"], color="grey", ls=":", lw=1)
    ax_curves.set_yscale("log")
    _plain_log_labels(ax_curves.yaxis)
    ax_curves.set_xlabel("step n")
    ax_curves.set_ylabel("max-update ||θ_{n+1} − θ_n||∞ / η")
    ax_curves.legend(fontsize=6, ncol=2)

    measured, predicted, c_values = (
        array.values.ravel()
        for array in xr.broadcast(growth["measured"], growth["predicted"], constant)
    )
    ax_rates.scatter(
        predicted, measured, c=c_values, cmap=colours, vmin=-limit, vmax=limit, edgecolor="k"
    )
    top = float(np.nanmax(np.concatenate([predicted, measured, [1e-3]])))
    ax_rates.plot([0, top], [0, top], color="grey", ls="--", label="measured = predicted")
    ax_rates.set_xlabel("predicted growth rate |C|/2 in B−, 0 in B+ (per step)")
    ax_rates.set_ylabel(f"measured d log||u_n||∞/dn at n = {growth.attrs['step']}")
    ax_rates.legend(fontsize=8)
    fig.suptitle(
        f"{aggregate.attrs.get('experiment', '')}: max-update against the stability region"
    )
    return fig
