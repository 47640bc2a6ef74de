"""``adamnoise aggregate``: the aggregate stage's command (all runs of an experiment into one
netCDF dataset)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adamnoise.cli import add_command, fail


def register(subparsers: argparse._SubParsersAction) -> None:
    aggregate = add_command(subparsers, "aggregate", _aggregate)
    aggregate.add_argument(
        "config", type=Path, help="workflow config (YAML) defining the experiment"
    )
    aggregate.add_argument("experiment", help="experiment name")
    aggregate.add_argument("--runs-dir", type=Path, required=True, help="holds <run_id>/result.nc")
    aggregate.add_argument("--out", type=Path, required=True, help="netCDF file to write")


def load_experiment(config_path: Path, name: str):
    from adamnoise.errors import ConfigError
    from adamnoise.io import load_yaml
    from adamnoise.workflow_config import load_experiments

    try:
        config = load_yaml(config_path)
    except ValueError as error:
        raise SystemExit(f"adamnoise: {error}") from None
    try:
        experiments = load_experiments(config)
    except ConfigError as error:
        raise SystemExit(f"adamnoise: invalid config {config_path}: {error}") from None
    if name not in experiments:
        raise SystemExit(f"adamnoise: {config_path} defines no experiment {name!r}")
    return experiments[name]


def _aggregate(args: argparse.Namespace) -> int:
    """stack the run results of one experiment into a netCDF dataset

    Missing runs are NaN in the dataset and are listed on stderr.
    """
    from adamnoise.aggregate import UnreadableResults, aggregate_directory
    from adamnoise.io import save_netcdf

    experiment = load_experiment(args.config, args.experiment)
    try:
        dataset = aggregate_directory(experiment, args.runs_dir)
    except UnreadableResults as error:
        return fail(f"adamnoise aggregate: {error}")
    save_netcdf(dataset, args.out)
    print(f"wrote {args.out}: {dict(dataset.sizes)}", file=sys.stderr)
    return 0
