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
