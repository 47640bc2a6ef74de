"""Provenance recorded in every result file: code version, packages, machine and device."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PACKAGES = (
    "adamnoise",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "netCDF4",
    "snakemake",
    "papermill",
)


@functools.cache
def git_state(repo: str | None = None) -> dict[str, Any]:
    """The commit of the checkout the package runs from, and whether it has uncommitted changes."""
    where = Path(repo) if repo else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit or "unknown", "git_dirty": bool(status) if commit else None}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def torch_settings() -> dict[str, Any]:
    """Device and numerics settings of torch, if torch is already imported (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    settings: dict[str, Any] = {
        "torch_num_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        settings["cuda_device"] = torch.cuda.get_device_name()
        settings["cuda_version"] = torch.version.cuda
        settings["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return settings


def collect(device: str | None = None, **extra: Any) -> dict[str, Any]:
    """Everything needed to say where a number came from."""
    record: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "packages": package_versions(),
        "torch": torch_settings(),
    }
    if device is not None:
        record["device"] = device
    record.update(extra)
    return record


def as_attrs(record: dict[str, Any]) -> dict[str, str]:
    """Flatten a provenance record into netCDF-safe string attributes (nested values as JSON)."""
    return {
        f"provenance_{key}": value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in record.items()
    }
