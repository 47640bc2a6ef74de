"""``adamnoise aggregate``, ``predict-flips``, ``optima``: the post-training stages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    aggregate = subparsers.add_parser(
        "aggregate",
        help="stack the run results of one experiment into a netCDF dataset",
        description="Missing runs are NaN in the dataset and are listed on stderr.",
    )
    aggregate.add_argument(
        "config", type=Path, help="workflow config (YAML) defining the experiment"
    )
    aggregate.add_argument("experiment", help="experiment name")
    aggregate.add_argument("--runs-dir", type=Path, required=True, help="holds <run_id>/result.nc")
    aggregate.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    aggregate.set_defaults(func=_aggregate)

    flips = subparsers.add_parser(
        "predict-flips",
        help="predicted flip batch sizes (seed 000 §3.3) from an aggregated experiment",
    )
    flips.add_argument("aggregate", type=Path, help="netCDF written by `adamnoise aggregate`")
    flips.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    flips.set_defaults(func=_predict_flips)

    optima = subparsers.add_parser(
        "optima",
        help="best beta per (batch size, lr) with seed statistics: seed 000 Table 1 (CSV + netCDF)",
        description="Seed means (diverged seeds disqualify a beta), bootstrap intervals of the "
        "best beta, the slope near beta = 1 against the predicted sign, Delta against the default "
        "beta, and seed 000's printed Table 1 beside it.",
    )
    optima.add_argument("aggregate", type=Path, help="netCDF written by `adamnoise aggregate`")
    optima.add_argument("--flips", type=Path, required=True, help="predict-flips output")
    optima.add_argument("--axis", choices=("beta2", "beta1"), required=True, help="swept beta")
    optima.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    optima.add_argument("--csv", type=Path, required=True, help="Table 1 as CSV")
    optima.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    optima.set_defaults(func=_optima)


def _load_experiment(config_path: Path, name: str):
    import yaml

    from adamnoise.experiment import ConfigError, load_experiments

    config = yaml.safe_load(config_path.read_text())
    try:
        experiments = load_experiments(config)
    except ConfigError as error:
        raise SystemExit(f"adamnoise: invalid config {config_path}: {error}") from None
    if name not in experiments:
        raise SystemExit(f"adamnoise: {config_path} defines no experiment {name!r}")
    return experiments[name]


def _aggregate(args: argparse.Namespace) -> int:
    from adamnoise.aggregate import aggregate_directory
    from adamnoise.io import save_netcdf

    experiment = _load_experiment(args.config, args.experiment)
    dataset = aggregate_directory(experiment, args.runs_dir)
    save_netcdf(dataset, args.out)
    print(f"wrote {args.out}: {dict(dataset.sizes)}", file=sys.stderr)
    return 0


def _predict_flips(args: argparse.Namespace) -> int:
    import xarray as xr

    from adamnoise.analysis import predict_flips
    from adamnoise.io import save_netcdf

    with xr.open_dataset(args.aggregate) as aggregate:
        try:
            flips = predict_flips(aggregate.load())
        except ValueError as error:
            print(f"adamnoise: {args.aggregate}: {error}", file=sys.stderr)
            return 1
    save_netcdf(flips, args.out)
    return 0


def _optima(args: argparse.Namespace) -> int:
    import json

    import xarray as xr

    from adamnoise import provenance
    from adamnoise.io import save_netcdf, write_text
    from adamnoise.optima import sweep_optima, table1, theory_applies
    from adamnoise.published import seed000_table1

    aggregate = xr.load_dataset(args.aggregate)
    flips = xr.load_dataset(args.flips)
    config = json.loads(aggregate.attrs["experiment_config"])
    if args.axis not in aggregate.dims:
        print(f"adamnoise: {args.aggregate} has no {args.axis} axis (tied betas?)", file=sys.stderr)
        return 1
    reason = theory_applies(config, args.axis)
    lam = flips["noise_ratio_own"].sel(quantile=0.5, drop=True) if reason is None else None
    optima = sweep_optima(aggregate, args.axis, noise_ratio=lam, n_resamples=args.resamples)
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
        if args.axis == "beta2" and config.get("dataset") == "wikitext2"
        else None
    )
    save_netcdf(optima, args.out)
    write_text(args.csv, table1(optima, published).to_csv(index=False, float_format="%.6g"))
    print(f"wrote {args.out} and {args.csv}", file=sys.stderr)
    return 0
