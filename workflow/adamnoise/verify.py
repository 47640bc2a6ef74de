"""``adamnoise verify RESULTS_DIR --sample K``: an archive proves itself by retraining runs.

Every run directory of the workflow holds the complete config it was trained with (``run.yaml``)
next to its result (``result.nc``). ``verify`` draws K of them at random (seeded, so a check can be
repeated), retrains each from its ``run.yaml`` into a temporary directory, and compares every
data variable and coordinate of the new result with the stored one:

* on CPU (the stored run and the rerun both on CPU) the numbers must be **bit-identical**: the
  trainer is deterministic there (fixed seeds, one data order, deterministic kernels);
* otherwise (a GPU on either side) within ``rtol`` (default 1e-3) and ``atol`` (1e-6): GPU
  kernels (atomics in reductions, autotuned convolutions / matmuls) are not bit-reproducible.

A run trained in a pack (``pack: K``; its result has ``pack_size`` > 1) is retrained with its
whole pack, as listed by the pack's marker ``<experiment>/packs/<pack_id>.done``: a pack member's
numbers depend on its pack (batched kernels; with dropout, the members share one random stream),
so only the same pack reproduces them.

Timing variables (``wall_time_s``, ``tokens_per_s``) and provenance attributes are not compared.

Before retraining, every run is checked cheaply: a ``result.nc`` that does not open is reported
(``UNREADABLE``) and left out of the sample, and a ``run.yaml`` that differs from the config
stored in its result (attribute ``run_config``) is reported (``CONFIG``). After the sample, each
experiment's derived tables (``optima_<axis>.csv``, Table 1, and ``predictions_<axis>.csv``) are
recomputed from its runs (``experiment.yaml``, as the workflow's aggregate and analysis do) and
compared with the stored ones (``TABLE``). Each problem is one line; the exit status is 1 if
any was found.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from adamnoise.cli import add_command, fail
from adamnoise.training.result import TIMING_VARIABLES

GPU_RTOL = 1e-3
GPU_ATOL = 1e-6


@dataclass
class Verdict:
    run_dir: Path
    matches: bool
    exact: bool  # the comparison demanded bit-identity
    differences: list[str] = field(default_factory=list)

    def line(self) -> str:
        mode = "bit-identical" if self.exact else f"within rtol {GPU_RTOL:g}"
        if self.matches:
            return f"ok        {self.run_dir}  ({mode})"
        return f"MISMATCH  {self.run_dir}  ({mode}): " + "; ".join(self.differences)


def find_runs(results_dir: Path, experiment: str | None = None) -> list[Path]:
    """Run directories holding both ``run.yaml`` and ``result.nc``, sorted. ``results_dir`` is
    the workflow's results directory or one experiment's directory in it (``results/default``)."""
    if (Path(results_dir) / "runs").is_dir() and experiment is None:
        pattern = "runs/*/run.yaml"
    else:
        pattern = f"{experiment or '*'}/runs/*/run.yaml"
    return sorted(
        p.parent for p in Path(results_dir).glob(pattern) if (p.parent / "result.nc").exists()
    )


def compare_results(stored, rerun, exact: bool, rtol: float = GPU_RTOL, atol: float = GPU_ATOL):
    """Names and sizes of the differences between two result datasets (empty: they match)."""
    import numpy as np

    differences = []
    for kind, names in (("variable", stored.data_vars), ("coordinate", stored.coords)):
        for name in names:
            if name in TIMING_VARIABLES:
                continue
            if name not in rerun.variables:
                differences.append(f"{kind} {name} missing in the rerun")
                continue
            a, b = stored[name].values, rerun[name].values
            if a.shape != b.shape:
                differences.append(f"{name}: shape {a.shape} vs {b.shape}")
                continue
            if a.dtype.kind not in "fc":
                if not np.array_equal(a, b):
                    differences.append(f"{name}: values differ")
                continue
            same = (
                np.array_equal(a, b, equal_nan=True)
                if exact
                else np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
            )
            if not same:
                with np.errstate(invalid="ignore"):
                    gap = np.nanmax(np.abs(a.astype(float) - b.astype(float)), initial=0.0)
                differences.append(f"{name}: max |difference| {gap:.3g}")
    for name in ("status", "stop_reason", "best_is_last", "diverged_at_step"):
        if stored.attrs.get(name) != rerun.attrs.get(name):
            differences.append(
                f"attribute {name}: {stored.attrs.get(name)} vs {rerun.attrs.get(name)}"
            )
    return differences


def resolved_config(
    run_dir: Path, results_dir: Path, workdir: Path, device: str | None = None
) -> Path:
    """The run's config with its corpus path made absolute: the path is relative to the
    workflow directory, which an archive may no longer be in (then: beside RESULTS_DIR)."""
    import yaml

    config = yaml.safe_load((run_dir / "run.yaml").read_text())
    corpus = Path(config["data"]["corpus"])
    if not corpus.is_absolute():
        candidates = [Path.cwd() / corpus, results_dir.resolve().parent / corpus]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            looked = ", ".join(map(str, candidates))
            raise FileNotFoundError(f"corpus {corpus} of {run_dir} not found (looked in {looked})")
        config["data"]["corpus"] = str(found)
    if device is not None:
        config.setdefault("training", {})["device"] = device
    training = config.setdefault("training", {})
    if training.get("num_threads") is None:
        # CPU sums depend on the thread count: rerun with the stored run's
        threads = _stored_threads(run_dir / "result.nc")
        if threads is not None:
            training["num_threads"] = threads
    path = workdir / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def pack_members(run_dir: Path) -> list[Path]:
    """The run directories of the pack ``run_dir`` was trained in, in pack order ([run_dir] if
    it was trained alone)."""
    import xarray as xr

    with xr.open_dataset(run_dir / "result.nc") as result:
        pack_size = int(result.attrs.get("pack_size", 1))
    if pack_size <= 1:
        return [run_dir]
    runs_dir = run_dir.parent
    for marker in sorted((runs_dir.parent / "packs").glob("*.done")):
        members = [Path(line).parent.name for line in marker.read_text().split()]
        if run_dir.name in members:
            return [runs_dir / name for name in members]
    raise FileNotFoundError(
        f"{run_dir} was trained in a pack of {pack_size}, but no pack marker "
        f"under {runs_dir.parent / 'packs'} lists it"
    )


def _stored_threads(result_path: Path) -> int | None:
    """The torch CPU thread count the stored run trained with (provenance), if recorded."""
    import json

    import xarray as xr

    with xr.open_dataset(result_path) as result:
        record = json.loads(result.attrs.get("provenance_torch", "{}") or "{}")
    threads = record.get("torch_num_threads")
    return int(threads) if isinstance(threads, int) and threads > 0 else None


def verify_run(run_dir: Path, results_dir: Path, device: str | None = None) -> Verdict:
    """Retrain one run (with its pack, if it had one) in a temporary directory and compare."""
    import xarray as xr

    from adamnoise.training.config import load_run_config

    members = pack_members(run_dir)
    with tempfile.TemporaryDirectory(prefix="adamnoise-verify-") as tmp:
        configs, outs = [], []
        for index, member in enumerate(members):
            workdir = Path(tmp) / str(index)
            workdir.mkdir()
            configs.append(load_run_config(resolved_config(member, results_dir, workdir, device)))
            outs.append(workdir / "result.nc")
        if len(members) == 1:
            from adamnoise.training.trainer import train

            train(configs[0], outs[0], checkpoint_dir=Path(tmp) / "ckpt", resume=False)
        else:
            from adamnoise.training.trainer import train_pack

            train_pack(configs, outs, checkpoint_dir=Path(tmp) / "ckpt", resume=False)
        out = outs[members.index(run_dir)]
        with xr.open_dataset(run_dir / "result.nc") as stored, xr.open_dataset(out) as rerun:
            on_cpu = all(
                str(d.attrs.get("provenance_device", "cpu")).startswith("cpu")
                for d in (stored, rerun)
            )
            differences = compare_results(stored.load(), rerun.load(), exact=on_cpu)
    return Verdict(run_dir, not differences, on_cpu, differences)


def stored_problems(run_dir: Path) -> list[str]:
    """Problems of a stored run found without retraining: an unreadable result, or a run.yaml
    that is not the config its result was trained with."""
    import json

    import xarray as xr
    import yaml

    from adamnoise.training.config import RunConfig, config_differences

    try:
        with xr.open_dataset(run_dir / "result.nc") as result:
            stored = result.attrs.get("run_config")
    except (OSError, ValueError, RuntimeError) as error:
        return [f"UNREADABLE  {run_dir / 'result.nc'}: {error}"]
    if stored is None:
        return []
    try:
        current = RunConfig.from_dict(yaml.safe_load((run_dir / "run.yaml").read_text()))
    except (OSError, ValueError, yaml.YAMLError) as error:
        return [f"CONFIG    {run_dir / 'run.yaml'}: {error}"]
    differences = config_differences(json.loads(stored), json.loads(json.dumps(current.to_dict())))
    if differences:
        return [
            f"CONFIG    {run_dir / 'run.yaml'} is not the config of its result.nc "
            f"(stored -> run.yaml): {'; '.join(differences)}"
        ]
    return []


def derived_table_problems(experiment_dir: Path) -> list[str]:
    """Recompute the experiment's stored Table 1 and predictions CSVs from its runs; one line
    per table that differs."""
    import xarray as xr

    from adamnoise.aggregate import aggregate_directory
    from adamnoise.aggregate_cli import load_experiment
    from adamnoise.analysis import predict_flips
    from adamnoise.analysis_cli import optima_outputs, predictions_outputs

    stored = sorted(experiment_dir.glob("optima_*.csv")) + sorted(
        experiment_dir.glob("predictions_*.csv")
    )
    if not stored or not (experiment_dir / "experiment.yaml").exists():
        return []
    experiment = load_experiment(experiment_dir / "experiment.yaml", experiment_dir.name)
    # through netCDF, as the workflow's analysis reads it
    with tempfile.TemporaryDirectory(prefix="adamnoise-verify-") as tmp:
        from adamnoise.io import save_netcdf

        save_netcdf(aggregate_directory(experiment, experiment_dir / "runs"), Path(tmp) / "a.nc")
        aggregate = xr.load_dataset(Path(tmp) / "a.nc")
        save_netcdf(predict_flips(aggregate), Path(tmp) / "f.nc")
        flips = xr.load_dataset(Path(tmp) / "f.nc")
    problems = []
    for path in stored:
        kind, axis = path.stem.split("_", 1)
        outputs = optima_outputs if kind == "optima" else predictions_outputs
        _, recomputed = outputs(aggregate, flips, axis)
        old, new = path.read_text().splitlines(), recomputed.splitlines()
        if old != new:
            row = next(
                (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                min(len(old), len(new)),
            )
            problems.append(
                f"TABLE     {path} differs from the one recomputed from the runs "
                f"(line {row + 1}: {old[row] if row < len(old) else '<none>'!r} vs "
                f"{new[row] if row < len(new) else '<none>'!r})"
            )
    return problems


def register(subparsers: argparse._SubParsersAction) -> None:
    verify = add_command(subparsers, "verify", _verify)
    add_sample_arguments(verify)
    verify.add_argument("--device", help="override the runs' device (e.g. cpu)")


def _verify(args: argparse.Namespace) -> int:
    """retrain K random runs of a results directory and compare with the stored results

    Bit-identical on CPU; within rtol 1e-3 where a GPU is involved. Exit 1 if any sampled run does
    not match.
    """
    runs = find_runs(args.results_dir, args.experiment)
    if not runs:
        return fail(
            f"adamnoise verify: no run with run.yaml and result.nc under {args.results_dir}", 2
        )
    if args.sample < 1:
        return fail("adamnoise verify: --sample must be >= 1", 2)
    problems = []
    readable = []
    for run_dir in runs:
        found = stored_problems(run_dir)
        problems += found
        if not any(line.startswith("UNREADABLE") for line in found):
            readable.append(run_dir)
    for line in problems:
        print(line, flush=True)
    chosen = sorted(random.Random(args.seed).sample(readable, min(args.sample, len(readable))))
    print(f"verifying {len(chosen)} of {len(runs)} runs (seed {args.seed})", file=sys.stderr)
    verdicts = []
    for run_dir in chosen:
        try:
            verdict = verify_run(run_dir, args.results_dir, args.device)
        except (OSError, ValueError, RuntimeError) as error:  # report it and go on
            verdict = Verdict(run_dir, False, True, [f"could not be retrained: {error}"])
        print(verdict.line(), flush=True)
        verdicts.append(verdict)
    failed = sum(not v.matches for v in verdicts)
    print(f"{len(verdicts) - failed} of {len(verdicts)} runs reproduce", file=sys.stderr)
    tables = []
    for experiment_dir in sorted({run_dir.parent.parent for run_dir in runs}):
        if len(readable) < len(runs):
            print(
                f"derived tables of {experiment_dir} not checked: unreadable runs", file=sys.stderr
            )
            continue
        tables += derived_table_problems(experiment_dir)
    for line in tables:
        print(line, flush=True)
    return 1 if failed or problems or tables else 0


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command that retrains a random sample of a results directory's runs
    (``verify``, ``check-stopping``)."""
    parser.add_argument("results_dir", type=Path, help="the workflow's results directory")
    parser.add_argument("--sample", type=int, default=3, help="runs to retrain (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choice")
    parser.add_argument("--experiment", help="only runs of this experiment")
