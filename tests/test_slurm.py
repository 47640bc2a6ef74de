"""The workflow on a real (single-node, throw-away) Slurm cluster, through the cluster profile.

The cluster comes from tests/slurm_cluster.py (Debian's slurmctld, slurmd, slurmdbd + MariaDB,
munged; two fake GPUs). Every snakemake call runs under a hard timeout: on expiry its whole process
group is SIGKILLed (snakemake ignores SIGTERM while it waits for jobs), the cluster's jobs are
cancelled and the workflow lock removed, so a hang costs one test, not the CI job.

Run: `bash .ci/install-slurm.sh` (once, as root), then `pytest -m slurm tests/test_slurm.py`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from slurm_cluster import SlurmCluster, slurm_cluster_fixture

from adamnoise.training.result import TIMING_VARIABLES

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CLUSTER_PROFILE = REPO / "profiles" / "slurm"

# Test-only overrides of the cluster profile for the toy workflows, whose jobs take a few seconds:
# first status query after 1 s instead of 20 s, and no minute-long wait for missing outputs.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "3")


@pytest.fixture(scope="session")
def slurm_cluster():
    yield from slurm_cluster_fixture()


def workflow_env(cluster: SlurmCluster) -> dict[str, str]:
    """The cluster's client environment, with this venv's commands (adamnoise) on PATH: jobs
    inherit the submitting environment (sbatch --export=ALL)."""
    env = cluster.env
    env["PATH"] = f"{SNAKEMAKE.parent}{os.pathsep}{env['PATH']}"
    return env


class Snakemake:
    """`snakemake ARGS` in `workdir`, with the cluster's environment, in the background and in its
    own process group, so that a hard kill reaches its children (sbatch, squeue) too."""

    def __init__(self, cluster: SlurmCluster, workdir: Path, *args: str):
        self.cluster = cluster
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [str(SNAKEMAKE), *args],
            cwd=workdir,
            env=workflow_env(cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait(self, timeout: float) -> subprocess.CompletedProcess:
        """Its exit status and output; after `timeout` s it is killed and the test fails."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.proc.communicate()
            pytest.fail(f"snakemake did not finish within {timeout} s: {self.proc.args}\n{out}")
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, "")

    def kill(self) -> None:
        """If still running: SIGKILL it and its children, cancel the cluster's jobs (this
        test's only), and remove the workflow lock that a killed snakemake leaves behind."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.cluster.run("scancel", "--full", "--partition=debug", check=False)
        shutil.rmtree(self.workdir / ".snakemake" / "locks", ignore_errors=True)


def run_snakemake(
    cluster: SlurmCluster, workdir: Path, *args: str, timeout: float = 150
) -> subprocess.CompletedProcess:
    """Run snakemake through the cluster profile, with fast polling, and wait for it."""
    return Snakemake(
        cluster, workdir, "--profile", str(CLUSTER_PROFILE), *FAST_POLLING, *args
    ).wait(timeout)


def submitted_job_ids(snakemake_output: str) -> dict[str, str]:
    """Slurm job id -> rule, from the plugin's 'Job N has been submitted with SLURM jobid' lines."""
    return dict(
        re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", snakemake_output)
    )


def write_snakefile(workdir: Path, text: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(textwrap.dedent(text))


# ---------------------------------------------------------------------------- the cluster itself


def test_gpu_job_gets_a_gpu_and_sacct_reports_it(slurm_cluster, tmp_path):
    write_snakefile(
        tmp_path,
        """
        rule all:
            input: "gpu.txt", "cpu.txt"

        rule gpu_job:
            output: "gpu.txt"
            resources: gpu=1, mem_mb=100, runtime=2
            shell: "echo $SLURM_JOB_ID ${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

        rule cpu_job:
            output: "cpu.txt"
            resources: mem_mb=100, runtime=2
            shell: "echo $SLURM_JOB_ID ${{CUDA_VISIBLE_DEVICES:-none}} > {output}"
        """,
    )
    result = run_snakemake(slurm_cluster, tmp_path, timeout=90)
    assert result.returncode == 0, result.stdout

    gpu_job_id, gpu_devices = (tmp_path / "gpu.txt").read_text().split()
    cpu_job_id, cpu_devices = (tmp_path / "cpu.txt").read_text().split()
    assert re.fullmatch(r"\d+", gpu_devices), "a gpu=1 job must see one CUDA device"
    assert int(gpu_devices) in range(slurm_cluster.n_gpus)
    assert cpu_devices == "none", "a job without gpu must not see a GPU"
    # the jobs ran under Slurm, as the jobs the plugin says it submitted
    assert submitted_job_ids(result.stdout) == {gpu_job_id: "gpu_job", cpu_job_id: "cpu_job"}

    records = {
        r["JobID"]: r
        for r in slurm_cluster.sacct(gpu_job_id, cpu_job_id, fields="JobID,State,AllocTRES")
    }
    assert records[gpu_job_id]["State"] == "COMPLETED"
    assert records[cpu_job_id]["State"] == "COMPLETED"
    assert "gres/gpu=1" in records[gpu_job_id]["AllocTRES"]
    assert "gres/gpu" not in records[cpu_job_id]["AllocTRES"]


def test_transient_failure_is_retried_and_permanent_failure_reported(slurm_cluster, tmp_path):
    write_snakefile(
        tmp_path,
        """
        rule all:
            input: "flaky.txt", "broken.txt"

        # Fails the first time it runs (like a flaky file system or network), then succeeds.
        rule flaky:
            output: "flaky.txt"
            resources: mem_mb=100, runtime=2
            shell:
                "echo $SLURM_JOB_ID >> attempts.txt; "
                "if [ ! -e first_attempt_done ]; then touch first_attempt_done; exit 1; fi; "
                "echo ok > {output}"

        rule broken:
            output: "broken.txt"
            log: "logs/broken.log"
            resources: mem_mb=100, runtime=2
            shell: "echo 'broken: this input can never work' > {log}; exit 3"
        """,
    )
    result = run_snakemake(slurm_cluster, tmp_path, "--retries", "1", timeout=120)
    out = result.stdout

    # the transient failure: two Slurm jobs, the second one succeeded
    attempts = (tmp_path / "attempts.txt").read_text().split()
    assert len(attempts) == 2 and attempts[0] != attempts[1], out
    assert (tmp_path / "flaky.txt").read_text() == "ok\n"

    # the permanent failure: snakemake fails, names the rule's log and the Slurm job's log
    assert result.returncode != 0
    assert not (tmp_path / "broken.txt").exists()
    assert "Error in rule broken" in out
    assert "logs/broken.log" in out
    assert "broken: this input can never work" in out  # show-failed-logs prints it
    slurm_logs = re.findall(r"\S*/slurm_logs/rule_broken/\S*\.log", out)
    assert slurm_logs, out
    assert all(Path(p.strip("'\",()")).is_file() for p in slurm_logs)
    states = [r["State"] for r in slurm_cluster.sacct(*submitted_job_ids(out))]
    assert states.count("FAILED") == 1 + 2  # flaky once, broken on both attempts


# ---------------------------------------------------------------------------- the real workflow

# What a workflow copy needs; results/ and .snakemake/ stay behind (the tests must not touch them).
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs", "notebooks", "slurm")
EXPERIMENT = "slurmtest"
CANCELLED_RUN = "bs16_b1-0.9_b2-0.99_lr-0.003_s0"


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_symlink():
            (dest / name).symlink_to(os.readlink(src))
        elif src.is_dir():
            shutil.copytree(
                src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def write_test_config(workdir: Path) -> Path:
    """The default experiment of config/config.yaml, cut down to two short runs on fake GPUs."""
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"][
        "default"
    ]
    # a fixed number of steps (no stopping rule, no epoch budget): the resume check needs it
    default = {k: v for k, v in default.items() if k not in ("budget", "train_sequences")}
    experiment = {
        **default,
        "dataset": "pydoc-char",  # offline: no network in CI
        "seq_len": 32,
        "training": {
            **default.get("training", {}),
            "micro_batch_size": 4,
            "epochs": 1,
            "max_steps": 40,
            "eval_every": 0.5,
            "eval_batch_size": 256,
            "checkpoint_every": 5,
            "num_threads": 1,
            "patience": None,
            "exact_noise_scale": False,  # N = every sequence of the split here: too many passes
        },
        # one beta2: the sweep figure and the noise scale (a predictions figure needs two)
        "figures": ["beta2_sweep", "noise_scale"],
        "grid": {
            "batch_size": [8, 16],
            "beta1": [0.9],
            "beta2": [0.99],
            "lr": [3.0e-3],
            "seed": [0],
        },
        "resources": {"gpus": 1, "cpus": 1, "mem_mb": 1000, "runtime": 5},
    }
    path = workdir / "slurmtest.yaml"
    path.write_text(
        yaml.safe_dump({"active": [EXPERIMENT], "experiments": {EXPERIMENT: experiment}})
    )
    return path


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen) -> None:
    """Poll `condition` while `proc` (a snakemake) runs; fail on timeout or if it exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"snakemake exited before {what}:\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.2)


def test_pipeline_on_slurm_resumes_cancelled_run_and_matches_local_run(slurm_cluster, tmp_path):
    """`snakemake --profile slurm` (the documented command) on a copy of the workflow: a training
    job cancelled with scancel mid-run resumes from its checkpoint when the workflow is rerun, and
    the aggregated results equal those of an uninterrupted local run, bit for bit."""
    local = copy_workflow(tmp_path / "local")
    cluster = copy_workflow(tmp_path / "slurm")
    target = f"results/{EXPERIMENT}/aggregate.nc"

    config = str(write_test_config(cluster))
    # The documented command, with the profile as it is: its first status query after 20 s
    # suits these jobs, which last 10-20 s here (two snakemake start-ups each).
    on_slurm = ("--profile", "slurm", target, "--configfile", config)
    run_dir = cluster / "results" / EXPERIMENT / "runs" / CANCELLED_RUN
    checkpoint = run_dir / "result.nc.ckpt" / "checkpoint.pt"

    # The reference, local and uninterrupted, runs alongside: the cluster runs mostly wait.
    reference = Snakemake(
        slurm_cluster, local, target, "--cores", "2", "--configfile", str(write_test_config(local))
    )
    first = Snakemake(slurm_cluster, cluster, *on_slurm, "--retries", "0")
    try:
        # First attempt: cancel one training job as soon as it has written a checkpoint.
        wait_for(checkpoint.exists, 240, f"a checkpoint of {CANCELLED_RUN}", first.proc)
        queue = slurm_cluster.run("squeue", "-h", "-o", "%i %k")  # job id, comment (rule_...)
        job_ids = [line.split()[0] for line in queue.splitlines() if CANCELLED_RUN in line]
        assert len(job_ids) == 1, queue
        slurm_cluster.run("scancel", job_ids[0])
        first_result = first.wait(timeout=120)

        assert "Using profiles slurm and workflow specific profile profiles/default" in (
            first_result.stdout
        )
        assert first_result.returncode != 0, "the cancelled job must fail the first attempt"
        assert "SLURM status is: 'CANCELLED'" in first_result.stdout
        assert not (run_dir / "result.nc").exists(), "the run was cancelled after it had finished"
        assert checkpoint.exists()

        # Rerun: only the cancelled run and what depends on it, resumed from the checkpoint.
        second = Snakemake(slurm_cluster, cluster, *on_slurm).wait(timeout=240)
        reference_result = reference.wait(timeout=120)
    finally:
        first.kill()
        reference.kill()
    assert second.returncode == 0, second.stdout
    assert set(submitted_job_ids(second.stdout).values()) == {"train", "aggregate"}
    train_log = run_dir.parents[1] / "logs" / "train" / f"{CANCELLED_RUN}.log"
    resumed = re.search(r"resumed from step (\d+)", train_log.read_text())
    assert resumed and 5 <= int(resumed.group(1)) < 40, train_log.read_text()
    assert reference_result.returncode == 0, reference_result.stdout

    # Same numbers as the uninterrupted local run: the aggregate, and every step of the resumed run.
    timing = list(TIMING_VARIABLES)
    with (
        xr.open_dataset(local / target) as expected,
        xr.open_dataset(cluster / target) as actual,
    ):
        xr.testing.assert_identical(
            expected.drop_vars(timing, errors="ignore").drop_attrs(),
            actual.drop_vars(timing, errors="ignore").drop_attrs(),
        )
    run_result = f"results/{EXPERIMENT}/runs/{CANCELLED_RUN}/result.nc"
    with (
        xr.open_dataset(local / run_result) as expected,
        xr.open_dataset(cluster / run_result) as actual,
    ):
        for name in ("loss", "grad_norm", "val_loss", "b_simple", "min_val_ppl", "test_ppl"):
            np.testing.assert_array_equal(expected[name].values, actual[name].values, err_msg=name)
