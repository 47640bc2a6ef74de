"""Figures of the report. Notebooks call these with loaded datasets; nothing here computes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import seaborn as sns
import xarray as xr

from adamnoise.optima import LATE_FRACTION, run_flags

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
    against ``axis`` with +-1 standard deviation over seeds as error bars, every seed as a dot
    and +-1 evaluation standard error (``eval_se``) as a shaded band, so that the beta effect
    can be read against both noises; the best value of each batch size is circled; runs whose
    best evaluation was their last (possibly stopped before their minimum) are crossed in red.
    Bottom row: the best value against the realised batch size N/m with the range of the winner
    over seed resamples (and the best by the test perplexity at the validation-chosen step, grey
    diamonds), and, where the
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
    last_runs, late_runs = (flags.isel(fixed) for flags in run_flags(aggregate))
    n_flagged, n_late = int(last_runs.sum()), int(late_runs.sum())
    status = aggregate["status"].isel(fixed)
    for column, lr in enumerate(lrs):
        ax = axes[0, column]
        dropped = _dropped_runs(status.sel(lr=lr))
        ax.set_title(f"lr = {lr:g}" + (f"\n{dropped}" if dropped else ""))
        drawable = bool(np.isfinite(ppl.sel(lr=lr).values).any())
        if not drawable:
            # nothing to draw (every run diverged or is missing): say so instead of a log axis
            ax.text(
                0.5, 0.5, f"no completed run\n{dropped}", transform=ax.transAxes,
                ha="center", va="center", color="tab:red",
            )  # fmt: skip
            ax.set_xlabel(GREEK[axis])
            _one_minus_axis(ax, "x", values, rotation=45)
        for b in batch_sizes if drawable else ():
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
            if "eval_se" in optima:
                se = optima["eval_se"].isel(others).sel(lr=lr, batch_size=b).fillna(0)
                ax.fill_between(values, curve - se, curve + se, color=colour, alpha=0.2, lw=0)
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
        if drawable:
            _one_minus_axis(ax, "x", values, rotation=45)
            ax.set_yscale("log")
            _plain_log_labels(ax.yaxis)
            ax.set_xlabel(GREEK[axis])
            ax.set_ylabel("min. validation perplexity")
            ax.fill_between([], [], [], color="0.6", alpha=0.3, label="± 1 evaluation s.e.")
            ax.plot([], [], "o-", color="0.3", label="seed mean ± 1 s.d.; dots: seeds")

        ax = axes[1, column]
        cells = best.sel(lr=lr)
        centre = cells[f"best_{axis}"].values
        ax.errorbar(
            realised, centre, yerr=_interval(centre, cells["best_low"].values,
                                             cells["best_high"].values),
            fmt="s-", color="k", capsize=3,
            label=f"empirical best {GREEK[axis]} (range over seed resamples)",
        )  # fmt: skip
        if f"best_{axis}_test" in cells:
            ax.plot(
                realised, cells[f"best_{axis}_test"].values, "D", color="0.45", ms=13, mfc="none",
                label=f"best {GREEK[axis]} by test ppl at the validation-chosen step",
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
    # the legend goes to the last panel that drew curves
    drawn = [ax for ax in axes[0] if ax.get_legend_handles_labels()[0]]
    (drawn[-1] if drawn else axes[0, -1]).legend(fontsize=7, loc="best")
    axes[1, -1].legend(fontsize=7, loc="best")
    name = aggregate.attrs.get("experiment", "")
    title = f"{name}: minimal validation perplexity vs {GREEK[axis]}"
    if applies:
        title += f"; predicted flip at b ≈ {flip_median:.0f}"
    else:
        title += f"; no flip prediction ({theory_reason})"
    title += f" (N = {flips.attrs['n_train_sequences']})"
    dropped = _dropped_runs(status)
    if dropped:
        title += f"\nnot drawn: {dropped}"
    if n_flagged or n_late:
        title += (
            f"\n{n_flagged} run(s) had their best evaluation last (red ×);\n"
            f"{n_late} their best in the last {LATE_FRACTION:.0%} of their budget"
        )
    fig.suptitle(title, fontsize=11)
    return fig


def _dropped_runs(status: xr.DataArray) -> str:
    """'k of n runs diverged, j missing' for the runs a panel cannot draw ('' if none)."""
    diverged, missing = int((status == 1).sum()), int((status == -1).sum())
    if not diverged and not missing:
        return ""
    parts = [f"{diverged} diverged"] * bool(diverged) + [f"{missing} missing"] * bool(missing)
    return f"{diverged + missing} of {status.size} runs: " + ", ".join(parts)


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
    """Seed 004 Fig. 1: the max-update over training and its growth rate against the theory.

    (a) ||u_n||_inf per step for every (beta1, beta2) of the first batch size, learning rate and
    seed, coloured by C(beta, gamma) (blue: B+, bounded; red: B-, predicted to grow), with the
    bound of eq. 5 dotted in the same colour. (b) the measured slope d log||u_n||_inf/dn at
    ``growth.attrs["step"]`` of every run against C, the predicted |C|/2 of B- dashed. (c) the
    runs' betas in seed 004's (beta, gamma) = (beta2, beta1) plane with the boundary B0 and, for
    betas along a curve, the whole normal curve. Betas are the aggregate's ``beta1`` / ``beta2``
    (dimensions of a product grid, coordinates on ``point`` for a curve; tied: beta1 = beta2).
    Non-finite max-updates (a run trained on past a blow-up) are left out of the drawing.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm

    first = {d: 0 for d in ("batch_size", "lr", "seed") if d in aggregate["max_update"].dims}
    updates = aggregate["max_update"].isel(first).astype(float)
    updates = updates.where(np.isfinite(updates) & (updates > 0))
    pair_dims = [d for d in ("beta1", "beta2", "point") if d in updates.dims]
    stacked = updates.stack(pair=pair_dims).transpose("pair", "train_step")
    template = stacked.isel(train_step=0, drop=True)
    constant = growth["stability_constant"].broadcast_like(updates.isel(train_step=0, drop=True))
    constant = constant.stack(pair=pair_dims).sel(pair=template["pair"])
    bound = growth["max_update_bound"].stack(pair=pair_dims).sel(pair=template["pair"])
    beta2 = np.asarray(stacked["beta2"].values, dtype=float)
    beta1 = np.asarray(stacked["beta1"].values, dtype=float) if "beta1" in stacked.coords else beta2
    # white at B0, full red at the most negative C and full blue at the largest: a curve's few
    # B- points stay visible next to many B+ ones
    c_all = growth["stability_constant"].values
    tiny = 1e-3 * (float(np.nanmax(np.abs(c_all))) or 1.0)
    norm = TwoSlopeNorm(
        0.0, min(float(np.nanmin(c_all)), -tiny), max(float(np.nanmax(c_all)), tiny)
    )
    colours = plt.get_cmap("coolwarm_r")
    fig, (ax_curves, ax_rates, ax_plane) = plt.subplots(
        1, 3, figsize=(17, 4.8), constrained_layout=True
    )

    steps = aggregate["train_step"].values
    labelled = stacked.sizes["pair"] <= 10  # a legend of 64 curves says nothing: the colour does
    for i in range(stacked.sizes["pair"]):
        c = float(constant.values[i])
        label = f"β1={beta1[i]:.4g}, β2={beta2[i]:.4g} (C={c:.2g})" if labelled else None
        ax_curves.plot(steps, stacked.values[i], color=colours(norm(c)), lw=1, label=label)
        ax_curves.plot(steps, bound.transpose("pair", ...).values[i], color=colours(norm(c)),
                       lw=0.6, ls=":")  # fmt: skip
    drawn = stacked.values[np.isfinite(stacked.values)]
    if drawn.size:  # the B- bounds grow like exp(n|C|/2): keep the measurements in view
        ax_curves.set_ylim(drawn.min() / 2, drawn.max() * 5)
    ax_curves.axvline(growth.attrs["step"], color="grey", ls=":", lw=1)
    ax_curves.set_yscale("log")
    ax_curves.set_xlabel("step n")
    ax_curves.set_ylabel("max-update ||θ_n − θ_{n−1}||∞ / η")
    ax_curves.set_title("(a) max-update; dotted: bound of eq. 5", fontsize=10)
    if labelled:
        ax_curves.legend(fontsize=6, ncol=2)

    measured, c_values = (
        array.values.ravel()
        for array in xr.broadcast(growth["measured"], growth["stability_constant"])
    )
    ax_rates.scatter(c_values, measured, c=c_values, cmap=colours, norm=norm, edgecolor="k", s=25)
    bound_c, bound_slope = (
        array.values.ravel() for array in (growth["stability_constant"], growth["bound_slope"])
    )
    ax_rates.scatter(bound_c, bound_slope, marker="x", color="grey", s=12, lw=0.8,
                     label="slope of eq. 5's bound (bias corrections included)")  # fmt: skip
    c_grid = np.linspace(min(float(np.nanmin(c_values)), 0.0), 0.0, 100)
    ax_rates.plot(c_grid, np.abs(c_grid) / 2, color="k", ls="--", label="predicted |C|/2 (B−)")
    ax_rates.axhline(0, color="grey", lw=0.6)
    ax_rates.axvline(0, color="grey", ls=":", lw=1, label="B0 (C = 0)")
    ax_rates.set_xlabel("C(β, γ)")
    ax_rates.set_ylabel(f"measured d log||u_n||∞/dn at n = {growth.attrs['step']}")
    ax_rates.set_title("(b) growth rate of the max-update", fontsize=10)
    ax_rates.legend(fontsize=8)

    ax_plane.plot(growth["boundary_beta2"], growth["boundary_beta1"], color="grey", lw=1.5,
                  label="B0 (C = 0)")  # fmt: skip
    if "curve_beta1" in growth:
        ax_plane.plot(growth["curve_beta2"], growth["curve_beta1"], color="k", lw=0.8,
                      label="normal curve")  # fmt: skip
    ax_plane.scatter(
        beta2, beta1, c=constant.values, cmap=colours, norm=norm, edgecolor="k", s=20, zorder=3
    )
    pad2 = 0.1 * max(float(np.ptp(beta2)), 1e-3)
    pad1 = 0.1 * max(float(np.ptp(beta1)), 1e-3)
    ax_plane.set_xlim(beta2.min() - pad2, min(1.0, beta2.max() + pad2))
    ax_plane.set_ylim(beta1.min() - pad1, min(1.0, beta1.max() + pad1))
    ax_plane.set_xlabel("β = β2 (second moment)")
    ax_plane.set_ylabel("γ = β1 (momentum)")
    ax_plane.set_title("(c) the runs' betas; B+ below B0, B− above", fontsize=10)
    ax_plane.legend(fontsize=8)
    fig.colorbar(ScalarMappable(norm, colours), ax=ax_plane, label="C(β, γ)")
    fig.suptitle(
        f"{aggregate.attrs.get('experiment', '')}: max-update against the stability region"
    )
    return fig


RULE_MARKERS = {
    "implicit_bias": "o",
    "token_half_life": "s",
    "sqrt_scaling": "^",
    "equal_betas": "D",
    "fixed_default": "x",
}


def competing_predictions(predictions: xr.Dataset) -> plt.Figure:
    """Each rule's beta and its regret per batch size, one column per learning rate.

    Top: the swept beta against the realised batch size N/m: the empirical best (black, with
    every rule's prediction as a marker at the beta the rule gives; hollow where it lies off the
    swept grid). Bottom: the regret (perplexity at the rule's grid beta minus at the best) with its
    2.5-97.5 % range over seed resamples; the anchor batch size of the transfer rules is shaded.
    """
    axis = predictions.attrs["axis"]
    predictions = predictions.squeeze(
        [
            d
            for d in predictions.dims
            if d not in ("rule", "batch_size", "lr") and predictions.sizes[d] == 1
        ]
    )
    lrs = predictions["lr"].values
    rules = list(predictions["rule"].values)
    labels = dict(
        zip(rules, predictions["rule"].attrs.get("labels", "").split(" | "), strict=False)
    )
    colours = dict(zip(rules, sns.color_palette("colorblind", len(rules)), strict=True))
    x = predictions["mean_batch_size"].values
    fig, axes = plt.subplots(
        2,
        len(lrs),
        figsize=(5.5 * len(lrs), 7.5),
        squeeze=False,
        sharex=True,
        constrained_layout=True,
    )
    grid = np.atleast_1d(predictions.attrs.get("swept_values", []))
    for column, lr in enumerate(lrs):
        cell = predictions.sel(lr=lr)
        top, bottom = axes[0, column], axes[1, column]
        top.plot(x, cell[f"best_{axis}"], "k-", lw=2, label="empirical best", zorder=3)
        offsets = np.linspace(-0.06, 0.06, len(rules))
        for offset, rule in zip(offsets, rules, strict=True):
            shift = x * 10**offset  # spread the markers of one batch size on the log axis
            beta = cell["rule_beta"].sel(rule=rule).values
            off = cell["off_grid"].sel(rule=rule).values.astype(bool)
            marker = RULE_MARKERS.get(rule, "o")
            filled = colours[rule]
            top.scatter(
                shift[~off],
                beta[~off],
                marker=marker,
                color=colours[rule],
                label=labels.get(rule, rule),
                zorder=4,
            )
            if off.any() and marker != "x":  # hollow: outside the swept range
                top.scatter(
                    shift[off],
                    np.clip(beta[off], 0, 1 - 1e-6),
                    marker=marker,
                    facecolors="none",
                    edgecolors=colours[rule],
                    zorder=4,
                )
            regret = cell["regret"].sel(rule=rule).values
            finite = np.isfinite(regret)
            errors = _interval(
                regret,
                cell["regret_low"].sel(rule=rule).values,
                cell["regret_high"].sel(rule=rule).values,
            )
            bottom.errorbar(
                shift[finite],
                regret[finite],
                yerr=errors[:, finite],
                fmt=marker,
                color=colours[rule],
                mfc=filled,
                capsize=3,
            )
            diverged = np.isposinf(regret)
            if diverged.any():
                bottom.scatter(
                    shift[diverged],
                    np.full(
                        diverged.sum(),
                        np.nanmax(np.where(finite, regret, np.nan), initial=1.0) * 1.1 + 0.1,
                    ),
                    marker=r"$\uparrow$",
                    color=colours[rule],
                    s=80,
                )
        anchors = x[cell["anchor"].max("rule").values.astype(bool)]
        for a in anchors:
            bottom.axvspan(a / 1.15, a * 1.15, color="0.9", zorder=0)
        bottom.axhline(0, color="k", lw=0.8)
        if grid.size:
            _one_minus_axis(top, "y", grid)
            shown = cell["rule_beta"].values
            shown = shown[np.isfinite(shown)]
            low = min(grid.min(), shown.min()) if shown.size else grid.min()
            # a third of a decade of 1 - beta beyond the extremes
            top.set_ylim(1 - (1 - low) * 10**0.3, 1 - (1 - max(grid.max(), shown.max())) / 10**0.3)
        top.set_title(f"lr = {lr:g}")
        top.set_ylabel(GREEK.get(axis, axis))
        bottom.set_ylabel("regret (val. perplexity)")
        bottom.set_xlabel("batch size N/m (sequences)")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xticks(x, [f"{v:.4g}" for v in x])
            ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(
        f"{predictions.attrs.get('experiment', '')}: competing predictions of the best "
        f"{GREEK.get(axis, axis)} ({predictions.attrs.get('n_seeds', '?')} seeds)\ngrey: anchor "
        "of the transfer rules; hollow: off the swept grid; ↑: the rule's value diverged"
    )
    return fig


def beta_grid(aggregate: xr.Dataset) -> plt.Figure:
    """Seed 003 Figs. 2/3: the (beta1, beta2) grid of min. val. perplexity, and the perplexity
    against the distance |log10(1 - beta1) - log10(1 - beta2)| from the diagonal beta1 = beta2.

    One row per (batch size, lr); seed means; diverged settings are blank in the map and left
    out of the scatter; the diagonal is outlined.
    """
    from adamnoise.optima import candidate_ppl

    ppl = candidate_ppl(aggregate)
    mean = ppl.mean("seed") if "seed" in ppl.dims else ppl
    cells = [(b, lr) for b in aggregate["batch_size"].values for lr in aggregate["lr"].values]
    fig, axes = plt.subplots(
        len(cells), 2, figsize=(11, 4.2 * len(cells)), squeeze=False, constrained_layout=True
    )
    beta1, beta2 = aggregate["beta1"].values, aggregate["beta2"].values
    for row, (b, lr) in enumerate(cells):
        table = mean.sel(batch_size=b, lr=lr).transpose("beta1", "beta2").values
        shown = np.where(np.isfinite(table), table, np.nan)
        heat, scatter = axes[row]
        image = heat.imshow(shown, origin="lower", cmap="viridis_r", aspect="auto")
        fig.colorbar(image, ax=heat, label="min. val. perplexity (seed mean)")
        heat.set_xticks(range(len(beta2)), [f"{v:g}" for v in beta2], rotation=45)
        heat.set_yticks(range(len(beta1)), [f"{v:g}" for v in beta1])
        heat.set_xlabel("β2")
        heat.set_ylabel("β1")
        for i, v1 in enumerate(beta1):
            for j, v2 in enumerate(beta2):
                if abs(v1 - v2) < 1e-12:
                    heat.add_patch(
                        plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="r", lw=2)
                    )
                if np.isfinite(table[i, j]):
                    heat.text(
                        j, i, f"{table[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w"
                    )
        distance = np.abs(_log_one_minus(beta1)[:, None] - _log_one_minus(beta2)[None, :])
        finite = np.isfinite(table)
        scatter.scatter(
            distance[finite],
            table[finite],
            c=np.broadcast_to(_log_one_minus(beta2)[None, :], table.shape)[finite],
            cmap="viridis",
        )
        scatter.set_xlabel("|log10(1 − β1) − log10(1 − β2)|  (0: β1 = β2)")
        scatter.set_ylabel("min. val. perplexity (seed mean)")
        heat.set_title(f"b = {b}, lr = {lr:g}: diagonal outlined")
        scatter.set_title("colour: β2 (darker = closer to 1)")
    fig.suptitle(f"{aggregate.attrs.get('experiment', '')}: is β1 = β2 near-optimal? (seed 003)")
    return fig


def optimizer_gap(gap: xr.Dataset) -> plt.Figure:
    """Seed 002 Fig. 1: tuned perplexity per experiment against batch size, and the gap in
    validation loss to the reference experiment (positive: worse than the reference)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    colours = sns.color_palette("colorblind", gap.sizes["experiment"])
    x = gap["batch_size"].values
    for colour, name in zip(colours, gap["experiment"].values, strict=True):
        row = gap.sel(experiment=name)
        label = f"{name} ({row['optimizer'].item()})"
        left.errorbar(
            x,
            row["tuned_min_val_ppl"],
            yerr=np.nan_to_num(row["tuned_std"].values),
            marker="o",
            capsize=3,
            color=colour,
            label=label,
        )
        if name != gap.attrs["reference"]:
            right.plot(x, row["gap_loss"], marker="o", color=colour, label=label)
    right.axhline(0, color="k", lw=0.8)
    for ax in (left, right):
        ax.set_xscale("log")
        _plain_log_labels(ax.xaxis)
        ax.set_xlabel("batch size (sequences)")
        ax.legend(fontsize=8)
    left.set_ylabel("tuned min. val. perplexity (±1 s.d. over seeds)")
    right.set_ylabel(f"val. loss − {gap.attrs['reference']}'s (nats/token)")
    left.set_title("each optimiser tuned per batch size (betas, lr)")
    right.set_title("gap to the reference")
    return fig


# ---------------------------------------------------------------------------------------------
# Theory figures (notebooks/theory_figures.ipynb): the theory grid of `adamnoise theory grid`
# ---------------------------------------------------------------------------------------------

LAMBDAS_BETA2 = (0.0, 0.25, 0.45, 0.49, 0.51, 0.55, 1.0, 2.0)
LAMBDAS_BETA1 = (0.0, 0.5, 0.9, 1.0, 1.1, 1.5, 3.0)


def _relative_curves(ax, curves, along: str, reference: float, lambdas) -> None:
    """C_total against ``along`` minus its value at ``reference``, one line per lambda."""
    cmap = plt.get_cmap("coolwarm")
    for i, lam in enumerate(lambdas):
        curve = curves.sel(noise_ratio=lam)
        change = curve - curve.sel({along: reference}, method="nearest")
        ax.plot(curves[along], change, color=cmap(i / (len(lambdas) - 1)), label=f"λ = {lam:g}")
    # C_total spans orders of magnitude across lambda: symmetric log around the reference
    ax.set_yscale("symlog", linthresh=1.0)
    ax.axhline(0, color="k", lw=0.5)


def c_total_beta2(grid: xr.Dataset, lambdas=LAMBDAS_BETA2) -> plt.Figure:
    """Seed 000 Fig. 1 style: C_total against beta2 relative to beta2 = 0.9, beta1 = 0.9 / 0.99."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, beta1 in zip(axes, (0.9, 0.99), strict=True):
        curves = grid.c_total.sel(beta1=beta1, method="nearest").sel(noise_ratio=list(lambdas))
        _relative_curves(ax, curves, "beta2", 0.9, lambdas)
        ax.set_xlabel("β2")
        ax.set_ylabel("C_total(β1, β2, λ) − C_total(β1, 0.9, λ)")
        ax.set_title(f"β1 = {beta1}")
    axes[0].legend(fontsize=8, ncol=2)
    fig.suptitle("Seed 000: the β2 dependence of C_total reverses around λ ≈ 0.5")
    return fig


def c_total_beta1(grid: xr.Dataset, lambdas=LAMBDAS_BETA1) -> plt.Figure:
    """Seed 000 Lemma 3.6: C_total against beta1 at beta2 = 0.999, relative to beta1 = 0.9."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    curves = grid.c_total.sel(beta2=0.999, method="nearest").sel(noise_ratio=list(lambdas))
    _relative_curves(ax, curves, "beta1", 0.9, lambdas)
    ax.set_xlabel("β1")
    ax.set_ylabel("C_total(β1, 0.999, λ) − C_total(0.9, 0.999, λ)")
    ax.set_title("Seed 000: the β1 dependence reverses around λ ≈ 1")
    ax.legend(fontsize=8)
    return fig


def _regions(ax, grid: xr.Dataset, prefix: str, level_label: str) -> None:
    """B- / B0 / B+ of one window of the theory grid (``square_`` or ``zoom_``), the B0 line and
    the level curve through the defaults."""
    from matplotlib.colors import ListedColormap

    beta2, beta1 = grid[f"{prefix}beta2"], grid[f"{prefix}beta1"]
    region = grid["stability_region" if prefix == "square_" else "zoom_stability_region"]
    constant = grid["stability_constant" if prefix == "square_" else "zoom_stability_constant"]
    cmap = ListedColormap(["#f4a6a6", "#dddddd", "#a6d4f4"])  # B-, B0, B+
    ax.pcolormesh(beta2, beta1, region, cmap=cmap, vmin=-1.5, vmax=1.5, shading="auto")
    ax.contour(beta2, beta1, constant, levels=[0.0], colors="k")
    ax.plot(grid.level_curve_beta2, grid.level_curve_beta1, "k--", lw=1, label=level_label)


def stability_regions(grid: xr.Dataset) -> plt.Figure:
    """Seed 004 Fig. 1c: B+ / B- over the unit square, and near the defaults with the level
    curve and the normal-curve points through (beta2, beta1) = (0.999, 0.9), coloured by C."""
    import json

    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(12, 5.2), constrained_layout=True)
    point = (grid.attrs["curve_point_beta2"], grid.attrs["curve_point_beta1"])
    _regions(whole, grid, "square_", "level curve through default")
    whole.plot(*point, "k*", ms=10)
    whole.set_title("B+ (blue) and B− (red) over the unit square")
    whole.text(0.6, 0.2, "B+", fontsize=14)
    whole.text(0.1, 0.8, "B−", fontsize=14)
    whole.legend(loc="lower right", fontsize=8)

    _regions(zoom, grid, "zoom_", "level curve C = C(0.999, 0.9)")
    points = zoom.scatter(
        grid.normal_curve_beta2,
        grid.normal_curve_beta1,
        c=grid.normal_curve_c,
        cmap="viridis",
        s=14,
        zorder=3,
        label=f"normal curve, {grid.sizes['normal_point']} points",
    )
    zoom.plot(*point, "r*", ms=12, zorder=4, label="(β, γ) = (0.999, 0.9)")
    crossing = json.loads(grid.attrs["normal_curve_b0_crossing"])
    if crossing:
        zoom.plot(crossing[1], crossing[0], "kx", ms=9, label="normal curve meets B0")
    zoom.set_xlim(float(grid.zoom_beta2.min()), float(grid.zoom_beta2.max()))
    zoom.set_ylim(float(grid.zoom_beta1.min()), float(grid.zoom_beta1.max()))
    zoom.set_title("Seed 004 Fig. 1c")
    fig.colorbar(points, ax=zoom, label="C(β, γ)")
    zoom.legend(loc="lower left", fontsize=8)
    for ax in (whole, zoom):
        ax.set_xlabel("β2 (seed 004: β)")
        ax.set_ylabel("β1 (seed 004: γ)")
    return fig


def normal_curve_constant(grid: xr.Dataset) -> plt.Figure:
    """C and the predicted growth exponent |C|/2 along the normal curve (seed 004 Fig. 1b)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    ax.plot(grid.normal_point, grid.normal_curve_c, "o-", ms=3, label="C along the normal curve")
    ax.plot(
        grid.normal_point,
        grid.normal_curve_growth_exponent,
        "s-",
        ms=3,
        label="predicted growth |C|/2 (B− only)",
    )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("point along the normal curve (0 = (0.999, 0.9))")
    ax.legend()
    return fig
