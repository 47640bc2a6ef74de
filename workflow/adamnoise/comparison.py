"""Figures across experiments: the config's ``comparisons:`` and what they compute.

A comparison names a comparison figure (``adamnoise.figures``, scope ``comparison``) and two or
more experiments, the first being the reference::

    comparisons:
      adam-sgd-gap:
        figure: optimizer_gap
        experiments: [gap-adam, gap-sgd]

Seed 002 (Fig. 1, Sec. 2.2) compares optimisers each tuned per batch size: ``tuned_optimum``
takes, per batch size, the best seed-mean minimal validation perplexity over every other grid
axis (betas, lr) among settings all of whose seeds completed, and ``optimizer_gap`` sets the
experiments side by side with the gap in validation loss (nats per token) to the reference.

The minimum over settings is optimistic, and more so for the experiment with more settings
(Adam: betas x lr; SGD: momentum x lr): ``n_candidates`` says how many each minimum was taken
over. With one seed (seed 002's protocol) there is no held-out estimate to correct it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from adamnoise.errors import ConfigError
from adamnoise.figures import COMPARISON_FIGURES


@dataclass(frozen=True)
class Comparison:
    name: str
    figure: str
    experiments: tuple[str, ...]
    description: str = ""


def load_comparisons(config: dict[str, Any], experiments) -> dict[str, Comparison]:
    """The comparisons of a schema-valid config (two or more distinct experiments each: the
    schema's), checked against the figures and the defined experiments."""
    comparisons = {}
    for name, entry in (config.get("comparisons") or {}).items():
        key = f"comparisons.{name}"
        figure = entry.get("figure")
        if figure not in COMPARISON_FIGURES:
            known = ", ".join(COMPARISON_FIGURES)
            raise ConfigError(f"{key}.figure", f"{figure!r} is not a comparison figure ({known})")
        names = tuple(entry["experiments"])
        unknown = [n for n in names if n not in experiments]
        if unknown:
            raise ConfigError(f"{key}.experiments", f"no experiment named {', '.join(unknown)}")
        comparisons[name] = Comparison(name, figure, names, entry.get("description", ""))
    return comparisons


def tuned_optimum(aggregate: xr.Dataset) -> xr.Dataset:
    """Per batch size, the setting (every axis but seed) with the lowest seed-mean min. val. ppl.

    A setting is a candidate only if all its seeds completed (as in ``adamnoise.optima``).
    Returns the best seed mean, the seed standard deviation there, the chosen setting's
    coordinates (``best_<axis>``) and how many settings were candidates.
    """
    ppl = aggregate["min_val_ppl"].where(aggregate["status"] == 0)
    settings = [d for d in ppl.dims if d not in ("batch_size", "seed")]
    stacked = ppl.stack(setting=settings).transpose("batch_size", "setting", "seed")
    values = stacked.values
    complete = np.isfinite(values).all(axis=-1)
    with np.errstate(invalid="ignore"):
        mean = np.where(complete, values.mean(axis=-1), np.inf)
    best = mean.argmin(axis=-1)
    has_best = np.isfinite(mean.min(axis=-1))
    rows = np.arange(len(best))
    chosen = values[rows, best]  # [B, S]
    std = chosen.std(axis=-1, ddof=1) if chosen.shape[-1] > 1 else np.full(len(best), np.nan)
    result = xr.Dataset(
        {
            "tuned_min_val_ppl": (
                "batch_size",
                np.where(has_best, mean[rows, best], np.nan),
                {"units": "perplexity", "description": "best seed mean over the settings"},
            ),
            "tuned_std": (
                "batch_size",
                np.where(has_best, std, np.nan),
                {"units": "perplexity", "description": "seed standard deviation at the best"},
            ),
            "n_candidates": ("batch_size", complete.sum(axis=-1)),
        },
        coords={"batch_size": aggregate["batch_size"].values},
    )
    index = stacked["setting"].to_index()
    for level, name in enumerate(settings):
        chosen_values = np.asarray(index.get_level_values(level))[best]
        result[f"best_{name}"] = ("batch_size", np.where(has_best, chosen_values, np.nan))
    if "mean_batch_size" in aggregate.coords:
        result = result.assign_coords(mean_batch_size=aggregate["mean_batch_size"])
    return result


def optimizer_name(aggregate: xr.Dataset) -> str:
    """The optimiser of an aggregated experiment (from its stored config)."""
    config = json.loads(aggregate.attrs.get("experiment_config", "{}"))
    return str(config.get("optimizer", {}).get("name", "?"))


def optimizer_gap(aggregates: dict[str, xr.Dataset]) -> xr.Dataset:
    """The tuned optimum of every experiment (the first is the reference) and the gap to it.

    ``gap_loss`` = log(ppl) - log(ppl of the reference): the difference in validation loss,
    nats per token, seed 002's y axis. Batch sizes are those of the reference experiment; an
    experiment without a batch size is NaN there.
    """
    names = list(aggregates)
    if len(names) < 2:
        raise ValueError("optimizer_gap needs two or more experiments")
    tuned = [tuned_optimum(aggregates[name]) for name in names]
    batch_sizes = tuned[0]["batch_size"].values
    ppl = np.stack([t["tuned_min_val_ppl"].reindex(batch_size=batch_sizes).values for t in tuned])
    std = np.stack([t["tuned_std"].reindex(batch_size=batch_sizes).values for t in tuned])
    best_lr = np.stack(
        [
            t["best_lr"].reindex(batch_size=batch_sizes).values
            if "best_lr" in t
            else np.full(len(batch_sizes), np.nan)
            for t in tuned
        ]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log(ppl) - np.log(ppl[:1])
    optimizers = [optimizer_name(aggregates[n]) for n in names]
    return xr.Dataset(
        {
            "tuned_min_val_ppl": (("experiment", "batch_size"), ppl, {"units": "perplexity"}),
            "tuned_std": (("experiment", "batch_size"), std, {"units": "perplexity"}),
            "best_lr": (("experiment", "batch_size"), best_lr),
            "gap_loss": (
                ("experiment", "batch_size"),
                gap,
                {"units": "nats/token", "description": f"validation loss minus {names[0]}'s"},
            ),
        },
        coords={
            "experiment": names,
            "batch_size": batch_sizes,
            "optimizer": ("experiment", optimizers),
        },
        attrs={"reference": names[0]},
    )
