"""The workflow against hostile or careless input: config values never reach a shell as code, bad
names and paths fail before any job naming the key, a reordered but equal config retrains
nothing, a packed run's result is an output of its pack, an unreadable result is retrained.

Each test works on a copy of the workflow (tests/test_workflow.py's helpers).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_workflow import SMALLEST, copy_workflow, planned_jobs, snakemake

DEFAULT_CONFIG = ("--configfile", "config/config.yaml")


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def smallest_config() -> dict:
    return yaml.safe_load(SMALLEST.read_text())


def test_a_mirror_url_reaches_the_download_as_an_argument_not_as_shell_code(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    payload = "http://127.0.0.1:9/$(touch PWNED)`touch PWNED2`"
    config = write_config(tmp_path / "mirror.yaml", {"wikitext2_mirrors": [payload]})
    result = snakemake(
        workdir, "resources/wikitext-2-v1.zip", *DEFAULT_CONFIG, str(config), check=False
    )
    assert result.returncode != 0  # nothing answers on port 9
    assert not (workdir / "PWNED").exists() and not (workdir / "PWNED2").exists()
    log = (workdir / "results/logs/data/download_wikitext2.log").read_text()
    assert payload in log  # the URL arrived whole, as one argument


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda c: c["experiments"].update({"a`touch x`": c["experiments"]["smallest"]}),
            "instance['experiments']",
        ),
        (lambda c: c.update(active=["smallest", "$(touch x)"]), "instance['active']"),
        (lambda c: c.update(results="my results"), "instance['results']"),
        (lambda c: c.update(resources_dir="res ources"), "instance['resources_dir']"),
    ],
    ids=["experiment-name", "active-name", "results-space", "resources-space"],
)
def test_names_and_paths_that_a_shell_would_misread_fail_before_any_job(tmp_path, edit, named):
    workdir = copy_workflow(tmp_path / "wf")
    config = smallest_config()
    edit(config)
    path = write_config(tmp_path / "bad.yaml", config)
    result = snakemake(workdir, *DEFAULT_CONFIG, str(path), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in output, output
    assert "Job stats" not in output
    created = {p.name for p in workdir.iterdir()} - {"config", "notebooks", "envs", "profiles"}
    assert created <= {"Snakefile", "workflow", ".snakemake"}, created
    assert not (workdir / "x").exists()


@pytest.mark.parametrize("word", ["false", "true"])
def test_a_boolean_given_on_the_command_line_is_read_as_one(tmp_path, word):
    """`--config toy_quadratics=false` arrives as the string "false" (Snakemake reads only
    True/False); the Snakefile reads it as the boolean the schema asks for."""
    workdir = copy_workflow(tmp_path / "wf")
    jobs = planned_jobs(workdir, *DEFAULT_CONFIG, "--config", f"toy_quadratics={word}")
    toy_jobs = [rule for rule in jobs if "toy" in rule]
    assert bool(toy_jobs) == (word == "true"), jobs


TINY_TRAINING = {  # keys deliberately not in sorted order: a sorted dump reorders them
    "micro_batch_size": 4,
    "epochs": 1,
    "eval_every": 0.5,
    "eval_batch_size": 512,
    "num_threads": 1,
}


def tiny_experiment(**extra) -> dict:
    return {
        "dataset": "pydoc-char",
        "seq_len": 16,
        "train_sequences": 32,
        "model": {"preset": "gpt-tiny"},
        "optimizer": {"name": "adam", "eps": 1.0e-6},
        "training": dict(TINY_TRAINING),
        "grid": {
            "batch_size": [8],
            "beta1": [0.9],
            "beta2": [0.9, 0.999],
            "lr": [1.0e-3],
            "seed": [0],
        },
        **extra,
    }


TINY = {
    "active": ["tiny", "tiny-packed"],
    "toy_quadratics": False,
    "experiments": {"tiny": tiny_experiment(), "tiny-packed": tiny_experiment(pack=2)},
}
TINY_TARGETS = ("results/tiny/aggregate.nc", "results/tiny-packed/aggregate.nc")
TINY_RUN = "bs8_b1-0.9_b2-0.9_lr-0.001_s0"


@pytest.fixture(scope="module")
def tiny_workflow(tmp_path_factory):
    """Two runs trained one job each and two trained as one pack, aggregated (about 30 s)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny"))
    config = write_config(workdir / "tiny.yaml", TINY)
    args = (*TINY_TARGETS, *DEFAULT_CONFIG, str(config))
    snakemake(workdir, *args)
    assert planned_jobs(workdir, *args) == {}
    return workdir, args


@pytest.mark.slow
def test_an_equal_config_with_its_keys_reordered_plans_nothing(tiny_workflow):
    workdir, _ = tiny_workflow
    text = (workdir / "tiny.yaml").read_text()
    reordered = yaml.safe_dump(yaml.safe_load(text))  # sorted keys
    assert reordered != text
    (workdir / "reordered.yaml").write_text(reordered)
    assert planned_jobs(workdir, *TINY_TARGETS, *DEFAULT_CONFIG, "reordered.yaml") == {}
    # and a real change is still seen: one run's config, hence its run and the aggregate
    changed = yaml.safe_load(text)
    changed["experiments"]["tiny"]["training"]["eval_every"] = 0.25
    write_config(workdir / "changed.yaml", changed)
    jobs = planned_jobs(workdir, *TINY_TARGETS, *DEFAULT_CONFIG, "changed.yaml")
    assert (
        jobs["train"] == 2
        and jobs["run_config"] == 2
        and "train_pack_tiny-packed_bs8_lr0p001_p0" not in jobs
    )


@pytest.mark.slow
def test_a_deleted_member_result_plans_its_pack_again(tiny_workflow):
    """A member's result is an output of its pack's rule: rebuilding the aggregate (or asking for
    the file) retrains the pack instead of aggregating a NaN. (Snakemake leaves a missing
    intermediate file alone while everything downstream of it is up to date.)"""
    workdir, args = tiny_workflow
    member = f"results/tiny-packed/runs/{TINY_RUN}/result.nc"
    (workdir / member).unlink()
    pack = "train_pack_tiny-packed_bs8_lr0p001_p0"
    assert planned_jobs(workdir, member, *args[2:]) == {pack: 1}
    jobs = planned_jobs(workdir, *args, "--forcerun", "aggregate")
    assert jobs.get(pack) == 1 and jobs["aggregate"] == 2 and "train" not in jobs, jobs
    snakemake(workdir, *args, "--forcerun", "aggregate")
    assert (workdir / member).exists()
    assert planned_jobs(workdir, *args) == {}


@pytest.mark.slow
def test_an_unreadable_result_is_named_with_its_rule_and_retrained(tiny_workflow):
    workdir, args = tiny_workflow
    single = workdir / "results/tiny/runs" / TINY_RUN / "result.nc"
    member = workdir / "results/tiny-packed/runs" / TINY_RUN / "result.nc"
    for path in (single, member):
        path.write_bytes(path.read_bytes()[:1000])  # a full disk, a killed copy
    failed = snakemake(workdir, *args, "--keep-going", check=False)
    assert failed.returncode != 0
    log = (workdir / "results/tiny/logs/aggregate.log").read_text()
    assert f"results/tiny/runs/{TINY_RUN}/result.nc (made by rule train;" in log, log
    log = (workdir / "results/tiny-packed/logs/aggregate.log").read_text()
    assert "(made by rule train_pack_tiny-packed_bs8_lr0p001_p0;" in log, log
    assert (single.parent / "result.nc.corrupt-1").exists() and not single.exists()

    jobs = planned_jobs(workdir, *args)  # the next run retrains exactly those
    assert jobs["train"] == 1 and jobs["train_pack_tiny-packed_bs8_lr0p001_p0"] == 1, jobs
    snakemake(workdir, *args)
    assert planned_jobs(workdir, *args) == {}


def test_a_yaml_syntax_error_in_the_default_config_names_file_and_line(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    with (workdir / "config" / "config.yaml").open("a") as config:
        config.write("oops: [1\n")
    result = snakemake(workdir, "--dry-run", check=False)
    assert result.returncode != 0
    assert "config/config.yaml:" in result.stdout + result.stderr
    assert "invalid YAML: expected ',' or ']'" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_killed_snakemake_resumes_with_the_same_command(tmp_path):
    """The workflow profile sets rerun-incomplete: after `--unlock`, the same command redoes the
    job that was running when Snakemake died."""
    import os
    import signal
    import subprocess
    import time

    from test_workflow import BIN, SNAKEMAKE

    workdir = copy_workflow(tmp_path / "wf")
    config = dict(TINY, active=["tiny"])
    config["experiments"] = {"tiny": tiny_experiment()}
    config["experiments"]["tiny"]["training"]["epochs"] = 40  # long enough to be killed
    write_config(workdir / "tiny.yaml", config)
    target = f"results/tiny/runs/{TINY_RUN}/result.nc"
    args = (target, *DEFAULT_CONFIG, "tiny.yaml")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        [str(SNAKEMAKE), "--cores", "1", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = workdir / f"results/tiny/logs/train/{TINY_RUN}.log"
    deadline = time.monotonic() + 120
    while not log.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # Snakemake dies; its training job runs on
    proc.wait()
    result = workdir / target
    while not result.exists():  # the orphaned job finishes: a complete-looking, unrecorded output
        assert time.monotonic() < deadline + 180, "the orphaned training job never finished"
        time.sleep(0.5)
    time.sleep(1)

    locked = snakemake(workdir, *args, check=False)
    if locked.returncode != 0:  # the dead Snakemake's lock
        assert "--unlock" in locked.stdout + locked.stderr
        snakemake(workdir, "--unlock", *args)
    snakemake(workdir, *args)  # without rerun-incomplete: "IncompleteFilesException"
    assert "== attempt at" in log.read_text()
    # the declared log was replaced by the rerun; LOG.attempts kept the killed attempt too
    attempts = log.with_name(log.name + ".attempts").read_text()
    assert attempts.count("== attempt at") == 2, attempts
    assert planned_jobs(workdir, *args) == {}


@pytest.mark.slow
def test_verify_reports_unreadable_runs_changed_configs_and_tables_and_goes_on(tiny_workflow):
    import os
    import subprocess

    from test_workflow import BIN

    workdir, args = tiny_workflow
    snakemake(workdir, "results/tiny/optima_beta2.csv", *args[2:])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def verify():
        command = [str(BIN / "adamnoise"), "verify", "results", "--experiment", "tiny"]
        return subprocess.run(
            [*command, "--sample", "1"], cwd=workdir, env=env, capture_output=True, text=True
        )

    clean = verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr

    table = workdir / "results/tiny/optima_beta2.csv"
    original_table = table.read_text()
    lines = original_table.splitlines()
    table.write_text("\n".join([lines[0], lines[1].replace("8", "9", 1), *lines[2:]]) + "\n")
    run_yaml = workdir / "results/tiny/runs" / TINY_RUN / "run.yaml"
    original_yaml = run_yaml.read_text()
    run_yaml.write_text(original_yaml.replace("eval_every: 0.5", "eval_every: 0.25"))
    other = workdir / "results/tiny/runs/bs8_b1-0.9_b2-0.999_lr-0.001_s0/result.nc"
    original_result = other.read_bytes()
    other.write_bytes(original_result[:1000])
    try:
        result = verify()
        assert result.returncode == 1
        assert f"UNREADABLE  results/tiny/runs/{other.parent.name}/result.nc" in result.stdout
        assert "training.eval_every (0.5 -> 0.25)" in result.stdout, result.stdout
        assert "of 1 runs reproduce" in result.stderr  # went on with the readable run
        assert "not checked: unreadable runs" in result.stderr
        other.write_bytes(original_result)
        result = verify()
        assert "TABLE     results/tiny/optima_beta2.csv differs" in result.stdout, result.stdout
    finally:
        table.write_text(original_table)
        run_yaml.write_text(original_yaml)
        other.write_bytes(original_result)
