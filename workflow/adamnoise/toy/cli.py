"""``adamnoise toy gap | sign``: the toy quadratics' datasets (seed 002 Fig. 17, seed 003 Fig. 6).

torch and xarray are imported when a command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import time

from adamnoise.cli import add_command, add_command_family


def register(subparsers) -> None:
    """Add ``adamnoise toy`` to the main parser."""
    commands = add_command_family(
        subparsers,
        "toy",
        help="seed 002 / 003 toy quadratics (9-dimensional, CPU, seconds)",
        description="Run the seeds' 9-dimensional block quadratics with the project's optimisers "
        "and write their datasets as netCDF.",
    )

    for name, func in (("gap", run_gap), ("sign", run_sign)):
        parser = add_command(commands, name, func)
        parser.add_argument("--out", required=True, help="output netCDF path (PATH.nc)")
        parser.add_argument(
            "--csv", default=None, help="also write the summary table the command prints (CSV)"
        )
        parser.add_argument(
            "--runs", type=int, default=None, help="runs (batch-noise seeds) per setting; 10"
        )


def _run(args: argparse.Namespace, build, table) -> int:
    import pandas as pd

    from adamnoise.io import save_netcdf

    if args.runs is not None and args.runs < 2:
        raise SystemExit("adamnoise toy: --runs must be at least 2 (the bands are 2 sigma)")
    command = f"adamnoise toy {args.toy_command}" + (
        f" --runs {args.runs}" if args.runs is not None else ""
    )
    start = time.perf_counter()
    dataset = build(runs=args.runs, command=command)
    wall = time.perf_counter() - start
    dataset.attrs["wall_time_s"] = round(wall, 2)
    save_netcdf(dataset, args.out)
    summary = table(dataset)
    if args.csv is not None:
        from adamnoise.io import write_text

        write_text(args.csv, summary.to_csv(float_format="%.6g"))
    with pd.option_context("display.width", 160, "display.float_format", "{:.3g}".format):
        print(summary.to_string())
    print(f"{command}: {wall:.1f} s, wrote {args.out}")
    return 0


def run_gap(args: argparse.Namespace) -> int:
    """seed 002 Fig. 17: Adam-SGD gap against batch size, both Hessians

    Tuned SGD and Adam on the heterogeneous and homogeneous quadratic for batch sizes 1-9
    (adamnoise.toy.quadratic.gap_vs_batch_size).
    """
    from adamnoise.toy.quadratic import gap_table, gap_vs_batch_size

    return _run(args, gap_vs_batch_size, gap_table)


def run_sign(args: argparse.Namespace) -> int:
    """seed 003 Fig. 6: SGD with momentum, Signum, Adam with beta1 = beta2

    The three tuned optimisers on the heterogeneous quadratic, with Adam's per-block variance
    estimate (adamnoise.toy.quadratic.sign_descent_comparison).
    """
    from adamnoise.toy.quadratic import sign_descent_comparison, sign_descent_table

    return _run(args, sign_descent_comparison, sign_descent_table)
