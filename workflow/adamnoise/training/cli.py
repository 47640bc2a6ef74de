"""``adamnoise train RUN.yaml --out RESULT.nc [--resume] [--checkpoint-dir DIR]``."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one run and write its result file",
        description=(
            "Train one run described by a run config (see config/runs/tiny.yaml) and write its "
            "netCDF result file. A diverged run is not an error: its result has status 'diverged'."
        ),
    )
    parser.add_argument("run_config", metavar="RUN.yaml", help="run config file")
    parser.add_argument("--out", required=True, metavar="RESULT.nc", help="result file to write")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint of the same config if there is one",
    )
    parser.add_argument(
        "--checkpoint-dir", metavar="DIR", help="checkpoint directory (default: RESULT.nc.ckpt/)"
    )
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    # config first: a wrong key is reported before torch is imported
    from adamnoise.training.config import ConfigError, load_run_config

    try:
        config = load_run_config(args.run_config)
    except (ConfigError, OSError) as exc:
        print(f"adamnoise train: invalid run config {args.run_config}: {exc}", file=sys.stderr)
        return 2

    from adamnoise.training.trainer import train

    try:
        outcome = train(config, args.out, checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    except ConfigError as exc:
        print(f"adamnoise train: {args.run_config}: {exc}", file=sys.stderr)
        return 2
    print(f"{config.run_id}: {outcome.status} after {outcome.steps} steps -> {outcome.out}")
    return 0
