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
