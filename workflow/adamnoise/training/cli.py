"""``adamnoise train RUN.yaml --out RESULT.nc [--resume] [--checkpoint-dir DIR]`` and
``adamnoise train-pack RUN1.yaml RUN2.yaml ... --out R1.nc R2.nc ... [--resume]``."""

from __future__ import annotations

import argparse
import sys

from adamnoise.cli import add_command
from adamnoise.training.config import DEFAULT_CHECKPOINT_MINUTES


def register(subparsers) -> None:
    parser = add_command(subparsers, "train", run_train)
    parser.add_argument("run_config", metavar="RUN.yaml", help="run config file")
    parser.add_argument("--out", required=True, metavar="RESULT.nc", help="result file to write")
    _add_checkpoint_options(parser, "the same config", "RESULT.nc.ckpt/")

    pack = add_command(subparsers, "train-pack", run_train_pack)
    pack.add_argument("run_configs", nargs="+", metavar="RUN.yaml", help="run config files")
    pack.add_argument(
        "--out", required=True, nargs="+", metavar="RESULT.nc", help="result files, one per run"
    )
    _add_checkpoint_options(pack, "the pack", "the first RESULT.nc + .pack.ckpt/")


def _add_checkpoint_options(parser, whose: str, default_dir: str) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue from the checkpoint of {whose} if there is one",
    )
    parser.add_argument(
        "--checkpoint-dir", metavar="DIR", help=f"checkpoint directory (default: {default_dir})"
    )
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=DEFAULT_CHECKPOINT_MINUTES,
        metavar="M",
        help="also checkpoint every M minutes of wall-clock time (0: never); SIGTERM always "
        "checkpoints and exits with status 143 (default: %(default)s)",
    )


def run_train_pack(args: argparse.Namespace) -> int:
    """train K runs of the same shape in one process (packed) and write K result files

    Train K runs that differ only in seed, lr, beta1, beta2, eps as one pack
    (adamnoise.training.trainer) and write one result file per run, in the format of 'adamnoise
    train'. Runs that differ in anything else are refused, naming the key.
    """
    if len(args.run_configs) != len(args.out):
        print(
            f"adamnoise train-pack: {len(args.run_configs)} run configs but {len(args.out)} "
            "--out files",
            file=sys.stderr,
        )
        return 2
    return _train_job("train-pack", args.run_configs, args.out, args)


def run_train(args: argparse.Namespace) -> int:
    """train one run and write its result file

    Train one run described by a run config (see config/runs/tiny.yaml) and write its netCDF result
    file. A diverged run is not an error: its result has status 'diverged'.
    """
    return _train_job("train", [args.run_config], [args.out], args)


def _train_job(command: str, run_configs: list[str], outs: list[str], args) -> int:
    """Load the run configs (a wrong key is reported before torch is imported), train the job
    (one run, or a pack) and print each run's outcome; exit status 2 for a bad config, 143 after
    SIGTERM (checkpointed)."""
    from adamnoise.errors import ConfigError
    from adamnoise.training.config import load_run_config

    configs = []
    for path in run_configs:
        try:
            configs.append(load_run_config(path))
        except (ConfigError, OSError) as exc:
            print(f"adamnoise {command}: invalid run config {path}: {exc}", file=sys.stderr)
            return 2

    from adamnoise.training.trainer import PREEMPTED_EXIT_STATUS, Preempted, train, train_pack

    job = dict(
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        checkpoint_minutes=args.checkpoint_minutes,
    )
    try:
        if command == "train":
            outcomes = [train(configs[0], outs[0], **job)]
        else:
            outcomes = train_pack(configs, outs, **job)
    except ConfigError as exc:
        where = f"{run_configs[0]}: " if command == "train" else ""
        print(f"adamnoise {command}: {where}{exc}", file=sys.stderr)
        return 2
    except Preempted as exc:
        print(f"adamnoise {command}: {exc}", file=sys.stderr)
        return PREEMPTED_EXIT_STATUS
    for config, outcome in zip(configs, outcomes, strict=True):
        print(f"{config.run_id}: {outcome.status} after {outcome.steps} steps -> {outcome.out}")
    return 0
