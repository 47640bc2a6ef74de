"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import argparse
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


def add_run_arguments(parser: argparse.ArgumentParser, *, batch_size: int) -> None:
    """The shape of the benchmarked run: corpus, model preset, sequence length, batch sizes."""
    parser.add_argument("--corpus", type=Path, default=Path("results/data/pydoc-char"))
    parser.add_argument("--model", default="gpt-tiny", help="model preset")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--micro-batch-size", type=int, default=8)


def add_timing_arguments(
    parser: argparse.ArgumentParser, *, steps: int, repeats: int, warmup: int
) -> None:
    """The timed blocks (steps, repeats, warm-up) and the device and precision they run on."""
    parser.add_argument("--steps", type=int, default=steps, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed blocks per loop")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps per loop first")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
