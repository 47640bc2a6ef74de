"""Training tokens/s of packed runs (adamnoise.training.trainer) against single runs.

For each K in ``--packs`` this builds a pack of K members of one shape (seeds 0..K-1, same model,
batch size and micro-batch size) and times the pack's ``Trainer.train_step`` - the real packed
step of the engine the pack gets (stacked for dropout-free Adam runs: vmapped forward/backward over
the micro-batches with the per-member B_simple norms, stacked Adam,
max-update and its one synchronisation. The baseline, measured in the same process with the same
settings, is the single-run trainer's step (``Trainer.train_step``). Blocks of ``--steps`` steps
alternate between the baseline and the pack, ``--repeats`` times after a warm-up; the medians are
reported, and the ratio packed/single tokens/s (K members' tokens count K times: the pack trains K
runs). On CUDA it also prints the model FLOPs utilisation, from 6 * parameters + 12 * layers *
d_model * seq_len FLOPs per token (Kaplan et al. 2020; PaLM App. B) against ``--peak-tflops``.

    python benchmarks/packed_throughput.py                       # gpt-tiny on CPU, < 1 minute
    python benchmarks/packed_throughput.py --model txl-paper --corpus results/data/wikitext2 \\
        --seq-len 128 --batch-size 128 --micro-batch-size 64 --device cuda --precision bf16 \\
        --peak-tflops 989
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time

import torch
from common import add_run_arguments, add_timing_arguments, ensure_corpus, synchronize

from adamnoise.training.config import RunConfig
from adamnoise.training.trainer import Trainer


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs per token: 6 N for the weights plus 12 L d T for attention scores."""
    params = sum(p.numel() for p in model.parameters())
    layers = len(getattr(model, "blocks", getattr(model, "layers", [])))
    d_model = next(m.embedding_dim for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return 6.0 * params + 12.0 * layers * d_model * seq_len


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, batch_size=16)
    parser.add_argument("--packs", default="1,2,4,8", help="pack sizes K, comma-separated")
    add_timing_arguments(parser, steps=3, repeats=3, warmup=1)
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the single run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--peak-tflops", type=float, help="device peak for the MFU column")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    corpus = ensure_corpus(args.corpus)

    def raw(seed: int) -> dict:
        return {
            "run_id": f"throughput-s{seed}",
            "data": {"corpus": str(corpus), "seq_len": args.seq_len},
            "model": {"preset": args.model},
            "optimizer": {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-6},
            "training": {
                "seed": seed,
                "batch_size": args.batch_size,
                "micro_batch_size": args.micro_batch_size,
                "epochs": 1000,
                "device": args.device,
                "precision": args.precision,
                "tf32": args.tf32,
                "compile": args.compile,
                "num_threads": args.threads,
            },
        }

    quiet = io.StringIO()
    single = Trainer(RunConfig.from_dict(raw(0)), "/dev/null", progress_stream=quiet)
    device = single.device
    tokens_per_step = args.batch_size * args.seq_len
    flops = flops_per_token(single.model, args.seq_len)

    def timed(step, n: int) -> float:
        synchronize(device)
        started = time.perf_counter()
        for _ in range(n):
            step()
        synchronize(device)
        return time.perf_counter() - started

    print(
        f"# {args.model}, b={args.batch_size}, micro-batch {args.micro_batch_size}, "
        f"seq_len {args.seq_len}, {device}, {args.precision}"
        f"{', tf32' if args.tf32 else ''}{', compile (single)' if args.compile else ''}, "
        f"{args.threads} thread(s); {flops / 1e6:.2f} MFLOP/token"
    )
    header = "| K | single tokens/s | packed tokens/s (all members) | packed / single |"
    if device.type == "cuda" and args.peak_tflops:
        header += " MFU single | MFU packed |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for k in (int(v) for v in args.packs.split(",")):
        configs = [RunConfig.from_dict(raw(seed)) for seed in range(k)]
        outs = [f"/dev/null-{seed}" for seed in range(k)]
        pack = Trainer(configs, outs, progress_stream=quiet)

        def pack_step(pack=pack):
            pack.train_step()

        timed(single.train_step, args.warmup)
        timed(pack_step, args.warmup)
        single_rates, pack_rates, ratios = [], [], []
        for repeat in range(args.repeats):
            order = (
                [single.train_step, pack_step]
                if repeat % 2 == 0
                else [pack_step, single.train_step]
            )
            seconds = {fn: timed(fn, args.steps) for fn in order}
            single_rate = args.steps * tokens_per_step / seconds[single.train_step]
            pack_rate = k * args.steps * tokens_per_step / seconds[pack_step]
            single_rates.append(single_rate)
            pack_rates.append(pack_rate)
            ratios.append(pack_rate / single_rate)
        s, p, r = (statistics.median(v) for v in (single_rates, pack_rates, ratios))
        row = f"| {k} | {s:,.0f} | {p:,.0f} | {r:.2f} |"
        if device.type == "cuda" and args.peak_tflops:
            peak = args.peak_tflops * 1e12
            row += f" {s * flops / peak:.1%} | {p * flops / peak:.1%} |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
