"""Packed runs (adamnoise.training.trainer with the stacked and sequential engines): each member
equals its single run, a diverging member leaves the stack and the others unchanged, a SIGKILLed
pack resumes bit-identically, the stacked Adam is Adam per member, a run with dropout draws its own
masks wherever it is packed, unpackable runs are refused naming the key.

Tolerance of stacked members against single runs: relative 1e-5 on every recorded series
(measured on this config: at most ~1.4e-6, in max_update and b_simple; validation losses ~5e-9).
Not bit-identical because vmap turns each member's matmuls into one batched matmul whose kernel
may accumulate in a different order, and the per-member gradient norms are reduced over the
stacked tensors instead of ``_foreach_norm``; the differences are float32 rounding that grows
slowly over the 46 steps. Members of the sequential engine are bit-identical to their single runs.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from test_training_support import adamnoise, tiny_run, write_tiny_corpus

from adamnoise.training.checkpoint import checkpoint_file, load_checkpoint
from adamnoise.training.config import ConfigError, RunConfig
from adamnoise.training.packing import check_packable
from adamnoise.training.result import TIMING_VARIABLES
from adamnoise.training.stacked import StackedAdam
from adamnoise.training.trainer import Trainer, train, train_pack

REPO = Path(__file__).resolve().parents[1]
PACKED_RTOL = 1e-5
# the members: different beta2 and different seeds (initialisation and data order)
MEMBERS = [(0.9, 0), (0.99, 1), (0.999, 2)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    torch.set_num_threads(1)
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus") / "pydoc-slice")


def member_raw(corpus, index: int, beta2: float, seed: int, lr: float = 3e-3, **training) -> dict:
    raw = tiny_run(corpus, seed=seed, **training)
    raw["run_id"] = f"member{index}"
    raw["optimizer"].update(beta2=beta2, lr=lr)
    return raw


def load(path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def run_pack(raws, directory: Path, name: str):
    outs = [directory / f"{name}{i}.nc" for i in range(len(raws))]
    outcomes = train_pack(
        [RunConfig.from_dict(r) for r in raws], outs, progress_stream=io.StringIO()
    )
    return outcomes, [load(out) for out in outs]


def assert_same_series(a: xr.Dataset, b: xr.Dataset, rtol: float = 0.0):
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.variables:
        if name in TIMING_VARIABLES:
            continue
        if rtol:
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol, err_msg=name)
        else:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for key in ("status", "stop_reason", "run_id", "run_config", "diverged_at_step"):
        assert a.attrs[key] == b.attrs[key], key


@pytest.mark.slow  # real training runs
def test_packed_members_equal_their_single_runs(corpus, tmp_path):
    # every measurement, the exact B_simple at the best weights included
    raws = [
        member_raw(corpus, i, b2, seed, exact_noise_scale=True)
        for i, (b2, seed) in enumerate(MEMBERS)
    ]
    outcomes, packed = run_pack(raws, tmp_path, "packed")
    assert [o.status for o in outcomes] == ["completed"] * 3 and outcomes[0].steps == 46
    singles = []
    for i, raw in enumerate(raws):
        out = tmp_path / f"single{i}.nc"
        train(RunConfig.from_dict(raw), out, progress_stream=io.StringIO())
        singles.append(load(out))
    for member, single in zip(packed, singles, strict=True):
        assert_same_series(member, single, rtol=PACKED_RTOL)
        # same format: the single run's attrs, plus where in which pack it was trained
        assert set(member.attrs) - set(single.attrs) == {"pack_size", "pack_index", "pack_engine"}
        assert member.attrs["pack_size"] == 3 and member.attrs["pack_engine"] == "stacked"
        # before any update the weights are the single run's: the first evaluation is exact
        assert member["val_loss"].values[0] == single["val_loss"].values[0]
        assert np.isfinite(float(member["b_simple_exact"])) and float(member["test_ppl"]) > 1
    # the members really differ (their own seed and beta2), so the comparison is not vacuous
    assert not np.allclose(packed[0]["loss"].values, packed[1]["loss"].values, rtol=1e-3)


def test_diverging_member_leaves_the_others_unchanged(corpus, tmp_path):
    calm = [member_raw(corpus, i, b2, seed, epochs=1) for i, (b2, seed) in enumerate(MEMBERS)]
    wild = [dict(r) for r in calm]
    wild[1] = member_raw(corpus, 1, MEMBERS[1][0], MEMBERS[1][1], lr=50.0, epochs=1)
    _, calm_results = run_pack(calm, tmp_path, "calm")
    outcomes, wild_results = run_pack(wild, tmp_path, "wild")
    assert outcomes[1].status == "diverged" and wild_results[1].attrs["stop_reason"] == "diverged"
    assert outcomes[1].steps < 23 and wild_results[1].sizes["train_step"] == outcomes[1].steps
    for index in (0, 2):
        assert outcomes[index].status == "completed" and outcomes[index].steps == 23
        # bit-identical although the diverged member left the stack (rows do not mix)
        assert_same_series(wild_results[index], calm_results[index])


def test_a_shrunk_stack_resumes_from_its_checkpoint(corpus, tmp_path):
    """Member 1 diverges and leaves the stack; a checkpoint then, resumed in a new process-like
    trainer, finishes every member as the uninterrupted pack does."""
    from adamnoise.training.progress import Progress

    raws = [member_raw(corpus, i, b2, seed, epochs=1) for i, (b2, seed) in enumerate(MEMBERS)]
    raws[1] = member_raw(corpus, 1, MEMBERS[1][0], MEMBERS[1][1], lr=50.0, epochs=1)
    configs = [RunConfig.from_dict(r) for r in raws]
    outs = [tmp_path / f"r{i}.nc" for i in range(3)]
    trainer = Trainer(configs, outs, progress_stream=io.StringIO())
    progress = Progress("pack", trainer.total_steps, 1, stream=io.StringIO())
    for index in range(3):
        trainer._evaluate_and_record(index, progress)  # as run() starts
    steps_after = 0
    while steps_after < 2:  # until two steps of the shrunk stack
        steps_after += not trainer.members[1].active
        for index, loss, diverged in trainer.train_step():
            trainer._after_step(index, loss, diverged, progress, lambda index: 0.0)
    assert trainer.engine.rows == [0, 2]
    trainer.save_checkpoint()
    resumed = Trainer(configs, outs, resume=True, progress_stream=io.StringIO())
    assert resumed.engine.rows == [0, 2] and not resumed.members[1].active
    resumed.run()
    _, whole = run_pack(raws, tmp_path, "whole")
    for out, uninterrupted in zip(outs, whole, strict=True):
        assert_same_series(load(out), uninterrupted)


def test_a_stopped_member_leaves_the_stack(corpus):
    raws = [member_raw(corpus, i, b2, seed, epochs=1) for i, (b2, seed) in enumerate(MEMBERS)]
    trainer = Trainer([RunConfig.from_dict(r) for r in raws], ["a.nc", "b.nc", "c.nc"],
                      progress_stream=io.StringIO())  # fmt: skip
    engine = trainer.engine
    assert engine.kind == "stacked" and [p.shape[0] for p in engine.params][:1] == [3]
    trainer.train_step()
    kept = {
        name: p[2].detach().clone() for name, p in zip(engine.names, engine.params, strict=True)
    }
    engine.drop(1)
    trainer.members[1].active = False
    assert engine.rows == [0, 2] and {p.shape[0] for p in engine.params} == {2}
    assert {v.shape[0] for v in engine.optimizer.exp_avg} == {2}
    for name, p in zip(engine.names, engine.params, strict=True):
        assert torch.equal(p[1], kept[name])  # member 2 moved to row 1 unchanged
    outcomes = trainer.train_step()
    assert [index for index, _, _ in outcomes] == [0, 2]


def test_stacked_adam_is_adam_per_member():
    from adamnoise.optim import build_optimizer

    torch.manual_seed(0)
    settings = [
        {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        {"lr": 3e-3, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6},
        {"lr": 1e-1, "beta1": 0.0, "beta2": 0.99, "eps": 1e-3},
    ]
    cfgs = [{"name": "adamw", "weight_decay": 0.1, **s} for s in settings]
    initial = [torch.randn(3, 5, 4), torch.randn(3, 7)]
    stacked = [p.clone() for p in initial]
    batched = StackedAdam(stacked, cfgs)
    singles = [[p[k].clone().requires_grad_() for p in initial] for k in range(3)]
    optimizers = [build_optimizer(params, cfg) for params, cfg in zip(singles, cfgs, strict=True)]
    torch_reference = [p[0].clone().requires_grad_() for p in initial]
    torch_adamw = torch.optim.AdamW(
        torch_reference, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1
    )
    for step in range(20):
        grads = [torch.randn_like(p) for p in initial]
        multiplier = 1.0 / (1 + step)  # a schedule: the lr changes every step
        for p, g in zip(stacked, grads, strict=True):
            p.grad = g
        batched.step(multiplier)
        for k, (params, optimizer) in enumerate(zip(singles, optimizers, strict=True)):
            for group in optimizer.param_groups:
                group["lr"] = settings[k]["lr"] * multiplier
            for p, g in zip(params, grads, strict=True):
                p.grad = g[k].clone()
            optimizer.step()
        for group in torch_adamw.param_groups:
            group["lr"] = 1e-2 * multiplier
        for p, g in zip(torch_reference, grads, strict=True):
            p.grad = g[0].clone()
        torch_adamw.step()
    for k in range(3):
        for packed, single in zip(stacked, singles[k], strict=True):
            torch.testing.assert_close(packed[k], single.detach(), rtol=1e-6, atol=1e-7)
    for packed, reference in zip(stacked, torch_reference, strict=True):
        torch.testing.assert_close(packed[0], reference.detach(), rtol=1e-6, atol=1e-7)

    # after member 1 leaves, the others go on as before: rows 0 and 1 are members 0 and 2
    rows = torch.tensor([0, 2])
    kept = [p[rows].clone() for p in stacked]
    batched.keep(rows, kept)
    for p in kept:
        p.grad = torch.randn_like(p)
    for k, member in enumerate((0, 2)):
        for p, single in zip(kept, singles[member], strict=True):
            single.grad = p.grad[k].clone()
        for group in optimizers[member].param_groups:
            group["lr"] = settings[member]["lr"]
        optimizers[member].step()
    batched.step(1.0)
    for k, member in enumerate((0, 2)):
        for packed, single in zip(kept, singles[member], strict=True):
            torch.testing.assert_close(packed[k], single.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # real training runs
def test_every_optimiser_packs_in_sequence_bit_identical_to_its_single_runs(corpus, tmp_path):
    raws = [member_raw(corpus, i, 0.99, seed, epochs=1) for i, seed in enumerate((0, 1))]
    for raw in raws:
        raw["optimizer"] = {"name": "signum", "lr": 1e-3, "beta1": 0.9}
    outcomes, packed = run_pack(raws, tmp_path, "signum")
    assert [o.status for o in outcomes] == ["completed"] * 2
    for i, (raw, member) in enumerate(zip(raws, packed, strict=True)):
        assert member.attrs["pack_engine"] == "sequential"
        train(RunConfig.from_dict(raw), tmp_path / f"single{i}.nc", progress_stream=io.StringIO())
        assert_same_series(member, load(tmp_path / f"single{i}.nc"))


@pytest.mark.slow  # real training runs
def test_a_run_with_dropout_draws_its_own_masks_in_any_pack(corpus, tmp_path):
    """The same run (seed 1) packed first with seed 0 and then, second of three, with seeds 2
    and 3: its results are bit-identical both times, and equal its single run's."""

    def with_dropout(index: int, seed: int) -> dict:
        raw = member_raw(corpus, index, 0.99, seed, epochs=1)
        raw["run_id"] = f"seed{seed}"
        raw["model"]["dropout"] = 0.3
        return raw

    _, first = run_pack([with_dropout(0, 0), with_dropout(1, 1)], tmp_path, "first")
    _, second = run_pack(
        [with_dropout(0, 2), with_dropout(1, 3), with_dropout(2, 1)], tmp_path, "second"
    )
    assert first[1].attrs["pack_engine"] == "sequential"
    assert_same_series(first[1], second[2])
    out = tmp_path / "single.nc"
    train(RunConfig.from_dict(with_dropout(0, 1)), out, progress_stream=io.StringIO())
    assert_same_series(first[1], load(out))
    # dropout really draws: another seed's run differs, and so does the run without dropout
    assert not np.array_equal(first[0]["loss"].values, first[1]["loss"].values)
    plain = member_raw(corpus, 0, 0.99, 1, epochs=1)
    train(RunConfig.from_dict(plain), tmp_path / "plain.nc", progress_stream=io.StringIO())
    assert not np.array_equal(load(tmp_path / "plain.nc")["loss"].values, first[1]["loss"].values)


def test_unpackable_runs_are_refused_naming_the_key(corpus):
    base = member_raw(corpus, 0, 0.99, 0)
    other = member_raw(corpus, 1, 0.99, 0, batch_size=4)
    with pytest.raises(ConfigError, match=r"^training\.batch_size: .*member1"):
        check_packable([RunConfig.from_dict(base), RunConfig.from_dict(other)])
    sgd = member_raw(corpus, 1, 0.99, 0)
    sgd["optimizer"] = {"name": "sgd", "lr": 0.1}
    with pytest.raises(ConfigError, match=r"^optimizer\.name: .*member1"):
        check_packable([RunConfig.from_dict(base), RunConfig.from_dict(sgd)])
    # seed, lr and betas may differ
    check_packable([RunConfig.from_dict(base), RunConfig.from_dict(member_raw(corpus, 1, 0.9, 3))])


@pytest.mark.slow  # real training runs
def test_sigkilled_pack_resumes_bit_identical(corpus, tmp_path):
    raws = [
        member_raw(corpus, i, b2, seed, epochs=4, checkpoint_every=4, eval_every=1.0)
        for i, (b2, seed) in enumerate(MEMBERS)
    ]
    configs = []
    for i, raw in enumerate(raws):
        configs.append(tmp_path / f"member{i}.yaml")
        configs[-1].write_text(yaml.safe_dump(raw))
    outs = [tmp_path / f"killed{i}.nc" for i in range(3)]
    args = ["train-pack", *map(str, configs), "--out", *map(str, outs)]
    checkpoint = checkpoint_file(f"{outs[0]}.pack.ckpt")
    proc = adamnoise(*args)
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None, "pack ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)  # land somewhere after the first checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    killed_at = load_checkpoint(checkpoint.parent)["step"]
    assert 0 < killed_at < 92 and not any(out.exists() for out in outs)

    resumed = adamnoise(*args, "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"resumed from step {killed_at}" in stderr
    assert not checkpoint.parent.exists()
    _, uninterrupted = run_pack(raws, tmp_path, "whole")
    for out, whole in zip(outs, uninterrupted, strict=True):
        assert_same_series(load(out), whole)


def packed_workflow_config(tmp_path: Path, pack: int, optimizer: str = "adam") -> Path:
    from test_workflow import SMALLEST

    config = yaml.safe_load(SMALLEST.read_text())
    experiment = config["experiments"]["smallest"]
    experiment["pack"] = pack
    experiment["grid"].update(beta2=[0.9, 0.99, 0.999], seed=[0, 1])  # 6 runs per batch size
    if optimizer != "adam":  # an optimiser without eps and beta2
        experiment["optimizer"] = {"name": optimizer}
        experiment["grid"]["beta2"] = [0.999]
    experiment["figures"] = []
    config["active"] = ["smallest"]
    config["comparisons"] = {}
    path = tmp_path / "packed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow  # real training runs
def test_workflow_plans_one_job_per_pack_and_trains_a_pack(tmp_path):
    from test_workflow import copy_workflow, planned_jobs, snakemake

    workdir = copy_workflow(tmp_path / "wf")
    config = packed_workflow_config(tmp_path, pack=4)
    jobs = planned_jobs(workdir, "--configfile", str(config))
    # 2 batch sizes x 6 runs in packs of <= 4: 4 + 2 per batch size
    # one rule per pack, whose outputs are its members' results
    packs = {rule: count for rule, count in jobs.items() if rule.startswith("train_pack_")}
    assert sorted(packs) == [
        f"train_pack_smallest_bs{b}_lr0p001_p{i}" for b in (16, 8) for i in (0, 1)
    ]
    assert set(packs.values()) == {1} and "train" not in jobs and jobs["run_config"] == 12

    snakemake(workdir, "results/smallest/packs/bs8_lr0p001_p1.done", "--configfile", str(config))
    marker = workdir / "results/smallest/packs/bs8_lr0p001_p1.done"
    listed = marker.read_text().split()
    assert len(listed) == 2
    for result in listed:
        ds = load(workdir / result)
        assert ds.attrs["pack_size"] == 2 and ds.attrs["status"] == "completed"

    # the archive check retrains a packed run with its pack and reproduces it bit for bit
    from test_workflow import BIN

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    verify = subprocess.run(
        [str(BIN / "adamnoise"), "verify", "results", "--sample", "1"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ok") and "bit-identical" in verify.stdout

    # every optimiser packs (SGD in the sequential engine)
    sgd = packed_workflow_config(tmp_path, pack=4, optimizer="sgd")
    planned = planned_jobs(workdir, "--configfile", str(sgd))
    assert any(rule.startswith("train_pack_") for rule in planned)
