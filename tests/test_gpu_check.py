"""benchmarks/gpu_check.sh: its device audit, and the whole check in --smoke mode on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from gpu_check import DeviceAudit  # noqa: E402


def test_device_audit_sorts_ops_by_where_their_tensors_live():
    """The meta device stands in for CUDA: float work on the host is what fails the check."""
    on_device = torch.ones(3, device="meta")
    weight = torch.ones(3, 3, device="meta")
    with DeviceAudit("meta") as audit:
        torch.ones(3).normal_()  # building a model on the host: setup
        on_device @ weight  # the device computes: from here on host work counts
        on_device * 2  # on the device: fine
        torch.ones(3) * 2  # float computation on the host
        torch.arange(5)[1:3].add(1)  # index bookkeeping on the host
        torch.ones(4).to("meta")  # a host-to-device copy
        torch.tensor(2.0) * 3  # a host scalar is no tensor work
    assert audit.setup_host_ops == 1
    assert audit.host_float == {"mul": 1}
    assert set(audit.host_index) == {"slice", "add"}
    assert audit.h2d == 1 and audit.d2h == 0
    assert audit.ops >= 5


@pytest.mark.slow
def test_smoke_run_writes_json_and_markdown(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["smoke"] is True and data["ok"] is True
    assert data["elapsed_s"] < 120
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    for name in (
        "device: single run",
        "device: stacked pack of 2",
        "packed = single: fp32",
        "packed = single: tf32",
        "packed = single: bf16",
        "packed = single: fp32, dropout 0.1 (own masks)",
        "stopped member leaves the pack",
    ):
        assert statuses[name] == "pass", (name, data["checks"])
    rows = data["throughput"]
    assert {r["runs"] for r in rows} == {"single", "pack K=1", "pack K=2"}
    assert {r["model"] for r in rows} == {"txl-tiny", "gpt-tiny"}
    assert {r["precision"] for r in rows} == {"fp32", "bf16"}
    engines = {(r["model"], r["runs"]): r["engine"] for r in rows}
    assert engines["gpt-tiny", "pack K=2"] == "stacked"  # no dropout: one vmapped model
    assert engines["txl-tiny", "pack K=2"] == "sequential"  # dropout: each run its own masks
    assert (
        engines["txl-tiny", "pack K=1"] == "sequential"
        and engines["txl-tiny", "single"] == "single"
    )
    assert len(rows) == 18  # (2 txl-tiny batch sizes + gpt-tiny) x 2 precisions x 3 job kinds
    # a slow machine may reach the time budget before the last rows: they say so
    assert {row["status"] for row in rows} <= {"ok", "skipped (time budget)"}
    measured = [row for row in rows if row["status"] == "ok"]
    assert len(measured) >= 6
    for row in measured:
        assert row["tokens_per_s"] > 0 and row["training_flops_per_token"] > 0
        assert row["mfu"] is None and row["peak_memory_gib"] is None  # CPU: no peak, no memory
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "| check | status | detail |" in markdown
    assert markdown.count("| txl-tiny |") == 12 and markdown.count("| gpt-tiny |") == 6
