"""Experiments as configuration: an experiment config expands into a grid of runs.

An experiment names a dataset, a model, an optimiser, a schedule, training settings and a
``grid`` whose axes are ``batch_size``, ``beta1``, ``beta2``, ``lr`` and ``seed`` (each a list).
Every grid point is one run. Its id is built from its own hyperparameters only, so adding a
value to an axis adds runs without renaming the others::

    bs64_b1-0.9_b2-0.999_lr-0.001_s0

With ``tie_betas: true`` (seed 003's beta1 = beta2 setting) the ``beta1`` axis is ignored and every
run uses beta1 = beta2.

Betas along a curve (seed 004 Fig. 1). Instead of the ``beta1`` and ``beta2`` axes a grid may give
``betas: {normal_curve: {through: {beta1, beta2}, beta1_range: [start, stop], points: P}}``: the
(beta1, beta2) pairs are P points uniform in arc length on the section of the normal curve
2 beta2^3 + beta1^3 = const through the given point whose beta1 runs from start to stop
(``adamnoise.theory.stability.normal_curve_section``), crossed with the other axes. Run ids keep
their pattern; two points whose betas format alike (``format_value``) are rejected naming
``points``. The aggregate then has a ``point`` dimension (index along the curve, with ``beta1``
and ``beta2`` as coordinates on it) instead of ``beta1`` x ``beta2``. Such runs must train to their
cap, B- runs included: ``training.stop_on_divergence: false`` and no ``patience``.

Batch sizes count training sequences. ``N``, the number of training sequences, is known when the
config is parsed (``adamnoise.data.corpus.train_token_count``, ``seq_len``, the model's context and
``train_sequences``): ``batch_size: full`` resolves to ``N``, and a batch size above ``N`` or one
that no whole number of batches per epoch realises within 10 % (``training/epochs.py``) is
rejected, naming the experiment and the value. An optional ``budget`` sets each run's epoch cap
from its batch size (``epochs_for_batch``).

This module is the grid model only: an ``Experiment`` trusts its config. ``load_experiments`` in
``adamnoise.workflow_config`` checks the config (the schema, then the rules across keys and every
run config) before it builds them.
"""

from __future__ import annotations

import copy
import functools
import itertools
from dataclasses import dataclass
from typing import Any

from adamnoise.data.corpus import train_token_count
from adamnoise.models.presets import context_len_of
from adamnoise.optim.factory import OPTIMIZER_PARAMETERS
from adamnoise.training.epochs import epochs_for_batch, mean_batch_size, sequence_count

GRID_AXES = ("batch_size", "beta1", "beta2", "lr", "seed")
# the aggregate's dimension of a curve of (beta1, beta2) pairs: the index of the point on the curve
CURVE_DIM = "point"
FULL_BATCH = "full"  # grid value of batch_size meaning b = N (one batch per epoch)
BUDGET_KEYS = ("epochs", "reference_batch_size", "exponent")
BETA_AXES = ("beta1", "beta2")
# keys of the optimizer and training sections that the grid sets for every run
GRID_OWNED = {"optimizer": ("lr", "beta1", "beta2"), "training": ("batch_size", "seed")}

# a run id names its grid point (GridPoint.run_id); the workflow's run_id wildcard matches this
RUN_ID_PATTERN = r"bs\d+_b1-[^_/]+_b2-[^_/]+_lr-[^_/]+_s\d+"


def format_value(value: float | int) -> str:
    """Compact, stable text for a hyperparameter: 0.999 -> '0.999', 3.16e-4 -> '0.000316'."""
    if isinstance(value, bool):
        raise TypeError("booleans are not hyperparameter values")
    if isinstance(value, int):
        return str(value)
    return format(float(value), ".6g")


@dataclass(frozen=True)
class GridPoint:
    """One run of an experiment."""

    batch_size: int
    beta1: float
    beta2: float
    lr: float
    seed: int

    @property
    def run_id(self) -> str:
        """``bs<b>_b1-<beta1>_b2-<beta2>_lr-<lr>_s<seed>``: it matches ``RUN_ID_PATTERN``."""
        return (
            f"bs{self.batch_size}_b1-{format_value(self.beta1)}_b2-{format_value(self.beta2)}"
            f"_lr-{format_value(self.lr)}_s{self.seed}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {axis: getattr(self, axis) for axis in GRID_AXES}


@dataclass(frozen=True)
class Experiment:
    name: str
    config: dict[str, Any]

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def tie_betas(self) -> bool:
        return bool(self.config.get("tie_betas", False))

    @property
    def figures(self) -> list[str]:
        return list(self.config.get("figures", []))

    @property
    def beta_curve(self) -> dict[str, Any] | None:
        """``grid.betas.normal_curve`` (betas along a curve), or None for a beta1 x beta2 grid."""
        betas = self.config["grid"].get("betas")
        return betas.get("normal_curve") if isinstance(betas, dict) else None

    @functools.cached_property
    def curve_pairs(self) -> list[tuple[float, float]]:
        """The (beta1, beta2) of every point of the curve, in order along it (plain floats)."""
        # here, not at the top: it imports scipy (a second at every Snakemake start), and only
        # experiments with a curve need it
        from adamnoise.theory.stability import normal_curve_section

        curve = self.beta_curve
        if curve is None:
            return []
        through = curve["through"]
        beta1, beta2 = normal_curve_section(
            through["beta1"], through["beta2"], tuple(curve["beta1_range"]), curve["points"]
        )
        return [(float(b1), float(b2)) for b1, b2 in zip(beta1, beta2, strict=True)]

    @functools.cached_property
    def available_train_sequences(self) -> int:
        """Training sequences of the whole training split (before ``train_sequences``)."""
        tokens = train_token_count(self.dataset)
        return sequence_count(tokens, self.config["seq_len"], context_len_of(self.config["model"]))

    @property
    def num_train_sequences(self) -> int:
        """N of the theory: the training sequences every epoch visits once."""
        return self.config.get("train_sequences") or self.available_train_sequences

    def axis_values(self, axis: str) -> list:
        if axis == CURVE_DIM:
            return list(range(len(self.curve_pairs)))
        if axis in BETA_AXES and self.beta_curve is not None:  # one value per point of the curve
            return [pair[BETA_AXES.index(axis)] for pair in self.curve_pairs]
        if axis == "beta1" and self.tie_betas:
            return list(self.config["grid"]["beta2"])
        if axis == "batch_size":
            n = self.num_train_sequences
            return [n if b == FULL_BATCH else b for b in self.config["grid"]["batch_size"]]
        return list(self.config["grid"][axis])

    def epochs_for(self, batch_size: int) -> float | None:
        """The run's epoch cap under ``budget`` (None: ``training.epochs`` applies)."""
        budget = self.config.get("budget")
        if budget is None:
            return None
        realised = mean_batch_size(self.num_train_sequences, batch_size)
        return round(epochs_for_batch(realised, *(budget[key] for key in BUDGET_KEYS)), 3)

    def grid_dims(self) -> tuple[str, ...]:
        """The dimensions of the aggregated dataset (beta1 folds into beta2 when tied; a curve of
        betas is one ``point`` dimension)."""
        if self.beta_curve is not None:
            return ("batch_size", CURVE_DIM, "lr", "seed")
        return tuple(axis for axis in GRID_AXES if not (axis == "beta1" and self.tie_betas))

    def grid_index(self, point: GridPoint) -> tuple[int, ...]:
        """Where a run sits in the aggregate: its index along every one of ``grid_dims()``."""
        index = []
        for dim in self.grid_dims():
            if dim == CURVE_DIM:
                index.append(self.curve_pairs.index((point.beta1, point.beta2)))
            else:
                index.append(self.axis_values(dim).index(getattr(point, dim)))
        return tuple(index)

    def points(self) -> list[GridPoint]:
        return list(self._points_by_id.values())

    @functools.cached_property
    def _points_by_id(self) -> dict[str, GridPoint]:
        return {point.run_id: point for point in self._expand_grid()}

    def _expand_grid(self) -> list[GridPoint]:
        if self.beta_curve is not None:
            combos = itertools.product(
                self.axis_values("batch_size"),
                self.curve_pairs,
                self.axis_values("lr"),
                self.axis_values("seed"),
            )
            return [GridPoint(b, b1, b2, lr, s) for b, (b1, b2), lr, s in combos]
        axes = {axis: self.axis_values(axis) for axis in GRID_AXES}
        if self.tie_betas:
            combos = itertools.product(axes["batch_size"], axes["beta2"], axes["lr"], axes["seed"])
            return [GridPoint(b, beta, beta, lr, s) for b, beta, lr, s in combos]
        combos = itertools.product(*(axes[axis] for axis in GRID_AXES))
        return [GridPoint(*combo) for combo in combos]

    def run_ids(self) -> list[str]:
        return [point.run_id for point in self.points()]

    @property
    def run_ids_are_distinct(self) -> bool:
        """False when two grid points format to the same run id (``format_value``)."""
        return len(self._points_by_id) == len(self._expand_grid())

    @property
    def pack_size(self) -> int | None:
        """``pack: K``: train the runs in packs of at most K (None: one job per run)."""
        return self.config.get("pack")

    @functools.cached_property
    def packs(self) -> dict[str, list[str]]:
        """Pack id -> run ids: the runs of one batch size and one lr, in grid order, cut into
        packs of <= K.

        Within a pack the runs differ only in seed and betas (training/packing.py), and they stop
        at about the same time: one lr sets the pace. Ids are ``bs<b>_lr<lr>_p<i>`` with the lr's
        ``.`` written ``p`` (``bs8_lr0p001_p0``); adding a batch size or an lr leaves the other
        packs as they are, adding a seed or a beta may regroup.
        """
        if self.pack_size is None:
            return {}
        groups: dict[tuple[int, float], list[str]] = {}
        for point in self.points():
            groups.setdefault((point.batch_size, point.lr), []).append(point.run_id)
        packs = {}
        for (batch_size, lr), run_ids in groups.items():
            for i in range(0, len(run_ids), self.pack_size):
                pack_id = f"bs{batch_size}_lr{str(lr).replace('.', 'p')}_p{i // self.pack_size}"
                packs[pack_id] = run_ids[i : i + self.pack_size]
        return packs

    def point(self, run_id: str) -> GridPoint:
        try:
            return self._points_by_id[run_id]
        except KeyError:
            raise KeyError(f"experiment {self.name!r} has no run {run_id!r}") from None

    def run_config(self, point: GridPoint, corpus_dir: str) -> dict[str, Any]:
        """The complete config of one run, as ``adamnoise train`` reads it."""
        cfg = self.config
        optimizer = {**copy.deepcopy(cfg["optimizer"]), "lr": point.lr}
        for axis in optimizer_betas(optimizer["name"]):
            optimizer[axis] = getattr(point, axis)
        training = {
            **copy.deepcopy(cfg.get("training", {})),
            "batch_size": point.batch_size,
            "seed": point.seed,
        }
        epochs = self.epochs_for(point.batch_size)
        if epochs is not None:
            training["epochs"] = epochs
        data = {"corpus": corpus_dir, "seq_len": cfg["seq_len"]}
        if cfg.get("train_sequences") is not None:
            data["train_sequences"] = cfg["train_sequences"]
        return {
            "run_id": f"{self.name}/{point.run_id}",
            "data": data,
            "model": copy.deepcopy(cfg["model"]),
            "optimizer": optimizer,
            "schedule": copy.deepcopy(cfg.get("schedule", {"name": "constant"})),
            "training": training,
        }


def corpus_dir(results: str, dataset: str) -> str:
    return f"{results}/data/{dataset}"


def optimizer_betas(name: str) -> tuple[str, ...]:
    """The beta axes an optimiser takes: beta1 is the momentum of every optimiser that has one,
    beta2 the second-moment factor (SGD has no beta2, SignSGD neither). An unknown name takes
    both, so that its config check reports the name rather than a beta."""
    accepted = OPTIMIZER_PARAMETERS.get(name, set(BETA_AXES))
    return tuple(axis for axis in BETA_AXES if axis in accepted)
