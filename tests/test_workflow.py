"""The Snakemake workflow as users run it: the full DAG on the smallest config, rerunning a figure,
and config rejection before any job starts.

Each test works on a copy of the workflow in a temporary directory, so that touching a notebook
or writing results never changes the checkout.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"
WORKFLOW_PARTS = ("Snakefile", "workflow", "notebooks", "config", "envs", "profiles")
SMALLEST = REPO / "tests" / "config" / "smallest.yaml"
TIMEOUT_S = 600  # a hung Snakemake must not eat CI


def copy_workflow(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    destination.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=ignore)
        else:
            shutil.copy2(source, destination / part)
    return destination


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(SNAKEMAKE), "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """What a dry run would do, from its job-stats table: {rule: count}, empty when up to date."""
    result = snakemake(workdir, "--dry-run", *args)
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    table = re.search(r"^job\s+count\n-+\s+-+\n(.*?)^total", output, re.M | re.S)
    assert table, f"no job table in the dry run:\n{output}"
    rows = (line.split() for line in table.group(1).splitlines() if line.strip())
    return {rule: int(count) for rule, count in rows}


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    """The whole DAG on tests/config/smallest.yaml (2 x 2 runs), run once for this module."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    shutil.copy2(SMALLEST, workdir / "config" / "smallest.yaml")
    config_args = ("--configfile", "config/config.yaml", "config/smallest.yaml")
    snakemake(workdir, *config_args)
    return workdir, config_args


def test_full_dag_writes_every_stage(workflow_run):
    workdir, _ = workflow_run
    results = workdir / "results"
    for path in (
        "data/pydoc-char/stats.json",
        "smallest/aggregate.nc",
        "smallest/theory_flips.nc",
        "smallest/optima_beta2.nc",
        "smallest/optima_beta2.csv",
        "smallest/report/beta2_sweep.html",
        "smallest/report/noise_scale.html",
        "smallest/report/stability.html",
        "smallest/predictions_beta2.nc",
        "smallest/predictions_beta2.csv",
        "smallest/report/beta2_predictions.html",
        "smallest-sgd/aggregate.nc",
        "comparisons/smallest-gap/optimizer_gap.html",
        "index.html",
        "theory/theory_grid.nc",
        "theory/report/theory_figures.html",
    ):
        assert (results / path).stat().st_size > 0, path
    run_dirs = sorted(p.name for p in (results / "smallest" / "runs").iterdir())
    assert run_dirs == [
        "bs16_b1-0.9_b2-0.999_lr-0.001_s0",
        "bs16_b1-0.9_b2-0.9_lr-0.001_s0",
        "bs8_b1-0.9_b2-0.999_lr-0.001_s0",
        "bs8_b1-0.9_b2-0.9_lr-0.001_s0",
    ]


def test_a_figure_across_two_experiments(workflow_run):
    """Seed 002's optimiser gap reads both aggregates; its notebook received both paths."""
    import json

    workdir, _ = workflow_run
    notebook = workdir / "results" / "comparisons" / "smallest-gap" / "optimizer_gap.ipynb"
    parameters = json.loads(notebook.read_text())["metadata"]["papermill"]["parameters"]
    assert parameters["aggregate_paths"] == [
        "results/smallest/aggregate.nc",
        "results/smallest-sgd/aggregate.nc",
    ]
    html = notebook.with_suffix(".html").read_text()
    assert "gap_loss" in html and "smallest-sgd" in html


def test_the_index_lists_every_figure_with_runs_and_provenance(workflow_run):
    from adamnoise.report_index import config_hash

    workdir, _ = workflow_run
    index = (workdir / "results" / "index.html").read_text()
    for link in (
        "smallest/report/beta2_sweep.html",
        "smallest/report/beta2_predictions.html",
        "comparisons/smallest-gap/optimizer_gap.html",
        "theory/report/theory_figures.html",
    ):
        assert f'href="{link}"' in index, link
    assert "4/4 completed, 0 diverged, 0 missing" in index
    # a figure without runs names the commit its inputs were written by
    theory_row = r"theory_figures</a></td><td>theory</td><td>-</td><td>-</td><td>"
    assert re.search(theory_row + r"([0-9a-f]{10}|unknown)", index)
    assert "2/2 completed" in index
    import xarray as xr

    with xr.open_dataset(workdir / "results" / "smallest" / "aggregate.nc") as aggregate:
        assert config_hash(aggregate.attrs["experiment_config"]) in index


def test_predictions_table_has_every_rule(workflow_run):
    import pandas as pd

    from adamnoise.theory.scaling_rules import RULES

    workdir, _ = workflow_run
    table = pd.read_csv(workdir / "results" / "smallest" / "predictions_beta2.csv")
    assert set(table["rule"]) == set(RULES)
    assert len(table) == len(RULES) * 2  # two batch sizes, one lr
    assert (table["regret"].dropna() >= 0).all()


def test_snakemake_report_collects_the_figures(workflow_run):
    workdir, config_args = workflow_run
    snakemake(workdir, "--report", "report.html", *config_args)
    report = (workdir / "report.html").read_text(errors="replace")
    assert "beta2_sweep.html" in report and "theory_figures.html" in report


def test_table1_csv_has_the_seed_statistics(workflow_run):
    import pandas as pd

    workdir, _ = workflow_run
    table = pd.read_csv(workdir / "results" / "smallest" / "optima_beta2.csv")
    assert list(table["batch_size"]) == [8, 16]
    for column in ("best_beta2", "best_low", "best_high", "delta_pct", "slope_verdict"):
        assert column in table.columns, column
    assert set(table["best_beta2"]) <= {0.9, 0.999}


def test_aggregate_has_grid_dims_units_and_provenance(workflow_run):
    workdir, _ = workflow_run
    with xr.open_dataset(workdir / "results" / "smallest" / "aggregate.nc") as ds:
        assert ds["val_ppl"].dims == ("batch_size", "beta1", "beta2", "lr", "seed", "eval")
        assert ds["min_val_ppl"].dims == ("batch_size", "beta1", "beta2", "lr", "seed")
        assert ds["max_update"].dims == ("batch_size", "beta1", "beta2", "lr", "seed", "train_step")
        assert ds.sizes["train_step"] == 24  # max_steps of the smallest config
        assert list(ds["batch_size"].values) == [8, 16]
        assert list(ds["beta2"].values) == [0.9, 0.999]
        assert ds.attrs["n_missing"] == 0
        assert np.isfinite(ds["min_val_ppl"]).all()
        # the minimum of each run is the minimum of its own curve
        np.testing.assert_allclose(ds["min_val_ppl"], ds["val_ppl"].min("eval"))
        for name in ("min_val_ppl", "val_ppl", "b_simple"):
            assert ds[name].attrs.get("units") and ds[name].attrs.get("description"), name
        assert re.fullmatch(r"[0-9a-f]{40}", ds.attrs["provenance_git_commit"])
        assert "torch" in json.loads(ds.attrs["provenance_packages"])
        assert json.loads(ds.attrs["experiment_config"])["dataset"] == "pydoc-char"
        assert json.loads(ds.attrs["run_devices"]) == ["cpu"]


def test_flip_prediction_matches_seed_formula(workflow_run):
    workdir, _ = workflow_run
    with xr.open_dataset(workdir / "results" / "smallest" / "theory_flips.nc") as flips:
        n = flips.attrs["n_train_sequences"]
        b_simple = flips["b_simple"].sel(quantile=0.5).item()
        assert b_simple > 0
        # seed 000 Sec. 3.3: lambda = 0.5 at b = 2NB/(N + 2B - 1), lambda = 1 at b = NB/(N + B - 1)
        half = flips["flip_batch_size"].sel(threshold=0.5, quantile=0.5).item()
        one = flips["flip_batch_size"].sel(threshold=1.0, quantile=0.5).item()
        assert half == pytest.approx(2 * n * b_simple / (n + 2 * b_simple - 1))
        assert one == pytest.approx(n * b_simple / (n + b_simple - 1))


def test_editing_one_notebook_reruns_only_that_figure(workflow_run):
    workdir, config_args = workflow_run
    assert planned_jobs(workdir, *config_args) == {}

    # an edit (Snakemake >= 9.18 compares checksums, so touching alone is no edit)
    notebook_path = workdir / "notebooks" / "noise_scale.ipynb"
    notebook = json.loads(notebook_path.read_text())
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["Edited."]})
    notebook_path.write_text(json.dumps(notebook))
    whole = planned_jobs(workdir, *config_args)
    assert whole == {"report_figure": 1, "report_index": 1, "all": 1}  # the index links it
    alone = planned_jobs(workdir, "figure_noise_scale", *config_args)
    assert alone == {"report_figure": 1, "figure_noise_scale": 1}

    snakemake(workdir, "figure_noise_scale", *config_args)
    assert planned_jobs(workdir, *config_args) == {"report_index": 1, "all": 1}
    report = workdir / "results" / "smallest" / "report" / "noise_scale.ipynb"
    assert "Edited." in report.read_text()


@pytest.mark.slow
def test_dry_run_shows_the_whole_dag_of_the_default(tmp_path):
    workdir = copy_workflow(tmp_path)
    jobs = planned_jobs(workdir)
    assert jobs["train"] == 12  # 2 batch sizes x 2 beta2 x 3 seeds
    for rule in (
        "prepare_offline_corpus",
        "aggregate",
        "theory_flips",
        "theory_grid",
        "optima",
        "predictions",
        "report_index",
    ):
        assert jobs[rule] == 1, rule
    # beta2_sweep, beta2_predictions, noise_scale; the theory figures; the toy quadratics of
    # seeds 002 and 003: every figure of every scope is rendered by the one report rule
    assert jobs["report_figure"] == 3 + 1 + 2
    assert jobs["toy_quadratic"] == 2


def broken_config(tmp_path: Path, edit) -> Path:
    config = yaml.safe_load(SMALLEST.read_text())
    edit(config["experiments"]["smallest"])
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda e: e.update(learning_rate=[1e-3]), "learning_rate"),
        (lambda e: e.update(seq_len="32"), "seq_len"),
        (lambda e: e["grid"].update(beta2=[0.9, 1.5]), "beta2"),
        (lambda e: e["optimizer"].update(momentum=0.9), "optimizer.momentum"),
        (lambda e: e["training"].update(epochs="1"), "training.epochs"),
        (lambda e: e["model"].update(preset="gpt-huge"), "gpt-huge"),
        (
            lambda e: e["grid"].update(batch_size=[8, 10**6]),
            "experiments.smallest.grid.batch_size: 1000000 exceeds N",
        ),
        (lambda e: e["grid"].update(batch_size=[8, "all"]), "batch_size"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "beta-out-of-range",
        "optimizer-key",
        "training",
        "preset",
        "batch-above-n",
        "batch-not-a-size",
    ],
)
@pytest.mark.slow
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, edit, named):
    workdir = copy_workflow(tmp_path / "wf")
    config = broken_config(tmp_path, edit)
    result = snakemake(workdir, "--configfile", "config/config.yaml", str(config), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in output, output
    assert "Job stats" not in output and not (workdir / "results").exists()


def test_every_shipped_config_is_valid():
    """config/*.yaml and config/seeds/*.yaml, each merged over the default as --configfile does."""
    from snakemake.utils import validate

    from adamnoise.figures import config_schema_file
    from adamnoise.workflow_config import load_experiments

    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    shipped = sorted((REPO / "config").glob("*.yaml")) + sorted(
        (REPO / "config/seeds").glob("*.yaml")
    )
    assert len(shipped) >= 5
    for path in shipped:
        overlay = yaml.safe_load(path.read_text())
        merged = {**default, **overlay}
        merged["experiments"] = {**default["experiments"], **overlay.get("experiments", {})}
        with config_schema_file(REPO / "workflow" / "schemas" / "config.schema.yaml") as schema:
            validate(merged, schema)
        experiments = load_experiments(merged)
        assert set(merged["active"]) <= set(experiments), path
        assert all(experiments[name].run_ids() for name in merged["active"]), path


def test_conda_environment_mirrors_the_package_dependencies():
    """envs/adamnoise.yaml (--software-deployment-method conda) has every runtime dependency."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((REPO / "envs" / "adamnoise.yaml").read_text())
    conda_names, pip_lines = set(), []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            pip_lines += entry["pip"]
        else:
            conda_names.add(re.split(r"[=<>]", entry)[0].lower())
    needed = pyproject["project"]["dependencies"] + [
        dep
        for dep in pyproject["project"]["optional-dependencies"]["workflow"]
        if not dep.startswith(("snakemake", "pygments"))  # snakemake runs outside the rule env
    ]
    for requirement in needed:
        name = re.split(r"[=<>\[]", requirement)[0].lower()
        assert name in conda_names or any(line.startswith(name) for line in pip_lines), name
    assert "-e ../" in pip_lines  # the package itself, from this checkout


def test_pinned_environment_pins_every_dependency_exactly():
    """envs/adamnoise.lock.txt (make lock) pins each dependency of pyproject.toml with ==, and the
    pinned conda file uses it with the same Python."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    lines = (REPO / "envs" / "adamnoise.lock.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    extras = pyproject["project"]["optional-dependencies"]
    for requirement in pyproject["project"]["dependencies"] + extras["workflow"] + extras["dev"]:
        name = re.split(r"[=<>\[ ]", requirement)[0].lower()
        if name == "adamnoise":
            continue
        assert name in pins, name
    assert pins["torch"] == "2.13.0"  # no local "+cpu": the same pin fetches CUDA on a cluster
    python = re.search(r"\(Python ([\d.]+)\)", lines[0]).group(1)
    pinned = yaml.safe_load((REPO / "envs" / "adamnoise.pinned.yaml").read_text())
    assert f"python={python}" in pinned["dependencies"]
    assert "-r adamnoise.lock.txt" in pinned["dependencies"][-1]["pip"]


def test_verify_retrains_sampled_runs_bit_identically_and_catches_a_tampered_one(
    workflow_run, tmp_path
):
    """`adamnoise verify`: the archive proves itself; a changed number is caught."""
    import xarray as xr

    workdir, _ = workflow_run
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    verify = [str(BIN / "adamnoise"), "verify", "results", "--experiment", "smallest"]
    result = subprocess.run(
        [*verify, "--sample", "1"], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok") and "bit-identical" in result.stdout

    # an archive moved elsewhere: runs and corpus copied, one stored perplexity changed
    archive = tmp_path / "archive" / "results"
    shutil.copytree(workdir / "results" / "data", archive / "data")
    run = workdir / "results" / "smallest" / "runs" / "bs8_b1-0.9_b2-0.9_lr-0.001_s0"
    shutil.copytree(run, archive / "smallest" / "runs" / run.name)
    stored = xr.load_dataset(run / "result.nc")
    stored["val_ppl"][-1] = stored["val_ppl"][-1] + 1e-6
    stored.to_netcdf(archive / "smallest" / "runs" / run.name / "result.nc")
    result = subprocess.run(
        [str(BIN / "adamnoise"), "verify", str(archive), "--sample", "5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISMATCH" in result.stdout and "val_ppl" in result.stdout
    assert "0 of 1 runs reproduce" in result.stderr
