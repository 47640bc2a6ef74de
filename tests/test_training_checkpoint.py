"""Checkpoints hold data only: they load with ``weights_only=True``, a planted pickle never runs,
and a checkpoint that does not load is moved aside with a warning naming it while the run starts
over (single runs and packs)."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from test_training_support import tiny_run, write_tiny_corpus

from adamnoise.training.checkpoint import (
    UnreadableCheckpointWarning,
    checkpoint_file,
    load_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from adamnoise.training.config import RunConfig
from adamnoise.training.trainer import Trainer, train, train_pack


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    torch.set_num_threads(1)
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus") / "pydoc-slice")


class Payload:
    """What a hostile checkpoint holds: unpickling it would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_trainer_checkpoint_loads_with_weights_only_and_restores_every_rng(corpus, tmp_path):
    config = RunConfig.from_dict(tiny_run(corpus, epochs=1, checkpoint_every=5, test_at_best=True))
    trainer = Trainer(config, tmp_path / "r.nc", progress_stream=io.StringIO())
    for _ in range(3):
        trainer.train_step()
    trainer._evaluate_and_record(0, trainer_progress())
    path = trainer.save_checkpoint()
    state = torch.load(path, weights_only=True)  # raises if anything in it is more than data
    assert state["step"] == 3 and state["members"][0]["history"]["eval_step"] == [3]

    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_states(state["rng"])
    torch.rand(1), np.random.rand(5), random.random()  # move on ...
    set_rng_states(state["rng"])  # ... and back
    restored = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(restored[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(restored[1], expected[1])
    assert restored[2] == expected[2]


def trainer_progress():
    from adamnoise.training.progress import Progress

    return Progress("r", 10, 5, stream=io.StringIO())


def test_a_planted_pickle_does_not_run_and_is_moved_aside(tmp_path):
    marker = tmp_path / "PWNED"
    directory = tmp_path / "result.nc.ckpt"
    directory.mkdir()
    torch.save({"step": 1, "payload": Payload(marker)}, checkpoint_file(directory))
    with pytest.warns(UnreadableCheckpointWarning, match=str(checkpoint_file(directory))):
        assert load_checkpoint(directory) is None
    assert not marker.exists()
    assert not checkpoint_file(directory).exists()
    assert (directory / "checkpoint.pt.corrupt-1").exists()


def test_a_truncated_checkpoint_is_moved_aside_and_the_run_starts_over(corpus, tmp_path):
    raw = tiny_run(corpus, epochs=1, checkpoint_every=5)
    out = tmp_path / "r.nc"
    directory = Path(f"{out}.ckpt")
    for n in (1, 2):  # a second bad checkpoint does not overwrite the first one set aside
        path = save_checkpoint(directory, {"step": 7, "rng": rng_states()})
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.warns(UnreadableCheckpointWarning, match=f"moved it to .*corrupt-{n}"):
            trainer = Trainer(
                RunConfig.from_dict(raw), out, resume=True, progress_stream=io.StringIO()
            )
        assert trainer.step == 0 and trainer.resumed_from is None
    trainer.run()
    with xr.open_dataset(out) as ds:
        assert ds.attrs["status"] == "completed"
    assert sorted(p.name for p in directory.iterdir()) == [
        "checkpoint.pt.corrupt-1",
        "checkpoint.pt.corrupt-2",
    ]


def test_a_pack_with_a_truncated_checkpoint_starts_over(corpus, tmp_path):
    raws = []
    for index, seed in enumerate((0, 1)):
        raw = tiny_run(corpus, seed=seed, epochs=1, checkpoint_every=5)
        raw["run_id"] = f"member{index}"
        raws.append(raw)
    outs = [tmp_path / f"m{i}.nc" for i in range(2)]
    directory = tmp_path / "pack.ckpt"
    checkpoint_file(directory).parent.mkdir()
    checkpoint_file(directory).write_bytes(b"PK\x03\x04 not a whole zip")
    with pytest.warns(UnreadableCheckpointWarning, match="pack.ckpt/checkpoint.pt"):
        outcomes = train_pack(
            [RunConfig.from_dict(raw) for raw in raws],
            outs,
            checkpoint_dir=directory,
            resume=True,
            progress_stream=io.StringIO(),
        )
    assert len(outcomes) == 2 and all(out.exists() for out in outs)
    assert (directory / "checkpoint.pt.corrupt-1").exists()


def test_train_resumes_a_run_from_a_plain_data_checkpoint(corpus, tmp_path):
    """The whole round trip under weights_only: a resumed run equals an uninterrupted one."""
    raw = tiny_run(corpus, epochs=1, checkpoint_every=5)
    out = tmp_path / "r.nc"
    trainer = Trainer(RunConfig.from_dict(raw), out, progress_stream=io.StringIO())
    for _ in range(5):
        trainer.train_step()
    trainer.save_checkpoint()
    train(RunConfig.from_dict(raw), out, resume=True, progress_stream=io.StringIO())
    train(RunConfig.from_dict(raw), tmp_path / "u.nc", progress_stream=io.StringIO())
    with xr.open_dataset(out) as resumed, xr.open_dataset(tmp_path / "u.nc") as whole:
        np.testing.assert_array_equal(resumed["loss"].values, whole["loss"].values)


def test_checkpoints_by_the_clock_and_on_sigterm_then_resumes_bit_identical(corpus, tmp_path):
    """No step-count checkpoints: the first one comes from the wall clock; SIGTERM (Slurm's time
    limit) checkpoints after the current step and exits 143; --resume finishes the run exactly."""
    raw = tiny_run(corpus, epochs=6, checkpoint_every=0)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "r.nc"
    checkpoint = checkpoint_file(f"{out}.ckpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "adamnoise", "train", str(config), "--out", str(out)]
    args += ["--checkpoint-minutes", "0.002"]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    stopped_at = load_checkpoint(checkpoint.parent)["step"]
    assert f"SIGTERM: checkpointed at step {stopped_at}" in stderr and not out.exists()

    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {stopped_at}" in resumed.stderr
    train(RunConfig.from_dict(raw), tmp_path / "u.nc", progress_stream=io.StringIO())
    with xr.open_dataset(out) as a, xr.open_dataset(tmp_path / "u.nc") as b:
        for name in ("loss", "val_loss", "b_simple", "max_update"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_a_checkpoint_of_another_layout_is_set_aside(corpus, tmp_path):
    raw = tiny_run(corpus, epochs=1)
    out = tmp_path / "r.nc"
    config = RunConfig.from_dict(raw).to_dict()
    # the layout before the one run loop: one run's config, no format
    save_checkpoint(f"{out}.ckpt", {"run_config": config, "step": 3, "rng": rng_states()})
    with pytest.warns(UnreadableCheckpointWarning, match="another version of the trainer"):
        trainer = Trainer(RunConfig.from_dict(raw), out, resume=True, progress_stream=io.StringIO())
    assert trainer.step == 0 and (Path(f"{out}.ckpt") / "checkpoint.pt.corrupt-1").exists()
