"""``adamnoise train RUN.yaml --out RESULT.nc [--resume] [--checkpoint-dir DIR]`` and
``adamnoise train-pack RUN1.yaml RUN2.yaml ... --out R1.nc R2.nc ... [--resume]``."""

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
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=20.0,
        metavar="M",
        help="also checkpoint every M minutes of wall-clock time (0: never); SIGTERM always "
        "checkpoints and exits with status 143 (default: %(default)s)",
    )
    parser.set_defaults(func=run_train)

    pack = subparsers.add_parser(
        "train-pack",
        help="train K runs of the same shape in one process (packed) and write K result files",
        description=(
            "Train K runs that differ only in seed, lr, beta1, beta2, eps as one pack "
            "(adamnoise.training.trainer) and write one result file per run, in the format of "
            "'adamnoise train'. Runs that differ in anything else are refused, naming the key."
        ),
    )
    pack.add_argument("run_configs", nargs="+", metavar="RUN.yaml", help="run config files")
    pack.add_argument(
        "--out", required=True, nargs="+", metavar="RESULT.nc", help="result files, one per run"
    )
    pack.add_argument(
        "--resume", action="store_true", help="continue from the pack's checkpoint if there is one"
    )
    pack.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="checkpoint directory of the pack (default: the first RESULT.nc + .pack.ckpt/)",
    )
    pack.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=20.0,
        metavar="M",
        help="also checkpoint every M minutes of wall-clock time (0: never); SIGTERM always "
        "checkpoints and exits with status 143 (default: %(default)s)",
    )
    pack.set_defaults(func=run_train_pack)


def run_train_pack(args: argparse.Namespace) -> int:
    from adamnoise.errors import ConfigError
    from adamnoise.training.config import load_run_config

    if len(args.run_configs) != len(args.out):
        print(
            f"adamnoise train-pack: {len(args.run_configs)} run configs but {len(args.out)} "
            "--out files",
            file=sys.stderr,
        )
        return 2
    configs = []
    for path in args.run_configs:
        try:
            configs.append(load_run_config(path))
        except (ConfigError, OSError) as exc:
            print(f"adamnoise train-pack: invalid run config {path}: {exc}", file=sys.stderr)
            return 2

    from adamnoise.training.trainer import PREEMPTED_EXIT_STATUS, Preempted, train_pack

    try:
        outcomes = train_pack(
            configs,
            args.out,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            checkpoint_minutes=args.checkpoint_minutes,
        )
    except ConfigError as exc:
        print(f"adamnoise train-pack: {exc}", file=sys.stderr)
        return 2
    except Preempted as exc:
        print(f"adamnoise train-pack: {exc}", file=sys.stderr)
        return PREEMPTED_EXIT_STATUS
    for config, outcome in zip(configs, outcomes, strict=True):
        print(f"{config.run_id}: {outcome.status} after {outcome.steps} steps -> {outcome.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    # config first: a wrong key is reported before torch is imported
    from adamnoise.errors import ConfigError
    from adamnoise.training.config import load_run_config

    try:
        config = load_run_config(args.run_config)
    except (ConfigError, OSError) as exc:
        print(f"adamnoise train: invalid run config {args.run_config}: {exc}", file=sys.stderr)
        return 2

    from adamnoise.training.trainer import PREEMPTED_EXIT_STATUS, Preempted, train

    try:
        outcome = train(
            config,
            args.out,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            checkpoint_minutes=args.checkpoint_minutes,
        )
    except ConfigError as exc:
        print(f"adamnoise train: {args.run_config}: {exc}", file=sys.stderr)
        return 2
    except Preempted as exc:
        print(f"adamnoise train: {exc}", file=sys.stderr)
        return PREEMPTED_EXIT_STATUS
    print(f"{config.run_id}: {outcome.status} after {outcome.steps} steps -> {outcome.out}")
    return 0
