"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def ensure_corpus(path: Path) -> Path:
    """The prepared pydoc-char corpus at ``path``, prepared there first if missing."""
    if (path / "stats.json").exists():
        return path
    from adamnoise.data.corpus import prepare_corpus

    print(f"preparing pydoc-char into {path}", file=sys.stderr)
    prepare_corpus("pydoc-char", path)
    return path


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a wall-clock interval measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
