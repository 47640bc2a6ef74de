"""Test helpers for experiments: configs with changes at dotted keys, and real runs of a grid."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from adamnoise.cli import main
from adamnoise.io import write_text


def changed_config(config: dict, experiment: str, **changes) -> dict:
    """A copy of ``config`` with dotted (``a__b``) keys of ``experiment`` replaced (None deletes
    the key)."""
    config = copy.deepcopy(config)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = config["experiments"][experiment]
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return config


def train_runs(experiment, corpus: Path, root: Path, skip: str) -> None:
    """Every run of ``experiment`` but ``skip`` trained by `adamnoise train` on ``corpus``, into
    ``root/runs/<run_id>/`` (run.yaml and result.nc)."""
    for point in experiment.points():
        if point.run_id == skip:
            continue
        run_dir = root / "runs" / point.run_id
        write_text(run_dir / "run.yaml", yaml.safe_dump(experiment.run_config(point, str(corpus))))
        assert main(["train", str(run_dir / "run.yaml"), "--out", str(run_dir / "result.nc")]) == 0
