"""All runs of an experiment in one xarray Dataset.

Dimensions are the grid axes (``batch_size``, ``beta1``, ``beta2``, ``lr``, ``seed``; ``beta1`` is
folded into ``beta2`` for tied-beta experiments) plus ``eval``, the evaluation index, and
``train_step``, the optimiser step (1-based; runs with fewer steps are NaN-padded). A run whose
result file is missing leaves NaN in its cells and is listed in the ``missing_runs`` attribute: a
partial sweep (a cluster run still going, a job that failed) can be looked at without a crash.

Runs stop at different evaluations (patience) and batch sizes evaluate at different steps, so
every per-evaluation series comes with its own ``eval_epoch`` and ``eval_step``. ``stop_reason``
and ``best_is_last`` say whether each run trained past its minimum; ``b_simple_window`` is the
noise scale that the flip prediction uses (``analysis.predict_flips``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from adamnoise import provenance
from adamnoise.experiment import Experiment
from adamnoise.training.epochs import mean_batch_size
from adamnoise.training.result import STEP_VARIABLES

# run status -> code stored in the aggregate (CF flag convention)
STATUS_CODES = {"missing": -1, "completed": 0, "diverged": 1}
# why a run stopped (trainer.py) -> code: passed its minimum, hit its budget, diverged
STOP_CODES = {"missing": -1, "patience": 0, "cap": 1, "diverged": 2}

# per-run scalars copied from each result file: name -> (units, description)
SCALARS = {
    "min_val_ppl": ("1", "minimal validation perplexity over the evaluations"),
    "best_epoch": ("epoch", "epoch of the minimal validation perplexity"),
    "best_step": ("step", "optimiser step of the minimal validation perplexity"),
    "test_ppl": ("1", "test perplexity at the best checkpoint (NaN if not measured)"),
    "wall_time_s": ("s", "wall-clock time of the run"),
    "tokens_per_s": ("token/s", "training throughput"),
}
# per-evaluation series: name -> (units, description)
SERIES = {
    "val_ppl": ("1", "validation perplexity (token-weighted)"),
    "val_loss": ("nat/token", "validation cross-entropy (token-weighted)"),
    "train_loss": ("nat/token", "mean training loss since the previous evaluation"),
    "b_simple": ("sequence", "simple noise scale B_simple = tr(Sigma)/|G|^2 (EMA estimate)"),
    "eval_epoch": ("epoch", "epochs completed at the evaluation"),
    "eval_step": ("step", "optimiser steps completed at the evaluation"),
}
RUN_SERIES = {"eval_epoch": "epoch", "eval_step": "step"}  # aggregate name -> run result name
# per-step series (float32: a paper-scale sweep has ~10^3 runs x ~10^4 steps)
STEP_SERIES = {name: STEP_VARIABLES[name] for name in ("max_update", "grad_norm")}


def _open_result(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def aggregate_runs(experiment: Experiment, result_paths: Mapping[str, Path]) -> xr.Dataset:
    """Stack the result files of ``experiment`` (run id -> path) onto the grid."""
    dims = experiment.grid_dims()
    coords = {axis: experiment.axis_values(axis) for axis in dims}
    shape = tuple(len(coords[axis]) for axis in dims)

    results: dict[tuple[int, ...], xr.Dataset] = {}
    missing: list[str] = []
    for point in experiment.points():
        path = result_paths.get(point.run_id)
        if path is None or not Path(path).exists():
            missing.append(point.run_id)
            continue
        index = tuple(coords[axis].index(getattr(point, axis)) for axis in dims)
        results[index] = _open_result(Path(path))

    n_eval = max((run.sizes.get("eval", 0) for run in results.values()), default=0)
    epochs = np.full(n_eval, np.nan)
    for run in results.values():
        if run.sizes.get("eval", 0) == n_eval and n_eval:
            epochs = np.asarray(run["epoch"].values, dtype=float)
            break

    n_steps = max((run.sizes.get("train_step", 0) for run in results.values()), default=0)
    data: dict[str, np.ndarray] = {name: np.full(shape, np.nan) for name in SCALARS}
    data["b_simple_at_best"] = np.full(shape, np.nan)
    data["b_simple_window"] = np.full(shape, np.nan)
    best_is_last = np.zeros(shape, dtype=np.int8)
    stop_reason = np.full(shape, STOP_CODES["missing"], dtype=np.int8)
    data.update({name: np.full((*shape, n_eval), np.nan) for name in SERIES})
    data.update({name: np.full((*shape, n_steps), np.nan, np.float32) for name in STEP_SERIES})
    status = np.full(shape, STATUS_CODES["missing"], dtype=np.int8)
    n_sequences: set[int] = set()
    commits: set[str] = set()
    devices: set[str] = set()

    for index, run in results.items():
        status[index] = STATUS_CODES.get(str(run.attrs.get("status")), STATUS_CODES["missing"])
        for name in SCALARS:
            if name in run:
                data[name][index] = float(run[name].values)
        stop_reason[index] = STOP_CODES.get(
            str(run.attrs.get("stop_reason", "cap")), STOP_CODES["missing"]
        )
        best_is_last[index] = int(run.attrs.get("best_is_last", 0))
        length = run.sizes.get("eval", 0)
        for name in SERIES:
            source = RUN_SERIES.get(name, name)
            if source in run:
                data[name][index][:length] = run[source].values
        steps = run.sizes.get("train_step", 0)
        for name in STEP_SERIES:
            if name in run:
                data[name][index][:steps] = run[name].values
        if "b_simple" in run and np.isfinite(data["best_step"][index]):
            at_best = run["b_simple"].where(run["step"] == data["best_step"][index], drop=True)
            if at_best.size:
                data["b_simple_at_best"][index] = float(at_best.values[0])
            data["b_simple_window"][index] = window_b_simple(
                run["b_simple"].values, run["step"].values, data["best_step"][index]
            )
        if "train_sequences" in run.attrs:
            n_sequences.add(int(run.attrs["train_sequences"]))
        commits.add(str(run.attrs.get("provenance_git_commit", "unknown")))
        devices.add(str(run.attrs.get("provenance_device", "unknown")))

    variables = {
        name: (dims, values, {"units": SCALARS[name][0], "description": SCALARS[name][1]})
        for name, values in data.items()
        if name in SCALARS
    }
    variables["b_simple_at_best"] = (
        dims,
        data["b_simple_at_best"],
        {"units": "sequence", "description": "B_simple at the evaluation of minimal val. ppl"},
    )
    variables["b_simple_window"] = (
        dims,
        data["b_simple_window"],
        {"units": "sequence", "description": WINDOW_DESCRIPTION},
    )
    variables["stop_reason"] = (
        dims,
        stop_reason,
        {
            "flag_values": np.array(list(STOP_CODES.values()), dtype=np.int8),
            "flag_meanings": " ".join(STOP_CODES),
            "description": "why the run stopped: passed its minimum (patience), reached its "
            "budget (cap), diverged; missing: no result",
        },
    )
    variables["best_is_last"] = (
        dims,
        best_is_last,
        {
            "description": "1 if the run's best evaluation is its last one: it may have stopped "
            "before its minimum"
        },
    )
    for name, (units, description) in SERIES.items():
        variables[name] = (
            (*dims, "eval"),
            data[name],
            {"units": units, "description": description},
        )
    for name, (units, description) in STEP_SERIES.items():
        variables[name] = (
            (*dims, "train_step"),
            data[name],
            {"units": units, "description": description},
        )
    variables["status"] = (
        dims,
        status,
        {
            "flag_values": np.array(list(STATUS_CODES.values()), dtype=np.int8),
            "flag_meanings": " ".join(STATUS_CODES),
            "description": "run status: missing result, completed, or diverged",
        },
    )

    dataset = xr.Dataset(
        variables,
        coords={
            **coords,
            "eval": np.arange(n_eval),
            "epoch": ("eval", epochs),
            "train_step": np.arange(1, n_steps + 1),
        },
    )
    n_train = experiment.num_train_sequences
    dataset = dataset.assign_coords(
        mean_batch_size=(
            "batch_size",
            [mean_batch_size(n_train, int(b)) for b in dataset["batch_size"].values],
            {
                "units": "sequence",
                "description": "realised batch size N / m (m batches per epoch, epochs.py)",
            },
        )
    )
    dataset["batch_size"].attrs.update(
        units="sequence", description="configured sequences per step (full batch: N)"
    )
    dataset["lr"].attrs.update(description="learning rate")
    dataset["epoch"].attrs.update(
        description="epochs of the evaluations of one run with the most of them; runs differ "
        "(batch size, stopping): use eval_epoch"
    )
    if len(n_sequences) > 1 or (n_sequences and n_sequences != {n_train}):
        raise ValueError(
            f"runs disagree on the number of training sequences: {sorted(n_sequences)} "
            f"(the config gives N = {n_train})"
        )
    dataset.attrs.update(
        experiment=experiment.name,
        experiment_config=json.dumps(experiment.config, sort_keys=True),
        n_runs=len(experiment.points()),
        n_missing=len(missing),
        missing_runs=json.dumps(missing),
        run_git_commits=json.dumps(sorted(commits)),
        run_devices=json.dumps(sorted(devices)),
    )
    dataset.attrs["n_train_sequences"] = n_train
    dataset.attrs.update(provenance.as_attrs(provenance.collect()))
    return dataset


WINDOW_DESCRIPTION = (
    "median B_simple over the run's evaluations after step 0 up to its best one: the noise "
    "scale of the training that produced the minimum"
)


def window_b_simple(b_simple: np.ndarray, steps: np.ndarray, best_step: float) -> float:
    """Median B_simple over the evaluations with 0 < step <= best_step (NaN if none is finite).

    One window for every run, relative to its own trajectory, so that runs of different batch
    sizes and learning rates are measured comparably (seed 000 App. B reads B_simple "at relevant
    epochs"; Fig. 4 shows it changing over training).
    """
    if not np.isfinite(best_step):
        return float("nan")
    inside = b_simple[(steps > 0) & (steps <= best_step)]
    inside = inside[np.isfinite(inside)]
    return float(np.median(inside)) if inside.size else float("nan")


def aggregate_directory(experiment: Experiment, runs_dir: Path) -> xr.Dataset:
    """Aggregate ``runs_dir/<run_id>/result.nc`` for every run of the experiment."""
    paths = {run_id: Path(runs_dir) / run_id / "result.nc" for run_id in experiment.run_ids()}
    dataset = aggregate_runs(experiment, paths)
    if dataset.attrs["n_missing"]:
        print(
            f"aggregate: {dataset.attrs['n_missing']} of {dataset.attrs['n_runs']} runs of "
            f"{experiment.name!r} have no result yet (NaN in the dataset): "
            f"{', '.join(json.loads(dataset.attrs['missing_runs'])[:5])}"
            + (" ..." if dataset.attrs["n_missing"] > 5 else ""),
            file=sys.stderr,
        )
    return dataset
