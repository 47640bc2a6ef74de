"""One GPU check (issue 17): CUDA end to end, packed = single, throughput, MFU and memory.

Run from the repository root through ``bash benchmarks/gpu_check.sh [--smoke] [--out DIR]``:

(a) **device**: a short single run and a short stacked pack train under a ``TorchDispatchMode``
    that sees every aten op: once the device computes, no op may compute on a host floating-point
    tensor of more than one element (parameters, activations, optimiser state, per-step
    constants); host-to-device copies and device-to-host synchronisations are counted per step,
    and the result file must name the GPU;
(b) **packed = single**: each member of a pack against its single run, per step loss, gradient
    norm and validation loss: dropout 0 (stacked) in strict fp32, TF32 and bf16, and dropout 0.1
    (each member its own run's masks) in fp32, within ``TOLERANCES``; a member that diverges
    leaves the pack and the others go on as their single runs;
(c) **throughput**: tokens/s, MFU (training FLOPs per token counted by ``adamnoise.plan``,
    against the dense peak of the device for the precision) and peak memory of a single run and
    of packs K in {1, 4, 8, 16}: txl-paper at b = 128 and b = 1024 (micro-batch 64, as
    config/paper.yaml), TF32 and bf16, and gpt-tiny;
(d) writes ``gpu_check.json`` and ``gpu_check.md`` to the output directory.

Everything goes through the public entry points: ``adamnoise.training`` (``RunConfig``, ``train``,
``train_pack``); tokens/s are the result files' ``tokens_per_s`` (training time, evaluation
excluded) of a run timed after a one-step warm-up of the same shapes. A pack's rate is its
members' tokens over its training time (the sum of their shares of it); its engine (stacked: one
vmapped model; sequential: the members in turn, for dropout, chunked losses or compile) follows
from the model config.
The corpus is synthetic (uniform random tokens, WikiText-2's vocabulary for txl-paper), written
to the output directory: no network. ``--smoke`` runs the same logic on the CPU with tiny models
in under two minutes (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import io
import json
import math
import platform
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import adamnoise.training as training
from adamnoise.data.corpus import write_prepared
from adamnoise.plan import (
    GPUS,
    executed_flops_per_token,
    flop_terms,
    training_flops_per_token,
)

# relative tolerances of packed against single (max over the steps' loss and gradient norm and the
# validation losses): strict fp32 differs only in the summation order of batched matmuls; TF32
# rounds matmul inputs to 10 mantissa bits, bf16 autocast to 8, and the runs drift apart over the
# steps. Chosen, not yet measured on a GPU (docs/performance.md).
TOLERANCES = {"fp32": 1e-4, "tf32": 1e-2, "bf16": 5e-2}
MODES = {"fp32": ("fp32", False), "tf32": ("fp32", True), "bf16": ("bf16", False)}


@dataclass
class Sizes:
    """What the check trains: the full sizes for a GPU, tiny ones for ``--smoke`` on a CPU."""

    device: str
    txl: dict[str, Any]  # model config standing in for txl-paper
    txl_vocab: int
    txl_seq_len: int
    txl_batches: list[tuple[int, int, int]]  # (batch size, micro-batch, timed steps)
    gpt_vocab: int
    gpt_seq_len: int
    gpt_batches: list[tuple[int, int, int]]
    packs: list[int]
    modes: list[str]  # throughput precisions
    txl_variants: list[dict[str, Any]]  # txl models that stack (no dropout, no chunked loss)
    equality: dict[str, Any]  # model, seq_len, batch, micro-batch, steps, members
    threads: int | None = None
    budget_s: float = 270.0  # no new measurement starts after this (6 min in all)


FULL = Sizes(
    device="cuda",
    txl={"preset": "txl-paper"},
    txl_vocab=33_278,
    txl_seq_len=128,
    txl_batches=[(128, 64, 8), (1024, 64, 2)],
    gpt_vocab=103,
    gpt_seq_len=64,
    gpt_batches=[(64, 64, 20)],
    packs=[1, 4, 8, 16],
    modes=["tf32", "bf16"],
    txl_variants=[{"preset": "txl-paper", "dropout": 0.0, "loss_chunk_tokens": None}],
    equality={"model": "txl-tiny", "seq_len": 64, "batch": 16, "micro": 8, "steps": 6, "k": 3},
    budget_s=270.0,
)
SMOKE = Sizes(
    device="cpu",
    txl={"preset": "txl-tiny"},
    txl_vocab=256,
    txl_seq_len=32,
    txl_batches=[(8, 4, 2), (32, 8, 1)],
    gpt_vocab=103,
    gpt_seq_len=32,
    gpt_batches=[(8, 8, 2)],
    packs=[1, 2],
    modes=["fp32", "bf16"],
    txl_variants=[],
    equality={"model": "txl-tiny", "seq_len": 16, "batch": 4, "micro": 2, "steps": 3, "k": 2},
    threads=1,
    budget_s=80.0,
)


@dataclass
class Report:
    device: str
    smoke: bool
    started: float = field(default_factory=time.perf_counter)
    checks: list[dict[str, Any]] = field(default_factory=list)
    throughput: list[dict[str, Any]] = field(default_factory=list)
    writer: Any = None  # called after every check and row: a killed run leaves what it measured

    def check(self, name: str, status: str, detail: str, **values) -> None:
        self.checks.append({"name": name, "status": status, "detail": detail, **values})
        print(f"[{status}] {name}: {detail}", file=sys.stderr, flush=True)
        self.flush()

    def row(self, values: dict[str, Any]) -> None:
        self.throughput.append(values)
        self.flush()

    def flush(self) -> None:
        if self.writer is not None:
            self.writer(self)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --------------------------------------------------------------------------------------------
# data and configs


def synthetic_corpus(root: Path, vocab: int, train_tokens: int, seed: int = 0) -> Path:
    """A prepared corpus of uniform random tokens (the format of ``adamnoise data prepare``)."""
    path = root / f"synthetic-v{vocab}-t{train_tokens}"
    if (path / "stats.json").exists():
        return path
    rng = np.random.default_rng(seed)
    sizes = {"train": train_tokens, "valid": 4_097, "test": 4_097}
    streams = {split: rng.integers(0, vocab, n, dtype=np.int32) for split, n in sizes.items()}
    stats = {"corpus": "synthetic", "level": "word", "tokens": sizes, "vocab_size": vocab}
    write_prepared(path, streams, [f"w{i}" for i in range(vocab)], "word", stats)
    return path


def run_config(
    corpus: Path,
    model: dict[str, Any],
    seq_len: int,
    batch: int,
    micro: int,
    steps: int,
    mode: str,
    device: str,
    seed: int = 0,
    beta2: float = 0.999,
    lr: float = 1e-3,
    threads: int | None = None,
    run_id: str = "gpu-check",
) -> Any:
    precision, tf32 = MODES[mode]
    raw = {
        "run_id": f"{run_id}-s{seed}",
        "data": {"corpus": str(corpus), "seq_len": seq_len},
        "model": model,
        "optimizer": {"name": "adam", "lr": lr, "beta1": 0.9, "beta2": beta2, "eps": 1e-6},
        "training": {
            "seed": seed,
            "batch_size": batch,
            "micro_batch_size": micro,
            "epochs": 1000.0,
            "max_steps": steps,
            "eval_every": 1000.0,  # evaluations before the first and after the last step only
            "eval_batch_size": 32,
            "test_at_best": False,
            "device": device,
            "precision": precision,
            "tf32": tf32,
            "num_threads": threads,
        },
    }
    return training.RunConfig.from_dict(raw)


def train_pack_entry():
    """``train_pack`` from the package's exports (a stable entry point)."""
    return training.train_pack


def quiet_single(config, out: Path):
    return training.train(config, out, progress_stream=io.StringIO())


def quiet_pack(configs, outs: list[Path]):
    return train_pack_entry()(configs, outs, progress_stream=io.StringIO())


def read_result(path: Path) -> dict[str, Any]:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        return {
            "loss": ds["loss"].values.astype(float),
            "grad_norm": ds["grad_norm"].values.astype(float),
            "val_loss": ds["val_loss"].values.astype(float),
            "tokens_per_s": float(ds["tokens_per_s"]),
            "steps": int(ds.sizes["train_step"]),
            "device": ds.attrs.get("provenance_device", ""),
            "status": ds.attrs.get("status", ""),
        }


def max_relative_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    worst = 0.0
    for key in ("loss", "grad_norm", "val_loss"):
        x, y = a[key], b[key]
        if x.shape != y.shape:
            return math.inf
        scale = np.maximum(np.abs(x), np.abs(y))
        diff = np.abs(x - y) / np.where(scale > 0, scale, 1.0)
        worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
        if np.isnan(x).any() != np.isnan(y).any():
            return math.inf
    return worst


# --------------------------------------------------------------------------------------------
# (a) the device audit


class DeviceAudit(TorchDispatchMode):
    """Counts aten ops by where their tensors live, for a run on ``device`` (``cuda``; any device
    type in the tests). Once the device computes (its first matmul or embedding: the models are
    built on the host before that), an op computing on a host floating-point tensor of more than
    one element (weights, activations or optimiser state left on the host, per-step constants
    built there) is a failure (``host_float``); ops on host integer tensors (index bookkeeping,
    ``host_index``), host-to-device and device-to-host copies and scalar reads of device tensors
    (each a synchronisation) are counted. Host work before that is setup (``setup_host_ops``)."""

    COPIES = ("_to_copy", "copy_")
    DEVICE_WORK = ("mm", "addmm", "bmm", "embedding", "matmul", "linear")

    def __init__(self, device: str):
        super().__init__()
        self.device = device
        self.ops = 0
        self.computing = False
        self.setup_host_ops = 0
        self.host_float: Counter[str] = Counter()
        self.host_index: Counter[str] = Counter()
        self.h2d = 0
        self.d2h = 0
        self.scalar_reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        name = str(func.overloadpacket.__name__)
        host = [t for t in inputs if t.device.type == "cpu" and t.numel() > 1]
        on_device = any(t.device.type == self.device for t in inputs)
        out_device = any(t.device.type == self.device for t in outputs)
        if name in self.DEVICE_WORK and on_device:
            self.computing = True
        if name in self.COPIES and on_device and not out_device:
            self.d2h += 1
        elif name in self.COPIES and out_device and not on_device:
            self.h2d += 1
        elif name == "_local_scalar_dense":
            self.scalar_reads += on_device
        elif host and self.device != "cpu":
            if not self.computing:
                self.setup_host_ops += 1
            elif any(t.is_floating_point() for t in host):
                self.host_float[name] += 1
            else:
                self.host_index[name] += 1
        return out


def check_device(report: Report, sizes: Sizes, corpus: Path, out: Path) -> None:
    """(a): a single run and a pack of two, 3 steps each, under the audit."""
    steps = 3
    # the single run as configured; the pack without dropout and chunking, so that it stacks
    stacked = {**sizes.txl, "dropout": 0.0, "loss_chunk_tokens": None}
    for label, k, model in (("single run", 0, sizes.txl), ("stacked pack of 2", 2, stacked)):
        configs = [
            run_config(
                corpus,
                model,
                sizes.txl_seq_len,
                8,
                4,
                steps,
                "tf32",
                sizes.device,
                seed=s,
                threads=sizes.threads,
                run_id=f"audit-{k}",
            )
            for s in range(max(k, 1))
        ]
        outs = [out / f"audit-{k}-{i}.nc" for i in range(len(configs))]
        audit = DeviceAudit(sizes.device)
        try:
            with audit:
                if k:
                    quiet_pack(configs, outs)
                else:
                    quiet_single(configs[0], outs[0])
        except Exception as error:  # noqa: BLE001 - the report says what failed
            report.check(f"device: {label}", "fail", f"{type(error).__name__}: {error}")
            continue
        result = read_result(outs[0])
        named = result["device"]
        values = {
            "aten_ops": audit.ops,
            "host_float_ops": dict(audit.host_float),
            "host_index_ops": dict(audit.host_index),
            "setup_host_ops": audit.setup_host_ops,
            "h2d_copies_per_step": audit.h2d / steps,
            "d2h_copies_per_step": audit.d2h / steps,
            "scalar_reads_per_step": audit.scalar_reads / steps,
            "result_device": named,
        }
        if sizes.device != "cuda":
            report.check(
                f"device: {label}", "pass",
                f"CPU run ({audit.ops} aten ops seen); the CUDA audit runs on a GPU",
                **values,
            )  # fmt: skip
            continue
        problems = []
        if audit.host_float:
            problems.append(f"float ops on the host: {dict(audit.host_float.most_common(5))}")
        if named in ("", "cpu"):
            problems.append(f"the result names device {named!r}")
        detail = (
            f"{audit.ops} aten ops, per step {audit.h2d / steps:.1f} host-to-device copies, "
            f"{audit.d2h / steps:.1f} device-to-host copies, {audit.scalar_reads / steps:.1f} "
            f"scalar reads (evaluations included), {sum(audit.host_index.values())} index ops on "
            f"the host; result device {named!r}"
        )
        report.check(
            f"device: {label}",
            "fail" if problems else "pass",
            "; ".join(problems) + ("; " if problems else "") + detail,
            **values,
        )


# --------------------------------------------------------------------------------------------
# (b) packed against single


def check_equality(report: Report, sizes: Sizes, corpus: Path, out: Path) -> None:
    e = sizes.equality
    for mode in ("fp32", "tf32", "bf16"):
        for dropout in (0.0, 0.1):
            if dropout and mode != "fp32":
                continue
            model = {"preset": e["model"], "dropout": dropout}
            configs = [
                run_config(
                    corpus,
                    model,
                    e["seq_len"],
                    e["batch"],
                    e["micro"],
                    e["steps"],
                    mode,
                    sizes.device,
                    seed=s,
                    beta2=(0.99, 0.999, 0.95)[s % 3],
                    threads=sizes.threads,
                    run_id=f"eq-{mode}-{dropout}",
                )
                for s in range(e["k"])
            ]
            tag = f"{mode}-d{dropout}"
            singles = [out / f"eq-{tag}-single-{i}.nc" for i in range(e["k"])]
            packed = [out / f"eq-{tag}-pack-{i}.nc" for i in range(e["k"])]
            name = f"packed = single: {mode}" + (", dropout 0.1 (own masks)" if dropout else "")
            tolerance = TOLERANCES[mode]
            try:
                for config, path in zip(configs, singles, strict=True):
                    quiet_single(config, path)
                quiet_pack(configs, packed)
                worst = max(
                    max_relative_difference(read_result(a), read_result(b))
                    for a, b in zip(singles, packed, strict=True)
                )
            except Exception as error:  # noqa: BLE001
                report.check(name, "fail", f"{type(error).__name__}: {error}")
                continue
            report.check(
                name, "pass" if worst <= tolerance else "fail",
                f"max relative difference {worst:.2e} over {e['k']} members x {e['steps']} steps "
                f"(loss, gradient norm, validation loss); tolerance {tolerance:g}",
                max_relative_difference=worst, tolerance=tolerance,
            )  # fmt: skip


def check_stopped_member(report: Report, sizes: Sizes, corpus: Path, out: Path) -> None:
    """A member that diverges leaves the pack (its weights no longer change, the stack shrinks)
    and the others go on as their single runs: a pack of 3 (dropout 0, so stacked) whose middle
    member has lr 1e6, against the three single runs."""
    e = sizes.equality
    steps = 4
    configs = [
        run_config(
            corpus,
            {"preset": e["model"], "dropout": 0.0},
            e["seq_len"],
            e["batch"],
            e["micro"],
            steps,
            "fp32",
            sizes.device,
            seed=s,
            lr=1e6 if s == 1 else 1e-3,
            threads=sizes.threads,
            run_id="stop",
        )
        for s in range(3)
    ]
    name = "stopped member leaves the pack"
    singles = [out / f"stop-single-{i}.nc" for i in range(3)]
    packed = [out / f"stop-pack-{i}.nc" for i in range(3)]
    try:
        for config, path in zip(configs, singles, strict=True):
            quiet_single(config, path)
        quiet_pack(configs, packed)
        pack_results = [read_result(path) for path in packed]
        worst = max(
            max_relative_difference(read_result(a), b)
            for a, b in zip(singles, pack_results, strict=True)
        )
    except Exception as error:  # noqa: BLE001
        report.check(name, "fail", f"{type(error).__name__}: {error}")
        return
    statuses = [r["status"] for r in pack_results]
    steps_done = [r["steps"] for r in pack_results]
    ok = (
        statuses == ["completed", "diverged", "completed"]
        and steps_done[1] < steps == steps_done[0] == steps_done[2]
        and worst <= TOLERANCES["fp32"]
    )
    report.check(
        name,
        "pass" if ok else "fail",
        f"statuses {statuses}, steps {steps_done}; every member against its single run: max "
        f"relative difference {worst:.2e} (tolerance {TOLERANCES['fp32']:g})",
        max_relative_difference=worst,
    )


# --------------------------------------------------------------------------------------------
# (c) throughput


def peak_flops(device: torch.device, mode: str) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    for gpu, peaks in GPUS.items():
        if gpu in name:
            return peaks[MODES[mode][0] if mode != "tf32" else "tf32"]
    return None


def engine_of(model: dict[str, Any], k: int) -> str:
    """How a job of k runs (0: a single run) steps (training/trainer.py ``build_engine``)."""
    from adamnoise.models import resolve_model_config

    resolved = resolve_model_config(model)
    if k == 0:
        return "single"
    if k == 1 or resolved.get("dropout", 0) > 0 or resolved.get("loss_chunk_tokens"):
        return "sequential"
    return "stacked"


@dataclass(frozen=True)
class Workload:
    """A model and a batch shape that the throughput check times."""

    model: dict[str, Any]  # model config
    label: str  # the row's model column
    vocab: int
    seq_len: int
    batch: int
    micro: int  # micro-batch size
    steps: int  # timed steps


def throughput_workloads(sizes: Sizes) -> list[Workload]:
    """Timed in this order, so that a tight budget still measures what matters most: txl's first
    batch size, gpt-tiny, the stacked txl variants, then txl's larger batch sizes."""
    txl = [
        Workload(sizes.txl, sizes.txl["preset"], sizes.txl_vocab, sizes.txl_seq_len, *batch)
        for batch in sizes.txl_batches
    ]
    gpt = [
        Workload({"preset": "gpt-tiny"}, "gpt-tiny", sizes.gpt_vocab, sizes.gpt_seq_len, *batch)
        for batch in sizes.gpt_batches
    ]
    stacked = [
        replace(txl[0], model=variant, label=f"{variant['preset']}/stacked")
        for variant in sizes.txl_variants
    ]
    return [txl[0], *gpt, *stacked, *txl[1:]]


def measure(
    report: Report, sizes: Sizes, corpus: Path, out: Path, work: Workload, mode: str, k: int
) -> None:
    """One row: a single run (k = 0) or a pack of k, timed after a one-step warm-up."""
    model, label, vocab, seq_len = work.model, work.label, work.vocab, work.seq_len
    batch, micro, steps = work.batch, work.micro, work.steps
    row: dict[str, Any] = {
        "model": label, "batch_size": batch, "micro_batch_size": micro, "seq_len": seq_len,
        "precision": mode, "runs": "single" if k == 0 else f"pack K={k}", "k": k, "steps": steps,
        "engine": engine_of(model, k),
    }  # fmt: skip
    if report.elapsed > sizes.budget_s:
        report.row({**row, "status": "skipped (time budget)"})
        return
    members = max(k, 1)
    device = torch.device(sizes.device)

    def call(n: int, tag: str) -> list[Path]:
        configs = [
            run_config(
                corpus,
                model,
                seq_len,
                batch,
                micro,
                n,
                mode,
                sizes.device,
                seed=s,
                threads=sizes.threads,
                run_id=f"tp-{label}-{k}",
            )
            for s in range(members)
        ]
        outs = [out / f"tp-{tag}-{i}.nc" for i in range(members)]
        if k == 0:
            quiet_single(configs[0], outs[0])
        else:
            quiet_pack(configs, outs)
        return outs

    try:
        call(1, "warmup")
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        outs = call(steps, "timed")
        wall = time.perf_counter() - started
        results = [read_result(path) for path in outs]
    except torch.cuda.OutOfMemoryError:
        report.row({**row, "status": "out of memory"})
        return
    except Exception as error:  # noqa: BLE001
        report.row({**row, "status": f"failed: {type(error).__name__}: {error}"})
        return
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    tokens = [r["steps"] * batch * seq_len for r in results]
    # a member's training time is its share of the steps it trained in: the shares add up to the
    # job's training time
    seconds = sum(t / r["tokens_per_s"] for t, r in zip(tokens, results, strict=True))
    rate = sum(tokens) / seconds
    terms = flop_terms(model, seq_len, vocab, micro)
    flops = training_flops_per_token(terms)  # model FLOPs: what MFU counts
    peak = peak_flops(device, mode)
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    row.update(
        status="ok",
        tokens_per_s=rate,
        tokens_per_s_per_run=rate / members,
        training_flops_per_token=flops,
        executed_flops_per_token=executed_flops_per_token(terms),
        achieved_tflops=rate * flops / 1e12,
        mfu=rate * flops / peak if peak else None,
        peak_memory_gib=memory,
        wall_s=wall,
    )
    report.row(row)
    print(
        f"  {label} b={batch} {mode} {row['runs']}: {rate:,.0f} tokens/s"
        + (f", MFU {row['mfu']:.1%}" if row["mfu"] else "")
        + (f", peak {memory:.1f} GiB" if memory else ""),
        file=sys.stderr,
        flush=True,
    )


def check_throughput(report: Report, sizes: Sizes, root: Path, out: Path) -> None:
    for work in throughput_workloads(sizes):
        # N = 2 b training sequences: every batch has exactly b sequences
        corpus = synthetic_corpus(root, work.vocab, 2 * work.batch * work.seq_len + 1)
        for mode in sizes.modes:
            for k in [0, *sizes.packs]:
                measure(report, sizes, corpus, out, work, mode, k)


# --------------------------------------------------------------------------------------------
# (d) the report


def markdown(report: Report, meta: dict[str, Any]) -> str:
    lines = [
        f"# GPU check ({'smoke, CPU' if report.smoke else 'full'})",
        "",
        f"{meta['date']}, {meta['device_name']}, torch {meta['torch']}, "
        f"{meta['elapsed_s']:.0f} s; command: `{meta['command']}`",
        "",
        "## Checks",
        "",
        "| check | status | detail |",
        "|---|---|---|",
    ]
    for c in report.checks:
        lines.append(f"| {c['name']} | {c['status']} | {c['detail'].replace('|', '/')} |")
    lines += [
        "",
        "## Throughput",
        "",
        "Training tokens/s of all runs of a job (evaluation excluded), MFU against the dense "
        "peak of the precision, FLOPs counted by `adamnoise.plan.flop_terms`.",
        "",
        "| model | b | micro | precision | runs | engine | tokens/s | tokens/s per run | TFLOP/s "
        "| MFU | peak memory | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.throughput:
        ok = r["status"] == "ok"

        def cell(key: str, fmt: str, row=r, ok=ok) -> str:
            return format(row[key], fmt) if ok and row.get(key) is not None else "-"

        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['micro_batch_size']} | {r['precision']} | "
            f"{r['runs']} | {r['engine']} | {cell('tokens_per_s', ',.0f')} | "
            f"{cell('tokens_per_s_per_run', ',.0f')} | {cell('achieved_tflops', '.3g')} | "
            f"{cell('mfu', '.1%')} | "
            f"{cell('peak_memory_gib', '.1f')}{' GiB' if ok and r.get('peak_memory_gib') else ''}"
            f" | {r['status']} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(report: Report, out: Path, meta: dict[str, Any]) -> list[str]:
    """Write gpu_check.json and gpu_check.md; returns the names of the failed checks."""
    meta["elapsed_s"] = report.elapsed
    failed = [c["name"] for c in report.checks if c["status"] == "fail"]
    data = {**meta, "ok": not failed, "checks": report.checks, "throughput": report.throughput}
    (out / "gpu_check.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "gpu_check.md").write_text(markdown(report, meta))
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (< 2 min)")
    parser.add_argument("--out", type=Path, default=Path("results/gpu_check"), help="output dir")
    parser.add_argument("--budget", type=float, help="seconds after which no measurement starts")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: device,equality,throughput"
    )
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.budget is not None:
        sizes.budget_s = args.budget
    if sizes.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run with --smoke on a CPU", file=sys.stderr)
        return 2
    if sizes.threads:
        torch.set_num_threads(sizes.threads)
    out = args.out
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    report = Report(device=sizes.device, smoke=args.smoke)
    skip = set(filter(None, args.skip.split(",")))
    corpus = synthetic_corpus(out / "corpus", sizes.txl_vocab, 64 * sizes.txl_seq_len * 8 + 1)
    small = synthetic_corpus(out / "corpus", 103, 64 * 64 * 4 + 1)
    parts = [
        ("device", lambda: check_device(report, sizes, corpus, runs)),
        ("equality", lambda: check_equality(report, sizes, small, runs)),
        ("equality", lambda: check_stopped_member(report, sizes, small, runs)),
        ("throughput", lambda: check_throughput(report, sizes, out / "corpus", runs)),
    ]
    device_name = (
        torch.cuda.get_device_name() if sizes.device == "cuda" else platform.processor() or "cpu"
    )
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device_name": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "elapsed_s": 0.0,
        "command": "bash benchmarks/gpu_check.sh" + (" --smoke" if args.smoke else ""),
        "smoke": args.smoke,
        "tolerances": TOLERANCES,
        "budget_s": sizes.budget_s,
    }
    report.writer = lambda r: write_outputs(r, out, meta)
    for part, run in parts:
        if part in skip:
            continue
        try:
            run()
        except Exception:  # noqa: BLE001 - one broken part must not hide the others
            report.check(part, "fail", traceback.format_exc(limit=3).replace("\n", " "))
    failed = write_outputs(report, out, meta)
    with contextlib.suppress(OSError):
        print((out / "gpu_check.md").read_text())
    print(
        f"gpu_check: {len(report.checks) - len(failed)} of {len(report.checks)} checks without "
        f"failure, {sum(r['status'] == 'ok' for r in report.throughput)} throughput rows, "
        f"{report.elapsed:.0f} s; wrote {out}/gpu_check.json and gpu_check.md",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
