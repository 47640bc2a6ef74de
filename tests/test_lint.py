"""The code style gates of CI: ruff, snakefmt and `snakemake --lint` report nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

GATES = {
    "ruff-check": [BIN / "ruff", "check", "."],
    "ruff-format": [BIN / "ruff", "format", "--check", "."],
    "snakefmt": [BIN / "snakefmt", "--check", "Snakefile", "workflow/rules"],
    "snakemake-lint": [BIN / "snakemake", "--lint", "--cores", "1"],
}


@pytest.mark.parametrize("gate", GATES)
def test_gate_is_clean(gate):
    result = subprocess.run(
        [str(part) for part in GATES[gate]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{gate}:\n{result.stdout}\n{result.stderr}"


def test_no_tracked_file_points_outside_the_repository():
    """Sources and docs cite public sources, never a file outside this repository."""
    import re

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"reference-facts|\.\./shared/|/work/shared|/work/main")
    offenders = [
        path
        for path in tracked
        if path.endswith((".py", ".md", ".smk", ".yaml", ".ipynb", ".rst", "Snakefile"))
        and path != "tests/test_lint.py"
        and outside.search((REPO / path).read_text(errors="replace"))
    ]
    assert offenders == []
