"""``adamnoise check-stopping RESULTS_DIR --sample K``: is every stored minimum a minimum?

A run's minimal validation perplexity is only its minimum if training went on long enough after
it. Two shortcuts can end a run too early: a stopping rule (``training.patience``) that fires on
evaluation noise, and an epoch budget that is too short. Both are checked the same way, against
the slow truth: K runs drawn at random (seeded) are retrained from their ``run.yaml`` without a
stopping rule and to ``--cap-factor`` times their budget (epochs and max_steps), and the minimum
found by training longer is compared with the stored one. A run *moved* if the longer run's
minimum is lower by more than ``--tolerance`` percent; the command exits 1 if any did.

On CPU a retrained run repeats the stored one bit for bit up to where it stopped (deterministic
trainer, and a constant schedule does not depend on the cap), so the longer minimum can only be
lower or equal; with a schedule that depends on the total steps (cosine, linear decay) the
longer run is a different run and the comparison says how much a longer budget would change the
minimum. A run trained in a pack is retrained alone (packed members equal their single runs to
about 1e-6 relative, docs/performance.md).
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from adamnoise.cli import add_command, fail
from adamnoise.status import LATE_FRACTION
from adamnoise.verify import add_sample_arguments


@dataclass(frozen=True)
class StoppingCheck:
    run_id: str
    stop_reason: str
    stored_min: float  # stored minimal validation perplexity
    stored_step: int  # its step
    stored_steps: int  # steps the stored run trained
    longer_min: float  # the minimum of the run trained without stopping rule to the longer cap
    longer_step: int
    longer_steps: int

    @property
    def change(self) -> float:
        """Relative change of the minimum, (longer - stored) / stored (negative: it fell)."""
        return (self.longer_min - self.stored_min) / self.stored_min

    def moved(self, tolerance: float) -> bool:
        """The longer run found a minimum lower by more than ``tolerance`` (a fraction); a run
        whose minimum is not finite on either side counts as moved unless both are."""
        if not (math.isfinite(self.stored_min) and math.isfinite(self.longer_min)):
            return math.isfinite(self.stored_min) != math.isfinite(self.longer_min)
        return self.change < -tolerance

    def line(self, tolerance: float) -> str:
        verdict = "MOVED" if self.moved(tolerance) else "ok"
        where = (
            "after the stored run's end" if self.longer_step > self.stored_steps else "within it"
        )
        return (
            f"{verdict:<6} {self.run_id:<40} {self.stop_reason:<9} "
            f"{self.stored_min:8.3f} @ {self.stored_step:<6d} {self.longer_min:8.3f} @ "
            f"{self.longer_step:<6d} {100 * self.change:+7.2f} %  (longer best {where}; "
            f"{self.stored_steps} -> {self.longer_steps} steps)"
        )


HEADER = (
    f"{'':<6} {'run':<40} {'stopped':<9} {'stored min @ step':>17} {'longer min @ step':>17} "
    f"{'change':>9}"
)


def longer_config(config: dict, cap_factor: float) -> dict:
    """The run config without stopping rule and with its budget times ``cap_factor``."""
    training = dict(config.get("training", {}))
    training["patience"] = None
    training["epochs"] = float(training.get("epochs", 1.0)) * cap_factor
    if training.get("max_steps") is not None:
        training["max_steps"] = math.ceil(training["max_steps"] * cap_factor)
    return {**config, "training": training}


def check_run(run_dir: Path, results_dir: Path, cap_factor: float) -> StoppingCheck:
    """Retrain one run without stopping rule to the longer cap and compare the minima."""
    import xarray as xr
    import yaml

    from adamnoise.training.config import RunConfig
    from adamnoise.training.trainer import train
    from adamnoise.verify import resolved_config

    with xr.open_dataset(run_dir / "result.nc") as stored:
        stored_min = float(stored["min_val_ppl"])
        stored_step = int(stored["best_step"]) if math.isfinite(stored["best_step"]) else -1
        stored_steps = int(stored.sizes.get("train_step", 0))
        stop_reason = str(stored.attrs.get("stop_reason", "?"))
    with tempfile.TemporaryDirectory(prefix="adamnoise-check-stopping-") as tmp:
        path = resolved_config(run_dir, results_dir, Path(tmp))
        raw = longer_config(yaml.safe_load(path.read_text()), cap_factor)
        out = Path(tmp) / "result.nc"
        train(RunConfig.from_dict(raw), out, checkpoint_dir=Path(tmp) / "ckpt", resume=False)
        with xr.open_dataset(out) as longer:
            longer_min = float(longer["min_val_ppl"])
            longer_step = int(longer["best_step"]) if math.isfinite(longer["best_step"]) else -1
            longer_steps = int(longer.sizes.get("train_step", 0))
    return StoppingCheck(
        run_dir.name, stop_reason, stored_min, stored_step, stored_steps,
        longer_min, longer_step, longer_steps,
    )  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "check-stopping", _check_stopping)
    add_sample_arguments(parser)
    parser.add_argument(
        "--tolerance", type=float, default=1.0, help="percent the minimum may fall (default 1)"
    )
    parser.add_argument(
        "--cap-factor", type=float, default=2.0, help="times the run's budget (default 2)"
    )
    parser.add_argument(
        "--flagged",
        action="store_true",
        help="draw only among runs whose best evaluation is their last or lies in the last "
        f"{LATE_FRACTION:.0%}% of their steps (the runs Table 1 flags)",
    )


def is_flagged(run_dir: Path) -> bool:
    """The run's best evaluation is in the last ``LATE_FRACTION`` of its steps (or is its last)."""
    import xarray as xr

    with xr.open_dataset(run_dir / "result.nc") as result:
        steps = int(result.sizes.get("train_step", 0))
        best = float(result["best_step"])
    return math.isfinite(best) and steps > 0 and best >= (1 - LATE_FRACTION) * steps


def _check_stopping(args: argparse.Namespace) -> int:
    """retrain K random runs without stopping rule to a longer cap and compare minima

    Exit 1 if any sampled run finds a minimum lower than the stored one by more than the tolerance:
    its stopping rule or its budget ended it too early.
    """
    from adamnoise.verify import find_runs

    if args.sample < 1 or args.cap_factor < 1 or args.tolerance < 0:
        return fail(
            "adamnoise check-stopping: --sample >= 1, --cap-factor >= 1 and --tolerance >= 0 "
            "are required",
            2,
        )
    runs = find_runs(args.results_dir, args.experiment)
    if args.flagged:
        runs = [run for run in runs if is_flagged(run)]
    if not runs:
        return fail(
            f"adamnoise check-stopping: no {'flagged ' if args.flagged else ''}run with run.yaml "
            f"and result.nc under {args.results_dir}",
            2,
        )
    chosen = sorted(random.Random(args.seed).sample(runs, min(args.sample, len(runs))))
    tolerance = args.tolerance / 100
    print(
        f"check-stopping: {len(chosen)} of {len(runs)} runs (seed {args.seed}), retrained without "
        f"stopping rule to {args.cap_factor:g}x their budget; tolerance {args.tolerance:g} %",
        flush=True,
    )
    print(HEADER, flush=True)
    checks = []
    for run_dir in chosen:
        check = check_run(run_dir, args.results_dir, args.cap_factor)
        print(check.line(tolerance), flush=True)
        checks.append(check)
    moved = sum(c.moved(tolerance) for c in checks)
    later = sum(c.longer_step > c.stored_steps for c in checks)
    print(
        f"{moved} of {len(checks)} moved by more than {args.tolerance:g} %; "
        f"{later} found their longer minimum after the stored run's last step",
        flush=True,
    )
    return 1 if moved else 0
