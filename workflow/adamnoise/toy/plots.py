"""Figures of the toy quadratics (seed 002 Fig. 17 and 21, seed 003 Fig. 6). Nothing here computes
beyond means and standard deviations over runs; the notebooks call these with loaded datasets.

Both seeds draw "mean and 2-sigma" bands over runs. The losses here spread over orders of magnitude
between runs (a right-skewed, roughly log-normal spread), so that mean − 2σ is negative and an
arithmetic band cannot be drawn on the log axes the figures need. The lines and bands are therefore
the mean and ±2σ of log10 L over runs (a geometric mean with a multiplicative band). The tables
(``quadratic.gap_table``, ``quadratic.sign_descent_table``) report the arithmetic mean, which is
also what the tuning minimises.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import seaborn as sns
import xarray as xr

OPTIMIZER_LABELS = {
    "sgd": "SGD (momentum)",
    "adam": "Adam",
    "sgd_momentum": "SGD with momentum",
    "signum": "Signum",
    "adam_equal_betas": "Adam, β1 = β2",
}
PROTOCOL_TITLES = {
    "tuned_at_homogeneous_b1": "lr tuned at homogeneous B = 1 (Fig. 17)",
    "tuned_per_batch_size": "learning rate tuned per batch size",
}


def _finite(values):
    """inf (a diverged run in a mean) as NaN, which a line skips, instead of breaking the axes."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _log_band(ax, x, runs: xr.DataArray, dim: str = "run", **style) -> None:
    """10^(mean ± 2σ of log10 over ``dim``): the line and its band on a log y-axis."""
    logs = np.log10(_finite(runs.values))
    axis = runs.get_axis_num(dim)
    centre = np.mean(logs, axis=axis)
    two_sigma = 2 * np.std(logs, axis=axis, ddof=1)
    (line,) = ax.plot(x, 10**centre, **style)
    ax.fill_between(
        x,
        10 ** (centre - two_sigma),
        10 ** (centre + two_sigma),
        color=line.get_color(),
        alpha=0.2,
        lw=0,
    )


def quadratic_gap(dataset: xr.Dataset) -> plt.Figure:
    """Seed 002 Fig. 17 (and Fig. 21): final loss against batch size, SGD and Adam, both Hessians.

    Top row: the two Hessians (|H_ij| on a log colour scale; seed 002 Fig. 21). Then one row per
    learning-rate protocol, one column per Hessian: the final loss L(w_T) against the batch size
    (log-log), mean and 2σ band of log10 L over runs; red circles flag a rate on the edge of its
    grid.
    """
    protocols = list(dataset["protocol"].values)
    hessians = list(dataset["hessian"].values)
    optimizers = list(dataset["optimizer"].values)
    colours = dict(zip(optimizers, sns.color_palette("colorblind", len(optimizers)), strict=True))
    batch_sizes = dataset["batch_size"].values
    fig, axes = plt.subplots(
        1 + len(protocols),
        len(hessians),
        figsize=(5.5 * len(hessians), 3.6 * (1 + len(protocols))),
        constrained_layout=True,
        squeeze=False,
    )

    matrices = np.abs(dataset["hessian_matrix"].values)
    vmin = matrices[matrices > 0].min()
    for column, hessian in enumerate(hessians):
        ax = axes[0, column]
        matrix = np.abs(dataset["hessian_matrix"].sel(hessian=hessian).values)
        image = ax.imshow(
            np.where(matrix > 0, matrix, np.nan),
            norm=plt.matplotlib.colors.LogNorm(vmin=vmin, vmax=matrices.max()),
            cmap="viridis",
        )
        eigenvalues = dataset["block_eigenvalues"].sel(hessian=hessian).values
        blocks = ", ".join("{" + ", ".join(f"{e:g}" for e in block) + "}" for block in eigenvalues)
        ax.set_title(f"{hessian} |H_ij|; blocks {blocks}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0, :].tolist(), shrink=0.8, label="|H_ij|")

    final_loss = dataset["final_loss"]
    for row, protocol in enumerate(protocols, start=1):
        for column, hessian in enumerate(hessians):
            ax = axes[row, column]
            for optimizer in optimizers:
                runs = final_loss.sel(protocol=protocol, hessian=hessian, optimizer=optimizer)
                _log_band(
                    ax,
                    batch_sizes,
                    runs,
                    color=colours[optimizer],
                    marker="o",
                    label=OPTIMIZER_LABELS.get(optimizer, optimizer),
                )
                edge = (
                    dataset["lr_on_grid_edge"]
                    .sel(protocol=protocol, hessian=hessian, optimizer=optimizer)
                    .values
                )
                if edge.any():
                    centre = 10 ** np.log10(_finite(runs.values)).mean(runs.get_axis_num("run"))
                    ax.scatter(
                        batch_sizes[edge], centre[edge], s=90, facecolor="none", edgecolor="red"
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(batch_sizes)
            ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(mticker.NullFormatter())
            ax.set_xlabel("batch size B (rows of X out of 9)")
            ax.set_ylabel("final loss L(w_T)")
            ax.set_title(f"{hessian}: {PROTOCOL_TITLES.get(protocol, protocol)}", fontsize=9)
            ax.legend(fontsize=8)
    fig.suptitle(
        f"Seed 002 Fig. 17: Adam-SGD gap against batch size ({dataset.attrs.get('steps')} steps, "
        f"geometric mean ± 2σ (log10) over {dataset.sizes['run']} runs)"
    )
    return fig


def quadratic_sign_descent(dataset: xr.Dataset) -> plt.Figure:
    """Seed 003 Fig. 6: tuned SGD with momentum, Signum and Adam (β1 = β2) on the heterogeneous
    quadratic, and Adam's variance estimate per block.

    Left column, top: loss L(w_t) against the step at each optimiser's tuned (β, lr), mean and 2σ
    band of log10 L over runs; bottom: Adam's variance estimate v_t − m_t² averaged over each
    block's coordinates (seed 003 Fig. 6, second row). Right column, top: the run-mean final loss
    against the learning rate at the tuned β (the tuning curve; the tuned rate circled); bottom:
    the best run-mean final loss at each β.
    """
    optimizers = list(dataset["optimizer"].values)
    colours = dict(zip(optimizers, sns.color_palette("colorblind", len(optimizers)), strict=True))
    steps = dataset["step"].values
    fig, axes = plt.subplots(
        2, 2, figsize=(12, 8), constrained_layout=True, gridspec_kw={"width_ratios": [1.6, 1]}
    )
    (ax_loss, ax_tuning), (ax_variance, ax_beta) = axes

    loss = dataset["loss"]
    for optimizer in optimizers:
        label = (
            f"{OPTIMIZER_LABELS.get(optimizer, optimizer)} (β = "
            f"{float(dataset['tuned_beta'].sel(optimizer=optimizer)):g}, lr = "
            f"{float(dataset['tuned_lr'].sel(optimizer=optimizer)):.3g})"
        )
        _log_band(
            ax_loss, steps, loss.sel(optimizer=optimizer), color=colours[optimizer], label=label
        )
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step t")
    ax_loss.set_ylabel("loss L(w_t)")
    ax_loss.set_title(
        f"heterogeneous quadratic, batch size {dataset.attrs.get('batch_size')} of 9, "
        f"geometric mean ± 2σ (log10) over {dataset.sizes['run']} runs",
        fontsize=9,
    )
    ax_loss.legend(fontsize=8)

    variance = dataset["adam_block_variance"].isel(step=slice(1, None))
    block_colours = sns.color_palette("viridis", dataset.sizes["block"])
    eigenvalues = dataset["block_eigenvalues"].isel(hessian=0).values
    for block in dataset["block"].values:
        label = f"block {block}: eigenvalues {', '.join(f'{e:g}' for e in eigenvalues[block])}"
        _log_band(
            ax_variance,
            variance["step"].values,
            variance.sel(block=block),
            color=block_colours[block],
            label=label,
        )
    ax_variance.set_yscale("log")
    ax_variance.set_xlabel("step t")
    ax_variance.set_ylabel("Adam's variance estimate v_t − m_t²")
    ax_variance.set_title("Adam (β1 = β2): variance estimate, mean over each block", fontsize=9)
    ax_variance.legend(fontsize=8)

    tuning = dataset["tuning_loss"]
    for optimizer in optimizers:
        beta = dataset["tuned_beta"].sel(optimizer=optimizer)
        curve = _finite(tuning.sel(optimizer=optimizer, beta=beta).values)
        lrs = dataset["lr_grid"].sel(optimizer=optimizer).values
        ax_tuning.plot(lrs, curve, marker=".", color=colours[optimizer])
        best = int(np.argmin(np.abs(lrs - float(dataset["tuned_lr"].sel(optimizer=optimizer)))))
        ax_tuning.scatter(lrs[best], curve[best], s=80, facecolor="none", edgecolor="k")
        ax_beta.plot(
            dataset["beta"].values,
            _finite(tuning.sel(optimizer=optimizer).min("lr_index").values),
            marker="o",
            color=colours[optimizer],
            label=OPTIMIZER_LABELS.get(optimizer, optimizer),
        )
    ax_tuning.set_xscale("log")
    ax_tuning.set_yscale("log")
    # rates that blew up reach 1e200: show up to ten times the initial loss
    ax_tuning.set_ylim(top=10 * float(dataset["initial_loss"].max()))
    ax_tuning.set_xlabel("peak learning rate")
    ax_tuning.set_ylabel("mean final loss (at the tuned β)")
    ax_tuning.set_title("tuning curves (tuned rate circled; diverged rates left out)", fontsize=9)
    ax_beta.set_yscale("log")
    ax_beta.set_xlabel("momentum β (Adam: β1 = β2)")
    ax_beta.set_ylabel("mean final loss at the best rate")
    ax_beta.set_title("best final loss at each β of the grid", fontsize=9)
    ax_beta.legend(fontsize=8)
    fig.suptitle("Seed 003 Fig. 6: SGD with momentum, Signum and Adam with β1 = β2")
    return fig
