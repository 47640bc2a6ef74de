"""``adamnoise predict-flips``, ``optima``, ``predictions``, ``growth``, ``diagonal-gap``,
``optimizer-gap``: the analysis stage's commands (the aggregate held against theory). They write
every number a figure shows; the notebooks only load and plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adamnoise.cli import add_command, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    flips = add_command(subparsers, "predict-flips", _predict_flips)
    flips.add_argument("aggregate", type=Path, help="netCDF written by `adamnoise aggregate`")
    flips.add_argument("--out", type=Path, required=True, help="netCDF file to write")

    optima = add_command(subparsers, "optima", _optima)
    _sweep_arguments(optima, csv_help="Table 1 as CSV")

    predictions = add_command(subparsers, "predictions", _predictions)
    _sweep_arguments(predictions, csv_help="regret table as CSV")
    predictions.add_argument(
        "--summary", type=Path, default=None, help="also the per-rule summary of the regrets (CSV)"
    )

    growth = add_command(subparsers, "growth", _growth)
    growth.add_argument("aggregate", type=Path, help="netCDF written by `adamnoise aggregate`")
    growth.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    growth.add_argument("--step", type=int, default=500, help="step n of the slope (500)")
    growth.add_argument("--half-window", type=int, default=5, help="steps either side (5)")

    diagonal = add_command(subparsers, "diagonal-gap", _diagonal_gap)
    diagonal.add_argument("aggregate", type=Path, help="netCDF written by `adamnoise aggregate`")
    diagonal.add_argument("--csv", type=Path, required=True, help="table to write (CSV)")

    gap = add_command(subparsers, "optimizer-gap", _optimizer_gap)
    gap.add_argument("aggregates", type=Path, nargs="+", help="aggregates; the first: reference")
    gap.add_argument("--out", type=Path, required=True, help="netCDF file to write")


def _sweep_arguments(parser: argparse.ArgumentParser, csv_help: str) -> None:
    """The arguments of the analyses of one beta sweep (optima, predictions)."""
    parser.add_argument("aggregate", type=Path, help="netCDF written by `adamnoise aggregate`")
    parser.add_argument("--flips", type=Path, required=True, help="predict-flips output")
    parser.add_argument("--axis", choices=("beta2", "beta1"), required=True, help="swept beta")
    parser.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    parser.add_argument("--csv", type=Path, required=True, help=csv_help)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")


def _predict_flips(args: argparse.Namespace) -> int:
    """predicted flip batch sizes (seed 000 §3.3) from an aggregated experiment"""
    import xarray as xr

    from adamnoise.analysis import predict_flips
    from adamnoise.io import save_netcdf

    with xr.open_dataset(args.aggregate) as aggregate:
        try:
            flips = predict_flips(aggregate.load())
        except ValueError as error:
            return fail(f"adamnoise: {args.aggregate}: {error}")
    save_netcdf(flips, args.out)
    return 0


def _optima(args: argparse.Namespace) -> int:
    """best beta per (batch size, lr) with seed statistics: seed 000 Table 1 (CSV + netCDF)

    Seed means (diverged seeds disqualify a beta), bootstrap intervals of the best beta, the slope
    near beta = 1 against the predicted sign, Delta against the default beta, and seed 000's printed
    Table 1 beside it.
    """
    import xarray as xr

    from adamnoise.io import save_netcdf, write_text

    aggregate = xr.load_dataset(args.aggregate)
    flips = xr.load_dataset(args.flips)
    if args.axis not in aggregate.dims:
        return fail(f"adamnoise: {args.aggregate} has no {args.axis} axis (tied betas?)")
    optima, csv = optima_outputs(aggregate, flips, args.axis, args.resamples)
    save_netcdf(optima, args.out)
    write_text(args.csv, csv)
    print(f"wrote {args.out} and {args.csv}", file=sys.stderr)
    return 0


def optima_outputs(aggregate, flips, axis: str, resamples: int = 2000):
    """Table 1 of an aggregate: the dataset and its CSV text (also `adamnoise verify`'s)."""
    import json

    from adamnoise import provenance
    from adamnoise.optima import sweep_optima, table1, theory_applies
    from adamnoise.published import seed000_table1

    config = json.loads(aggregate.attrs["experiment_config"])
    reason = theory_applies(config, axis)
    lam = flips["noise_ratio"] if reason is None else None
    optima = sweep_optima(aggregate, axis, noise_ratio=lam, n_resamples=resamples)
    optima.attrs.update(
        experiment=aggregate.attrs.get("experiment", ""),
        experiment_config=aggregate.attrs["experiment_config"],
        run_git_commits=aggregate.attrs.get("run_git_commits", "[]"),
        theory_applies=int(reason is None),
        theory_reason=reason or "",
    )
    optima.attrs.update(provenance.as_attrs(provenance.collect()))
    published = (
        seed000_table1(int(aggregate.attrs["n_train_sequences"]))
        if axis == "beta2" and config.get("dataset") == "wikitext2"
        else None
    )
    return optima, table1(optima, published).to_csv(index=False, float_format="%.6g")


def _predictions(args: argparse.Namespace) -> int:
    """the beta each competing rule predicts per (batch size, lr) and its regret

    Seed 000's lambda rule, the token half-life rule, the square-root SDE rule, beta1 = beta2 and
    the default, each held against the empirical best of a sweep (regret with seed-bootstrap
    intervals; see adamnoise.predictions).
    """
    import xarray as xr

    from adamnoise.io import save_netcdf, write_text

    aggregate = xr.load_dataset(args.aggregate)
    flips = xr.load_dataset(args.flips)
    if args.axis not in aggregate.dims or aggregate.sizes[args.axis] < 2:
        return fail(f"adamnoise: {args.aggregate} does not sweep {args.axis}")
    from adamnoise.predictions import regret_summary

    predictions, csv = predictions_outputs(aggregate, flips, args.axis, args.resamples)
    save_netcdf(predictions, args.out)
    write_text(args.csv, csv)
    print(f"wrote {args.out} and {args.csv}", file=sys.stderr)
    if args.summary is not None:
        summary = regret_summary(predictions).to_csv(index=False, float_format="%.6g")
        write_text(args.summary, summary)
        print(f"wrote {args.summary}", file=sys.stderr)
    return 0


def predictions_outputs(aggregate, flips, axis: str, resamples: int = 2000):
    """The competing rules' predictions: the dataset and its CSV text (also `verify`'s)."""
    from adamnoise import provenance
    from adamnoise.predictions import competing_predictions, regret_table

    predictions = competing_predictions(aggregate, flips, axis, n_resamples=resamples)
    predictions.attrs.update(
        experiment_config=aggregate.attrs["experiment_config"],
        run_git_commits=aggregate.attrs.get("run_git_commits", "[]"),
    )
    predictions.attrs.update(provenance.as_attrs(provenance.collect()))
    return predictions, regret_table(predictions).to_csv(index=False, float_format="%.6g")


def growth_outputs(aggregate, step: int = 500, half_window: int = 5):
    """The max-update growth of an aggregate's runs, measured where they reach (``growth_window``),
    with the summary of the runs in B- (``growth_summary``) as attributes ``summary_<key>``."""
    from adamnoise import provenance
    from adamnoise.analysis import growth_summary, growth_window, max_update_growth

    step, half_window = growth_window(aggregate.sizes["train_step"], step, half_window)
    growth = max_update_growth(aggregate, step=step, half_window=half_window)
    growth.attrs.update(
        {f"summary_{key}": value for key, value in growth_summary(growth, aggregate).items()}
    )
    growth.attrs["experiment"] = aggregate.attrs.get("experiment", "")
    growth.attrs.update(provenance.as_attrs(provenance.collect()))
    return growth


def _growth(args: argparse.Namespace) -> int:
    """max-update growth of every run against the stability region (seed 004 Fig. 1)

    The slope of log ||u_n||_inf at n = STEP from n = STEP -+ HALF_WINDOW (seed 004 App. H: 500 from
    495 and 505; runs shorter than that are measured at their middle), the predicted |C|/2, eq. 5's
    bound and the region of every run (analysis.max_update_growth); the summary of the runs in B- is
    stored as attributes.
    """
    import xarray as xr

    from adamnoise.io import save_netcdf

    aggregate = xr.load_dataset(args.aggregate)
    if "max_update" not in aggregate or "train_step" not in aggregate.dims:
        return fail(f"adamnoise: {args.aggregate} has no max_update per train_step")
    try:
        growth = growth_outputs(aggregate, args.step, args.half_window)
    except ValueError as error:
        return fail(f"adamnoise: {args.aggregate}: {error}")
    save_netcdf(growth, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _diagonal_gap(args: argparse.Namespace) -> int:
    """is beta1 = beta2 near-optimal? the best diagonal setting against the best of a (beta1, beta2)
    grid (seed 003)
    """
    import xarray as xr

    from adamnoise.io import write_text
    from adamnoise.predictions import diagonal_gap

    aggregate = xr.load_dataset(args.aggregate)
    try:
        table = diagonal_gap(aggregate)
    except ValueError as error:
        return fail(f"adamnoise: {args.aggregate}: {error}")
    write_text(args.csv, table.to_csv(index=False, float_format="%.6g"))
    print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def _optimizer_gap(args: argparse.Namespace) -> int:
    """tuned optimum per batch size of two or more experiments and the gap to the first (seed 002
    Fig. 1)
    """
    import json

    import xarray as xr

    from adamnoise import provenance
    from adamnoise.comparison import optimizer_gap
    from adamnoise.io import save_netcdf

    aggregates = {}
    for path in args.aggregates:
        aggregate = xr.load_dataset(path)
        name = str(aggregate.attrs.get("experiment", path.parent.name))
        if name in aggregates:
            return fail(f"adamnoise: experiment {name!r} given twice", 2)
        aggregates[name] = aggregate
    try:
        gap = optimizer_gap(aggregates)
    except ValueError as error:
        return fail(f"adamnoise optimizer-gap: {error}")
    gap.attrs["aggregates"] = json.dumps([str(path) for path in args.aggregates])
    gap.attrs.update(provenance.as_attrs(provenance.collect()))
    save_netcdf(gap, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
