"""All runs of an experiment in one xarray Dataset.

Dimensions are the grid axes (``batch_size``, ``beta1``, ``beta2``, ``lr``, ``seed``; ``beta1`` is
folded into ``beta2`` for tied-beta experiments) plus ``eval``, the evaluation index, and
``train_step``, the optimiser step (1-based; runs with fewer steps are NaN-padded). A run whose
result file is missing leaves NaN in its cells and is listed in the ``missing_runs`` attribute: a
partial sweep (a cluster run still going, a job that failed) can be looked at without a crash.

Betas along a curve (``grid.betas``, seed 004 Fig. 1) are one dimension ``point`` (the index along
the curve) instead of ``beta1`` x ``beta2``, with ``beta1`` and ``beta2`` as coordinates on it: 64
points on a curve make 64 cells, not a 64 x 64 array that is NaN off its diagonal. Product grids
are laid out as before.

Runs stop at different evaluations (patience) and batch sizes evaluate at different steps, so
every per-evaluation series comes with its own ``eval_epoch`` and ``eval_step``. ``stop_reason``
and ``best_is_last`` say whether each run trained past its minimum; ``b_simple_at_best`` (the
estimate averaged over the horizon of data before the best evaluation) is the noise scale that
the flip prediction uses (``analysis.predict_flips``), ``b_simple_exact`` its check.
``diverged_at_step`` is the first step whose training loss was non-finite or too large (NaN:
none); a run with ``training.stop_on_divergence: false`` has status diverged, stop reason cap and
its whole series.
A diverged run's ``min_val_ppl`` is NaN (its ``status`` says why; its series are kept).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from adamnoise import provenance
from adamnoise.experiment import CURVE_DIM, Experiment
from adamnoise.io import move_aside
from adamnoise.status import DIVERGED, MISSING, STATUS_CODES, STOP_CAP, STOP_CODES
from adamnoise.training.epochs import mean_batch_size
from adamnoise.training.result import EVAL_VARIABLES, STEP_VARIABLES, SUMMARY_VARIABLES

# per-run scalars copied from each result file, with the result file's metadata (result.py)
SCALARS = SUMMARY_VARIABLES
# per-evaluation series: name -> (units, description)
SERIES = {
    **{
        name: EVAL_VARIABLES[name]
        for name in ("val_ppl", "val_loss", "val_loss_se", "train_loss", "b_simple")
    },
    "eval_epoch": ("epochs", "epochs completed at the evaluation"),
    "eval_step": ("steps", "optimiser steps completed at the evaluation"),
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
    results, missing = _read_results(experiment, result_paths)
    data, seen = _stack_runs(results, shape)
    n_eval = data["val_ppl"].shape[-1]
    n_steps = data["max_update"].shape[-1]
    dataset = xr.Dataset(
        _variables(data, dims),
        coords={
            **coords,
            "eval": np.arange(n_eval),
            "epoch": ("eval", _evaluation_epochs(results, n_eval)),
            "train_step": np.arange(1, n_steps + 1),
        },
    )
    n_train = experiment.num_train_sequences
    if len(seen["n_sequences"]) > 1 or (seen["n_sequences"] and seen["n_sequences"] != {n_train}):
        raise ValueError(
            f"runs disagree on the number of training sequences: {sorted(seen['n_sequences'])} "
            f"(the config gives N = {n_train})"
        )
    dataset = _describe_coords(dataset, experiment, n_train)
    dataset.attrs.update(
        experiment=experiment.name,
        experiment_config=json.dumps(experiment.config, sort_keys=True),
        n_runs=len(experiment.points()),
        n_missing=len(missing),
        missing_runs=json.dumps(missing),
        run_git_commits=json.dumps(sorted(seen["commits"])),
        run_devices=json.dumps(sorted(seen["devices"])),
    )
    dataset.attrs["n_train_sequences"] = n_train
    dataset.attrs.update(provenance.as_attrs(provenance.collect()))
    return dataset


class UnreadableResults(ValueError):
    """Result files that do not open; they were moved aside so that the next run remakes them."""


def _read_results(
    experiment: Experiment, result_paths: Mapping[str, Path]
) -> tuple[dict[tuple[int, ...], xr.Dataset], list[str]]:
    """The result file of every grid point that has one (by grid index), and the missing run ids.

    A result file that does not open (truncated, not netCDF) is moved aside to
    ``result.nc.corrupt-<n>``, so that Snakemake retrains its run on the next invocation, and
    ``UnreadableResults`` names each file and the rule that makes it.
    """
    results: dict[tuple[int, ...], xr.Dataset] = {}
    missing: list[str] = []
    unreadable: list[str] = []
    for point in experiment.points():
        path = result_paths.get(point.run_id)
        if path is None or not Path(path).exists():
            missing.append(point.run_id)
            continue
        try:
            results[experiment.grid_index(point)] = _open_result(Path(path))
        except (OSError, ValueError, RuntimeError) as error:
            aside = move_aside(path)
            unreadable.append(
                f"{path} (made by rule {producing_rule(experiment, point.run_id)}; "
                f"moved to {aside.name}): {error}"
            )
    if unreadable:
        raise UnreadableResults(
            f"{len(unreadable)} result file(s) of {experiment.name!r} do not open; each was moved "
            "aside, so that running snakemake again retrains it:\n  " + "\n  ".join(unreadable)
        )
    return results, missing


def producing_rule(experiment: Experiment, run_id: str) -> str:
    """The workflow rule that writes a run's result: ``train``, or its pack's rule."""
    for pack_id, run_ids in experiment.packs.items():
        if run_id in run_ids:
            return f"train_pack_{experiment.name}_{pack_id}"
    return "train"


def _evaluation_epochs(results: dict, n_eval: int) -> np.ndarray:
    """The epochs of the evaluations of a run with the most of them (NaN if none)."""
    for run in results.values():
        if run.sizes.get("eval", 0) == n_eval and n_eval:
            return np.asarray(run["epoch"].values, dtype=float)
    return np.full(n_eval, np.nan)


def _stack_runs(results: dict, shape: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict]:
    """Every per-run quantity as an array over the grid (NaN / missing where a run has no result),
    and the sets of training-sequence counts, commits and devices the runs report."""
    n_eval = max((run.sizes.get("eval", 0) for run in results.values()), default=0)
    n_steps = max((run.sizes.get("train_step", 0) for run in results.values()), default=0)
    data: dict[str, np.ndarray] = {name: np.full(shape, np.nan) for name in SCALARS}
    data["diverged_at_step"] = np.full(shape, np.nan)
    data["best_is_last"] = np.zeros(shape, dtype=np.int8)
    data["stop_reason"] = np.full(shape, STOP_CODES[MISSING], dtype=np.int8)
    data["status"] = np.full(shape, STATUS_CODES[MISSING], dtype=np.int8)
    data.update({name: np.full((*shape, n_eval), np.nan) for name in SERIES})
    data.update({name: np.full((*shape, n_steps), np.nan, np.float32) for name in STEP_SERIES})
    seen: dict[str, set] = {"n_sequences": set(), "commits": set(), "devices": set()}

    for index, run in results.items():
        data["status"][index] = STATUS_CODES.get(
            str(run.attrs.get("status")), STATUS_CODES[MISSING]
        )
        for name in SCALARS:
            if name in run:
                data[name][index] = float(run[name].values)
        if str(run.attrs.get("status")) == DIVERGED:
            # its minimum is only where it stood before it blew up (status says why it is NaN)
            data["min_val_ppl"][index] = np.nan
        data["stop_reason"][index] = STOP_CODES.get(
            str(run.attrs.get("stop_reason", STOP_CAP)), STOP_CODES[MISSING]
        )
        data["best_is_last"][index] = int(run.attrs.get("best_is_last", 0))
        data["diverged_at_step"][index] = _diverged_at_step(run)
        length = run.sizes.get("eval", 0)
        for name in SERIES:
            source = RUN_SERIES.get(name, name)
            if source in run:
                data[name][index][:length] = run[source].values
        steps = run.sizes.get("train_step", 0)
        for name in STEP_SERIES:
            if name in run:
                data[name][index][:steps] = run[name].values
        if "train_sequences" in run.attrs:
            seen["n_sequences"].add(int(run.attrs["train_sequences"]))
        seen["commits"].add(str(run.attrs.get("provenance_git_commit", "unknown")))
        seen["devices"].add(str(run.attrs.get("provenance_device", "unknown")))
    return data, seen


def _variables(data: dict[str, np.ndarray], dims: tuple[str, ...]) -> dict:
    """The stacked arrays as dataset variables with their units, descriptions and flags."""
    variables = {
        name: (dims, values, {"units": SCALARS[name][0], "description": SCALARS[name][1]})
        for name, values in data.items()
        if name in SCALARS
    }
    variables["diverged_at_step"] = (
        dims,
        data["diverged_at_step"],
        {
            "units": "steps",
            "description": "first optimiser step whose training loss was non-finite or above "
            "divergence_loss (NaN: none, or no result); the run trained on past it if its "
            "stop_reason is not diverged",
        },
    )
    variables["stop_reason"] = (
        dims,
        data["stop_reason"],
        {
            "flag_values": np.array(list(STOP_CODES.values()), dtype=np.int8),
            "flag_meanings": " ".join(STOP_CODES),
            "description": "why the run stopped: passed its minimum (patience), reached its "
            "budget (cap), diverged; missing: no result",
        },
    )
    variables["best_is_last"] = (
        dims,
        data["best_is_last"],
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
        data["status"],
        {
            "flag_values": np.array(list(STATUS_CODES.values()), dtype=np.int8),
            "flag_meanings": " ".join(STATUS_CODES),
            "description": "run status: missing result, completed, or diverged",
        },
    )

    return variables


def _describe_coords(dataset: xr.Dataset, experiment: Experiment, n_train: int) -> xr.Dataset:
    """The realised batch size N/m, the curve's (beta1, beta2) and the coordinates' metadata."""
    dataset = dataset.assign_coords(
        mean_batch_size=(
            "batch_size",
            [mean_batch_size(n_train, int(b)) for b in dataset["batch_size"].values],
            {
                "units": "sequences",
                "description": "realised batch size N / m (m batches per epoch, epochs.py)",
            },
        )
    )
    if experiment.beta_curve is not None:
        dataset = dataset.assign_coords(
            beta1=(CURVE_DIM, experiment.axis_values("beta1"), {"description": BETA1_TEXT}),
            beta2=(CURVE_DIM, experiment.axis_values("beta2"), {"description": BETA2_TEXT}),
        )
        dataset[CURVE_DIM].attrs.update(
            description="index of the (beta1, beta2) point along the normal curve "
            "(grid.betas.normal_curve in experiment_config)"
        )
    dataset["batch_size"].attrs.update(
        units="sequences", description="configured sequences per step (full batch: N)"
    )
    dataset["lr"].attrs.update(description="learning rate")
    dataset["epoch"].attrs.update(
        description="epochs of the evaluations of one run with the most of them; runs differ "
        "(batch size, stopping): use eval_epoch"
    )
    return dataset


BETA1_TEXT = "first-moment (momentum) factor beta1: seed 004's gamma"
BETA2_TEXT = "second-moment factor beta2: seed 004's beta"


def _diverged_at_step(run: xr.Dataset) -> float:
    """The run's first divergent step: its attribute, or (result files written before it existed)
    its last step if it stopped as diverged; NaN if it did not diverge."""
    if "diverged_at_step" in run.attrs:
        step = int(run.attrs["diverged_at_step"])
        return float(step) if step >= 0 else float("nan")
    if str(run.attrs.get("status")) == DIVERGED:
        return float(run.sizes.get("train_step", 0))
    return float("nan")


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
