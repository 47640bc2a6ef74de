"""Parsing the workflow config does not import torch (Snakemake parses it on every invocation).

Each check runs in a fresh interpreter: this test session has imported torch long ago.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = [
    "config/config.yaml",
    "config/paper.yaml",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "config" / "seeds").glob("*.yaml")),
]


def run_fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_shipped_config_loads_without_torch():
    """load_experiments on each shipped config, merged over the default as --configfile does."""
    assert len(SHIPPED) >= 5
    result = run_fresh(
        f"""
        import sys
        from pathlib import Path

        import yaml

        from adamnoise.workflow_config import load_experiments

        default = yaml.safe_load(Path("config/config.yaml").read_text())
        for path in {SHIPPED!r}:
            overlay = yaml.safe_load(Path(path).read_text())
            merged = {{**default, **overlay}}
            merged["experiments"] = {{**default["experiments"], **overlay.get("experiments", {{}})}}
            experiments = load_experiments(merged)
            assert set(merged["active"]) <= set(experiments), path
            assert "torch" not in sys.modules, f"loading {{path}} imported torch"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "statement",
    [
        "from adamnoise.optim import OPTIMIZER_PARAMETERS, resolve_optimizer_config",
        "from adamnoise.optim.configs import OPTIMIZERS, KADAM_STRATEGIES",
        "from adamnoise.optim import OPTIMIZER_DEFAULTS, build_optimizer",
        "from adamnoise.schedules import resolve_schedule_config",
        "from adamnoise.models import resolve_model_config",
        "from adamnoise.training.config import RunConfig",
        "import adamnoise.data.corpus",
    ],
)
def test_config_modules_do_not_import_torch(statement):
    result = run_fresh(f"import sys\n{statement}\nprint('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", statement


def test_torch_names_of_optim_load_on_first_access():
    result = run_fresh(
        """
        import sys
        import adamnoise.optim as optim
        assert "torch" not in sys.modules
        assert len(optim.kadam_betas(0.9, 2, "naive")) == 2
        assert issubclass(optim.EMASign, optim.Signum)
        assert "torch" in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
