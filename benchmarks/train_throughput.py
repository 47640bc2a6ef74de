"""Throughput of the trainer's optimiser step against a plain PyTorch training loop.

Both loops train the same model (the plain one a copy of the trainer's initial weights) on the
same batches (the trainer's epoch sampler) in the same process:

* ``trainer``: ``adamnoise.training.Trainer.train_step`` - gradient accumulation with the B_simple
  norms, max-update, the optimiser from ``adamnoise.optim``, schedule, the per-step record and its
  one synchronisation;
* ``plain``: ``loss = model(x, y).mean() / k; loss.backward()`` over the same k micro-batches
  (one forward/backward of the whole batch when micro_batch_size == batch_size),
  ``torch.optim.Adam.step()``, ``zero_grad()``; no measurements, no synchronisation per step.

Blocks of ``--steps`` steps alternate between the two loops (and which goes first alternates too),
``--repeats`` times, after a warm-up; the median over repeats of the ratio of adjacent blocks'
tokens/s is reported (target >= 0.9).

    python benchmarks/train_throughput.py --model gpt-tiny --batch-size 32 --micro-batch-size 8
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import add_run_arguments, add_timing_arguments, ensure_corpus, synchronize

from adamnoise.training.config import RunConfig
from adamnoise.training.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, batch_size=32)
    add_timing_arguments(parser, steps=10, repeats=5, warmup=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    corpus = ensure_corpus(args.corpus)
    adam = {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-6}
    raw = {
        "run_id": "throughput",
        "data": {"corpus": str(corpus), "seq_len": args.seq_len},
        "model": {"preset": args.model},
        "optimizer": adam,
        "training": {
            "batch_size": args.batch_size,
            "micro_batch_size": args.micro_batch_size,
            "epochs": 1000,
            "device": args.device,
            "precision": args.precision,
            "num_threads": args.threads,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(
            RunConfig.from_dict(raw), Path(tmp) / "bench.nc", progress_stream=io.StringIO()
        )
    device = trainer.device
    model = copy.deepcopy(trainer.model)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=adam["lr"], betas=(adam["beta1"], adam["beta2"]), eps=adam["eps"]
    )
    micro = args.micro_batch_size
    plain_step_index = 0

    def plain_step() -> None:
        nonlocal plain_step_index
        indices = trainer.sampler.batch_indices(plain_step_index).to(device)
        inputs, targets = trainer.train_cut.batch(indices)
        chunks = range(0, args.batch_size, micro)
        for start in chunks:
            with trainer.autocast():
                loss = model(inputs[start : start + micro], targets[start : start + micro]).mean()
            (loss / len(chunks)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        plain_step_index += 1

    loops = {"trainer": trainer.train_step, "plain": plain_step}
    tokens_per_block = args.steps * args.batch_size * args.seq_len
    rates: dict[str, list[float]] = {name: [] for name in loops}
    cpu_rates: dict[str, list[float]] = {name: [] for name in loops}
    for step in loops.values():
        for _ in range(args.warmup):
            step()
    synchronize(device)
    for repeat in range(args.repeats):
        order = list(loops) if repeat % 2 == 0 else list(reversed(loops))
        for name in order:
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                loops[name]()
            synchronize(device)
            rates[name].append(tokens_per_block / (time.perf_counter() - started))
            cpu_rates[name].append(tokens_per_block / (time.process_time() - cpu_started))

    print(
        f"device {device}, {args.threads} thread(s), model {args.model} "
        f"({sum(p.numel() for p in model.parameters()):,} parameters), "
        f"batch {args.batch_size} x {args.seq_len} tokens, micro-batch {micro}, "
        f"{args.repeats} x {args.steps} steps per loop"
    )
    for name, values in rates.items():
        print(
            f"  {name:8s} median {statistics.median(values):10.0f} tokens/s  "
            f"(blocks: {', '.join(f'{v:.0f}' for v in values)})"
        )
    # adjacent blocks see the same machine load: the median of their ratios is the robust figure
    for clock, measured in (("wall-clock", rates), ("process CPU time", cpu_rates)):
        pairs = [t / p for t, p in zip(measured["trainer"], measured["plain"], strict=True)]
        print(
            f"  ratio trainer/plain ({clock}): {statistics.median(pairs):.3f} "
            f"(median of adjacent-block ratios {', '.join(f'{r:.3f}' for r in pairs)})"
        )
    print("  target: ratio >= 0.9 (process CPU time is the less load-sensitive figure on a CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
