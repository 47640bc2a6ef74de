"""``adamnoise plan --configfile FILE ...``: what a sweep costs before it runs (torch-free).

For the active experiments of a workflow config (merged as Snakemake merges ``--configfile``s over
``config/config.yaml``) it counts runs and training jobs (a pack is one job:
``Experiment.packs``), the tokens every run trains at its cap, and from them the device-hours:

    device-hours = sum over runs of FLOPs(run) / (peak FLOP/s x MFU) / 3600
    FLOPs(run)   = tokens_at_cap x F_executed + evaluated_tokens x F_forward (+ exact B_simple)

where ``F_executed`` (``F_train`` and any recomputation) and ``F_forward`` are the matmul FLOPs per
token counted layer by layer for the actual architecture (``flop_terms``: attention projections, the
attention score and value products over the whole key length, the feed-forward, the output
projection over the vocabulary, tied or not; an embedding lookup is no matmul and costs nothing),
with a backward of twice the forward (once for the input gradient, once for the weight gradient;
once only where the input needs no gradient). The peak FLOP/s are the device's dense peak for the
run's precision and the MFU (model FLOPs utilisation) an *assumption* per precision
(``ASSUMED_MFU``) until ``benchmarks/gpu_check.sh`` measures it (``--measured gpu_check.json`` takes
the FLOP/s measured for a single run of the same preset, precision and micro-batch size); on the CPU
the rate is the one measured for gpt-tiny (``CPU_MEASURED``), scaled by FLOPs per token. Peak memory
per job (weights, gradients and Adam state per member, activations of one micro-batch per member,
calibrated against the tensors autograd saves) and disk (result files, the largest checkpoint) are
estimates too; docs/performance.md gives the arithmetic for config/paper.yaml.

``plan_summary_line`` is the one line that every Snakemake invocation logs at parse time.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamnoise.cli import add_command

DEFAULT_CONFIG = "config/config.yaml"  # the Snakefile's `configfile:`, merged under --configfile
GIB = 2**30
SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"

# Dense peak FLOP/s (no sparsity) and memory of the GPUs the paper grid is planned for. H100 SXM5
# and H200 SXM share the GH100 compute (NVIDIA H100 / H200 datasheets); the H200 has 141 GB of
# HBM3e (139 GiB usable as reported by the device) against 80 GB.
GPUS: dict[str, dict[str, float]] = {
    "h100": {"fp32": 66.9e12, "tf32": 494.7e12, "bf16": 989.4e12, "memory_gib": 79.6},
    "h200": {"fp32": 66.9e12, "tf32": 494.7e12, "bf16": 989.4e12, "memory_gib": 139.0},
}
DEFAULT_GPU = "h200"

# ASSUMED model FLOPs utilisation per precision mode on an H100/H200 (estimates, not measured:
# no GPU was lent to issue 17; benchmarks/gpu_check.sh measures them). Eager PyTorch on a 55 M
# model with 8,192-token micro-batches: tensor-core matmuls are about half the time, the rest is
# memory-bound (the fp32 softmax over 33,278 words and its cross-entropy, attention softmax,
# dropout, layer norms, Adam); bf16 halves the matmul time but not the memory-bound part, and
# torch.compile fuses the elementwise kernels. Small models (gpt-tiny, nanoGPT) are launch-bound on
# such a GPU: for them these MFUs are far too high, and the hours an underestimate.
ASSUMED_MFU: dict[str, float] = {
    "fp32": 0.60,  # of the CUDA-core fp32 peak (66.9 TFLOP/s): matmuls dominate
    "tf32": 0.25,
    "tf32+compile": 0.30,
    "bf16": 0.20,
    "bf16+compile": 0.30,
}

# MEASURED training tokens/s on the CPU (benchmarks/train_throughput.py, `trainer` loop, one torch
# thread, fp32, on the 2-core machine of issue 17 shared with other jobs, 2026-12-03): gpt-tiny,
# pydoc-char, seq_len 64, b = 64, micro-batch 64 (the default config's shape). Other models on
# the CPU are costed at the same FLOP/s (this rate times gpt-tiny's training FLOPs per token).
CPU_MEASURED: dict[str, Any] = {
    "model": {"preset": "gpt-tiny"},
    "dataset": "pydoc-char",
    "seq_len": 64,
    "micro_batch": 64,
    "tokens_per_s_per_thread": 23_900.0,
}

# bytes per parameter held on the device per member: weights, .grad, the accumulated gradient
# (micro-batches), Adam's two moments and the copy for the max-update
BYTES_PER_PARAMETER = 24
# netCDF result file: measured on results of the default config (size against steps and evals)
RESULT_FILE_BYTES = 29_000
RESULT_BYTES_PER_STEP = 45
RESULT_BYTES_PER_EVAL = 72
CUDA_CONTEXT_BYTES = 0.5 * GIB


class PlanError(ValueError):
    """A config that cannot be planned (the message names the key or the file)."""


# --------------------------------------------------------------------------------------------
# the model: parameters, FLOPs, activations (counted from the resolved model config)


@dataclass(frozen=True)
class FlopTerm:
    """One matmul of the model: forward FLOPs per predicted token and its backward multiple."""

    name: str
    forward: float
    backward: float = 2.0  # input and weight gradient; 1.0 where the input needs none; 0 no grad
    recompute: float = 0.0  # forwards again in the backward (activation checkpointing)

    @property
    def training(self) -> float:
        """Model FLOPs of forward and backward (what MFU counts)."""
        return self.forward * (1.0 + self.backward)

    @property
    def executed(self) -> float:
        """FLOPs the device executes in training: the model FLOPs and the recomputation."""
        return self.forward * (1.0 + self.backward + self.recompute)


def flop_terms(
    model_cfg: dict[str, Any], seq_len: int, vocab_size: int, micro_batch: int = 1
) -> list[FlopTerm]:
    """The matmuls of one forward (and their backward multiples), FLOPs per predicted token.

    A matmul [m, k] x [k, n] costs 2 m k n FLOPs. Attention is counted over every key (the
    models compute the full score matrix and mask it; a causal flash kernel would skip about
    half of it). Elementwise work (softmax, norms, dropout, activations) and the embedding lookup
    are not counted. Terms computed once per forward call (Transformer-XL's projection of the
    position encodings) are divided by the ``micro_batch`` sequences of that call. With
    ``loss_chunk_tokens`` below a micro-batch's tokens the backward recomputes the output layer
    (``recompute``: executed, not model FLOPs).
    """
    from adamnoise.models.presets import resolve_model_config

    m = resolve_model_config(model_cfg)
    arch, d, t, v = m["arch"], m["d_model"], seq_len, vocab_size
    layers = m["n_layer"]
    terms: list[FlopTerm] = []
    if arch == "transformer_xl":
        inner = m["n_head"] * m["d_head"]
        context = m["mem_len"] if m["carry_memory"] else 0
        klen = context + t
        if context:
            # the memory: the context tokens through every layer under no_grad (attention over
            # the context only), per predicted token
            per_token = 2 * d * 3 * inner + 3 * 2 * context * inner + 2 * inner * d
            per_token += 4 * d * m["d_inner"]
            terms.append(FlopTerm("memory forward (no grad)", layers * per_token * context / t, 0))
        terms += [
            FlopTerm("qkv projection", layers * 2 * d * 3 * inner * klen / t),
            FlopTerm("position projection", layers * 2 * klen * d * inner / (t * micro_batch), 1),
            FlopTerm("attention scores (content)", layers * 2 * klen * inner),
            FlopTerm("attention scores (position)", layers * 2 * klen * inner),
            FlopTerm("attention x values", layers * 2 * klen * inner),
            FlopTerm("attention output", layers * 2 * inner * d),
            FlopTerm("feed-forward", layers * 4 * d * m["d_inner"]),
        ]
    elif arch in ("gpt", "nanogpt"):
        hidden = m["d_mlp"] if arch == "gpt" else 4 * d
        up = 2 * hidden if arch == "gpt" else hidden  # SwiGLU: gate and up in one matrix
        terms += [
            FlopTerm("qkv projection", layers * 2 * d * 3 * d),
            FlopTerm("attention scores", layers * 2 * t * d),
            FlopTerm("attention x values", layers * 2 * t * d),
            FlopTerm("attention output", layers * 2 * d * d),
            FlopTerm("feed-forward", layers * (2 * d * up + 2 * hidden * d)),
        ]
    else:  # pragma: no cover - resolve_model_config knows every arch
        raise PlanError(f"no FLOPs count for arch {arch!r}")
    tied = " (tied)" if m.get("tie_embeddings") else ""
    chunk = m.get("loss_chunk_tokens")
    if chunk and micro_batch * t > chunk:  # checkpointed chunks: the backward recomputes logits
        terms.append(
            FlopTerm(f"output projection over the vocabulary{tied}, chunked", 2 * d * v, 2, 1)
        )
    else:
        terms.append(FlopTerm(f"output projection over the vocabulary{tied}", 2 * d * v))
    return terms


def training_flops_per_token(terms: Sequence[FlopTerm]) -> float:
    return sum(term.training for term in terms)


def executed_flops_per_token(terms: Sequence[FlopTerm]) -> float:
    return sum(term.executed for term in terms)


def forward_flops_per_token(terms: Sequence[FlopTerm]) -> float:
    return sum(term.forward for term in terms)


def parameter_count(model_cfg: dict[str, Any], vocab_size: int) -> int:
    """Trainable scalars of the model (a tied matrix once), as ``models.count_parameters``."""
    from adamnoise.models.presets import resolve_model_config

    m = resolve_model_config(model_cfg)
    arch, d, v, layers = m["arch"], m["d_model"], vocab_size, m["n_layer"]
    if arch == "transformer_xl":
        inner = m["n_head"] * m["d_head"]
        per_layer = 3 * d * inner + d * inner + inner * d + 2 * d  # qkv, r_net, o_net, norm
        per_layer += 2 * d * m["d_inner"] + m["d_inner"] + d + 2 * d  # feed-forward, norm
        return v * d + layers * per_layer + 2 * inner + d * v + v  # + u, v biases, output
    if arch == "gpt":
        per_layer = 2 * d + 4 * d * d + 3 * d * m["d_mlp"]
        return v * d + layers * per_layer + d + (0 if m["tie_embeddings"] else d * v)
    bias = bool(m["bias"])
    per_layer = 2 * d * (1 + bias) + 12 * d * d + (9 * d if bias else 0)
    head = 0 if m["tie_embeddings"] else d * v
    return v * d + m["max_seq_len"] * d + layers * per_layer + d * (1 + bias) + head


def activation_bytes_per_token(
    model_cfg: dict[str, Any],
    seq_len: int,
    vocab_size: int,
    precision: str,
    micro_tokens: int = 1,
) -> float:
    """What autograd keeps for the backward, bytes per token of a micro-batch (an estimate).

    Counted per layer and calibrated against ``torch.autograd.graph.saved_tensors_hooks`` on the
    CPU (fp32 and bf16 autocast; tests/test_plan.py holds them within 25 %): Transformer-XL
    keeps ~4 (6 d + 6 H d_head + 3 d_inner + 2 H klen) bytes per layer (two score-sized tensors
    per head; x 0.7 under bf16 autocast), GPT (SDPA keeps no score matrix) ~4 (11 d + 4 d_mlp),
    nanoGPT ~4 (17 d + 13 d with dropout) (x 0.9 under bf16); plus the log-softmax over the
    vocabulary (4 V, 5 V under bf16 autocast), which at V = 33,278 is a quarter of txl-paper's
    total, unless ``loss_chunk_tokens`` is below the ``micro_tokens`` of a micro-batch: then each
    checkpointed chunk keeps only its hidden input, and the chunk's logits (``logits_bytes``) are
    transient.
    """
    from adamnoise.models.presets import resolve_model_config

    m = resolve_model_config(model_cfg)
    arch, d, layers = m["arch"], m["d_model"], m["n_layer"]
    bf16 = precision == "bf16"
    if arch == "transformer_xl":
        klen = seq_len + (m["mem_len"] if m["carry_memory"] else 0)
        inner = m["n_head"] * m["d_head"]
        per_layer = 4 * (6 * d + 6 * inner + 3 * m["d_inner"] + 2 * m["n_head"] * klen)
        per_layer *= 0.7 if bf16 else 1.0
    elif arch == "gpt":
        per_layer = 4 * (11 * d + 4 * m["d_mlp"])
        per_layer *= 0.9 if bf16 else 1.0
    else:
        per_layer = 4 * (17 * d + (13 * d if m["dropout"] > 0 else 0))
        per_layer *= 0.9 if bf16 else 1.0
    chunk = m.get("loss_chunk_tokens")
    if chunk and micro_tokens > chunk:  # each chunk keeps only its hidden input (loss.py)
        return layers * per_layer + 16 * d
    return layers * per_layer + (5 if bf16 else 4) * vocab_size + 12 * d


def logits_bytes(model_cfg: dict[str, Any], vocab_size: int, micro_tokens: int) -> float:
    """The float32 logits that exist at once in the backward, and their gradient (per member)."""
    from adamnoise.models.presets import resolve_model_config

    chunk = resolve_model_config(model_cfg).get("loss_chunk_tokens")
    tokens = min(chunk, micro_tokens) if chunk else micro_tokens
    return (3 if chunk and micro_tokens > chunk else 1) * 4 * vocab_size * tokens


# --------------------------------------------------------------------------------------------
# corpora and config


@functools.cache
def corpus_sizes(name: str) -> dict[str, int]:
    """Vocabulary and tokens per split of a registered corpus, known before it is prepared."""
    from adamnoise.data.corpus import CORPORA

    if name == "wikitext2":
        from adamnoise.data.wikitext2 import WIKITEXT2_PUBLISHED as published

        return {"vocab": published["vocab_size"], **published["tokens"]}
    if name not in CORPORA:
        raise PlanError(f"unknown corpus {name!r}")
    from adamnoise.data.prepared import SPLITS, text_lines, word_tokens
    from adamnoise.data.pydoc import build_char_vocab, pydoc_splits

    texts = pydoc_splits()[0]
    if CORPORA[name][0] == "char":
        streams: dict[str, Sequence[str]] = texts
        vocab = len(build_char_vocab(texts[s] for s in SPLITS))
    else:
        streams = {s: word_tokens(text_lines(texts[s])) for s in SPLITS}
        vocab = len({w for s in SPLITS for w in streams[s]})
    return {"vocab": vocab, **{s: len(streams[s]) for s in SPLITS}}


def merge_config(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``, mappings merged key by key (Snakemake's ``--configfile``)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(paths: Sequence[str], base: str | None = DEFAULT_CONFIG) -> dict[str, Any]:
    """The workflow config Snakemake would see: ``base`` (if it exists), then each file over it."""
    from adamnoise.io import load_yaml

    config: dict[str, Any] = {}
    files = ([base] if base and Path(base).exists() else []) + list(paths)
    for path in files:
        try:
            overlay = load_yaml(path)
        except OSError as error:
            raise PlanError(f"{path}: {error.strerror}") from None
        if not isinstance(overlay, dict):
            raise PlanError(f"{path}: expected a mapping at the top level")
        config = merge_config(config, overlay)
    if "experiments" not in config:
        raise PlanError("experiments: no experiment in the config")
    if SCHEMA.exists():  # as the Snakefile does: the structure and its defaults
        from snakemake.exceptions import WorkflowError
        from snakemake.utils import validate

        try:
            validate(config, str(SCHEMA))
        except WorkflowError as error:
            raise PlanError(f"invalid config: {error}") from None
    config.setdefault("active", list(config["experiments"]))
    return config


# --------------------------------------------------------------------------------------------
# the plan


def precision_mode(training: dict[str, Any], device: str) -> str:
    """``fp32``, ``tf32`` or ``bf16``, with ``+compile``; the CPU has no TF32."""
    if training.get("precision", "fp32") == "bf16":
        mode = "bf16"
    elif training.get("tf32") and device == "cuda":
        mode = "tf32"
    else:
        return "fp32"
    return mode + ("+compile" if training.get("compile") else "")


@dataclass(frozen=True)
class Rate:
    """Training throughput of one run: FLOP/s achieved and where the number comes from."""

    flops_per_s: float
    source: str  # "measured" or "estimate"
    detail: str


@functools.cache
def cpu_flops_per_s_per_thread() -> float:
    """FLOP/s of one CPU thread: the measured gpt-tiny tokens/s times its counted FLOPs."""
    ref = CPU_MEASURED
    vocab = corpus_sizes(ref["dataset"])["vocab"]
    terms = flop_terms(ref["model"], ref["seq_len"], vocab, ref["micro_batch"])
    return ref["tokens_per_s_per_thread"] * training_flops_per_token(terms)


def measured_rate(
    measured: dict[str, Any] | None, model_cfg: dict[str, Any], mode: str, micro: int | None
) -> Rate | None:
    """The FLOP/s that ``benchmarks/gpu_check.sh`` measured for a single run of this model
    preset, precision and micro-batch size (its ``gpu_check.json``), if it did."""
    if not measured or measured.get("smoke") or set(model_cfg) != {"preset"}:
        return None
    rows = [
        row
        for row in measured.get("throughput", [])
        if row.get("status") == "ok"
        and row.get("runs") == "single"
        and row.get("model") == model_cfg["preset"]
        and row.get("precision") == mode.split("+")[0]
        and (micro is None or row.get("micro_batch_size") == micro)
    ]
    if not rows:
        return None

    def flops(row: dict[str, Any]) -> float:
        return row["tokens_per_s"] * row.get(
            "executed_flops_per_token", row["training_flops_per_token"]
        )

    row = max(rows, key=flops)
    return Rate(
        flops(row),
        "measured",
        f"gpu_check.json of {measured.get('date', '?')} on {measured.get('device_name', '?')}: "
        f"{row['tokens_per_s']:,.0f} tokens/s, single run, b = {row['batch_size']}, "
        f"micro-batch {row['micro_batch_size']}, {row['precision']}",
    )


def rate_for(
    device: str,
    mode: str,
    threads: int,
    gpu: str,
    mfu: float | None,
    model_cfg: dict[str, Any],
    measured: dict[str, Any] | None = None,
    micro: int | None = None,
) -> Rate:
    """The FLOP/s a run achieves (see the module docstring)."""
    if device == "cuda" and mfu is None:
        found = measured_rate(measured, model_cfg, mode, micro)
        if found is not None:
            return found
    if device == "cuda":
        kind = mode.split("+")[0]
        peak = GPUS[gpu][kind]
        assumed = ASSUMED_MFU[mode] if mfu is None else mfu
        how = "assumed" if mfu is None else "given"
        return Rate(
            peak * assumed,
            "estimate",
            f"{gpu.upper()} dense {kind} peak {peak / 1e12:.1f} TFLOP/s x {how} MFU {assumed:.0%}",
        )
    per_thread = cpu_flops_per_s_per_thread()
    measured = model_cfg == CPU_MEASURED["model"]
    return Rate(
        per_thread * threads,
        "measured" if measured else "estimate",
        f"CPU, {threads} thread(s) at {per_thread / 1e9:.2f} GFLOP/s each (gpt-tiny measured"
        + ("" if measured else "; scaled by FLOPs per token")
        + ")",
    )


@dataclass
class RunPlan:
    run_id: str
    batch_size: int
    steps: int
    tokens: int  # training tokens at the cap
    eval_tokens: int  # validation (and test) tokens evaluated, forward only
    flops: float
    seconds: float
    result_bytes: float
    checkpoint_writes: int  # at the cap, with checkpoint_every (0: none)


@dataclass
class JobPlan:
    job_id: str
    runs: list[RunPlan]
    peak_memory_bytes: float
    checkpoint_bytes: float

    @property
    def seconds(self) -> float:
        """A pack of K costs K runs: its members' tokens add up at one run's FLOP/s."""
        return sum(run.seconds for run in self.runs)


@dataclass
class ExperimentPlan:
    name: str
    model: str
    parameters: int
    vocab_size: int
    device: str
    mode: str
    threads: int
    rate: Rate
    terms: list[FlopTerm]
    seq_len: int
    jobs: list[JobPlan]
    resources: dict[str, Any]
    device_memory_bytes: float | None
    warnings: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[RunPlan]:
        return [run for job in self.jobs for run in job.runs]

    @property
    def tokens(self) -> int:
        return sum(run.tokens for run in self.runs)

    @property
    def device_hours(self) -> float:
        return sum(job.seconds for job in self.jobs) / 3600

    @property
    def gpu_hours(self) -> float:
        return self.device_hours if self.device == "cuda" else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.rate.flops_per_s / executed_flops_per_token(self.terms)

    @property
    def peak_memory_bytes(self) -> float:
        return max(job.peak_memory_bytes for job in self.jobs)

    @property
    def result_bytes(self) -> float:
        return sum(run.result_bytes for run in self.runs)

    @property
    def checkpoint_bytes(self) -> float:
        return max(job.checkpoint_bytes for job in self.jobs)


@dataclass
class Plan:
    experiments: list[ExperimentPlan]
    warnings: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return sum(len(e.runs) for e in self.experiments)

    @property
    def jobs(self) -> int:
        return sum(len(e.jobs) for e in self.experiments)

    @property
    def tokens(self) -> int:
        return sum(e.tokens for e in self.experiments)

    @property
    def gpu_hours(self) -> float:
        return sum(e.gpu_hours for e in self.experiments)

    @property
    def cpu_hours(self) -> float:
        return sum(e.device_hours for e in self.experiments if e.device != "cuda")

    @property
    def peak_memory_bytes(self) -> float:
        return max((e.peak_memory_bytes for e in self.experiments), default=0.0)

    @property
    def result_bytes(self) -> float:
        return sum(e.result_bytes for e in self.experiments)

    @property
    def checkpoint_bytes(self) -> float:
        return max((e.checkpoint_bytes for e in self.experiments), default=0.0)


def steps_at_cap(epochs: float, steps_per_epoch: int, max_steps: int | None) -> int:
    """Optimiser steps of a run trained to its cap (``trainer.total_steps_of``)."""
    total = max(1, math.floor(epochs * steps_per_epoch + 1e-9))
    return min(total, max_steps) if max_steps is not None else total


def sequences_at_cap(num_sequences: int, steps_per_epoch: int, steps: int) -> int:
    """Training sequences of ``steps`` steps: whole epochs, then the first batches of the next
    (batch j of an epoch ends at ceil((j + 1) N / m), ``epochs.batch_bounds``)."""
    epochs, rest = divmod(steps, steps_per_epoch)
    return epochs * num_sequences + -(-rest * num_sequences // steps_per_epoch)


def evaluations_at_cap(steps: int, eval_interval: int) -> int:
    """Evaluations of a run: before the first step, every interval and at the last step."""
    return 1 + steps // eval_interval + (1 if steps % eval_interval else 0)


def plan_experiment(
    experiment,
    results: str = "results",
    *,
    gpu: str = DEFAULT_GPU,
    assume_device: str = "cpu",
    mfu: float | None = None,
    measured: dict[str, Any] | None = None,
) -> ExperimentPlan:
    """The cost of one experiment (an ``adamnoise.experiment.Experiment``) at its cap."""
    from adamnoise.experiment import corpus_dir
    from adamnoise.models.presets import context_len_of
    from adamnoise.training.config import TRAINING_DEFAULTS
    from adamnoise.training.epochs import batches_per_epoch, sequence_count

    cfg = experiment.config
    sizes = corpus_sizes(experiment.dataset)
    vocab, seq_len, model_cfg = sizes["vocab"], cfg["seq_len"], cfg["model"]
    training = {**TRAINING_DEFAULTS, **cfg.get("training", {})}
    device = training["device"]
    if device == "auto":  # a job that asks the cluster for a GPU gets one, and auto takes it
        device = "cuda" if cfg.get("resources", {}).get("gpus") else assume_device
    mode = precision_mode(training, device)
    threads = training.get("num_threads") or cfg.get("resources", {}).get("cpus", 1)
    micro = training.get("micro_batch_size")
    context = context_len_of(model_cfg)
    eval_sequences = sequence_count(sizes["valid"], seq_len, context)
    test_sequences = sequence_count(sizes["test"], seq_len, context)
    n = experiment.num_train_sequences
    parameters = parameter_count(model_cfg, vocab)
    rate = rate_for(device, mode, threads, gpu, mfu, model_cfg, measured, micro)
    corpus = corpus_dir(results, experiment.dataset)

    runs: dict[str, RunPlan] = {}
    micro_of: dict[str, int] = {}
    terms_of: dict[int, list[FlopTerm]] = {}  # by micro-batch size
    for point in experiment.points():
        t = {**TRAINING_DEFAULTS, **experiment.run_config(point, corpus)["training"]}
        b = point.batch_size
        m = batches_per_epoch(n, b)
        steps = steps_at_cap(t["epochs"], m, t["max_steps"])
        tokens = sequences_at_cap(n, m, steps) * seq_len
        evals = evaluations_at_cap(steps, max(1, round(t["eval_every"] * m)))
        eval_tokens = evals * eval_sequences * seq_len
        if t["test_at_best"]:
            eval_tokens += test_sequences * seq_len
        micro_of[point.run_id] = min(micro or b, b)
        if micro_of[point.run_id] not in terms_of:
            terms_of[micro_of[point.run_id]] = flop_terms(
                model_cfg, seq_len, vocab, micro_of[point.run_id]
            )
        terms = terms_of[micro_of[point.run_id]]
        flops = tokens * executed_flops_per_token(terms)
        flops += eval_tokens * forward_flops_per_token(terms)
        if t["exact_noise_scale"]:  # one gradient per training sequence at the best weights
            flops += n * seq_len * executed_flops_per_token(terms)
        every = t.get("checkpoint_every") or 0
        runs[point.run_id] = RunPlan(
            run_id=point.run_id,
            batch_size=b,
            steps=steps,
            tokens=tokens,
            eval_tokens=eval_tokens,
            flops=flops,
            seconds=flops / rate.flops_per_s,
            result_bytes=RESULT_FILE_BYTES
            + RESULT_BYTES_PER_STEP * steps
            + RESULT_BYTES_PER_EVAL * evals,
            checkpoint_writes=(steps - 1) // every if every else 0,
        )

    groups = experiment.packs or {run_id: [run_id] for run_id in runs}
    keeps_best = bool(training["test_at_best"] or training["exact_noise_scale"])
    state_bytes = parameters * 4 * (3 + keeps_best)  # weights, two moments, best weights
    jobs = []
    for job_id, run_ids in groups.items():
        k = len(run_ids)
        micro_tokens = max(micro_of[r] for r in run_ids) * (seq_len + context)
        act = activation_bytes_per_token(
            model_cfg, seq_len, vocab, training["precision"], micro_tokens
        )
        # per member: its state, the saved activations of a micro-batch and the logits
        member = parameters * BYTES_PER_PARAMETER + micro_tokens * act
        peak = k * (member + logits_bytes(model_cfg, vocab, micro_tokens))
        peak += (n + eval_sequences) * (seq_len + context) * 8  # the corpus on the device (int64)
        if device == "cuda":
            peak += CUDA_CONTEXT_BYTES
        jobs.append(JobPlan(job_id, [runs[r] for r in run_ids], peak, k * state_bytes))
    memory = GPUS[gpu]["memory_gib"] * GIB if device == "cuda" else None
    plan = ExperimentPlan(
        name=experiment.name,
        model=model_label(model_cfg),
        parameters=parameters,
        vocab_size=vocab,
        device=device,
        mode=mode,
        threads=threads,
        rate=rate,
        terms=flop_terms(model_cfg, seq_len, vocab, micro or 1),
        seq_len=seq_len,
        jobs=jobs,
        resources=dict(cfg.get("resources", {})),
        device_memory_bytes=memory,
    )
    plan.warnings = experiment_warnings(plan, training)
    return plan


def model_label(model_cfg: dict[str, Any]) -> str:
    preset = model_cfg.get("preset")
    overrides = {k: v for k, v in model_cfg.items() if k != "preset"}
    if preset is None:
        return f"{model_cfg.get('arch')} (custom)"
    return preset + (f" {overrides}" if overrides else "")


def experiment_warnings(plan: ExperimentPlan, training: dict[str, Any]) -> list[str]:
    """Jobs longer than their ``resources.runtime``, more memory than the device (or
    ``resources.mem_mb``) has, a checkpoint of more than 1 GiB more often than every 10 min."""
    warnings = []
    name = plan.name
    runtime = plan.resources.get("runtime")
    if runtime is not None:
        over = [job for job in plan.jobs if job.seconds > 60 * runtime]
        if over:
            longest = max(job.seconds for job in over) / 3600
            warnings.append(
                f"{name}: {len(over)} of {len(plan.jobs)} jobs need more than resources.runtime "
                f"({runtime} min) at the cap, the longest ~{longest:.1f} h"
            )
    limit = plan.device_memory_bytes
    where = f"{plan.device} memory"
    if limit is None and plan.resources.get("mem_mb") is not None:
        limit, where = plan.resources["mem_mb"] * 2**20, "resources.mem_mb"
    if limit is not None and plan.peak_memory_bytes > limit:
        warnings.append(
            f"{name}: peak memory per job ~{plan.peak_memory_bytes / GIB:.1f} GiB exceeds the "
            f"{limit / GIB:.1f} GiB of {where}; lower pack or micro_batch_size"
        )
    every = training.get("checkpoint_every") or 0
    if every and plan.checkpoint_bytes > GIB:
        step_seconds = min(
            job.seconds / max(1, sum(run.steps for run in job.runs)) * len(job.runs)
            for job in plan.jobs
        )
        if every * step_seconds < 600:
            warnings.append(
                f"{name}: checkpoint_every {every} writes a {plan.checkpoint_bytes / GIB:.1f} GiB "
                f"checkpoint every ~{every * step_seconds / 60:.1f} min at the smallest batch size"
            )
    return warnings


def plan_experiments(
    experiments: dict[str, Any],
    active: Sequence[str],
    results: str = "results",
    *,
    gpu: str = DEFAULT_GPU,
    assume_device: str = "cpu",
    mfu: float | None = None,
    measured: dict[str, Any] | None = None,
    warn_gpu_hours: float = 100.0,
) -> Plan:
    """The plan of the ``active`` ones of loaded ``experiments`` (``load_experiments``)."""
    options = {"gpu": gpu, "assume_device": assume_device, "mfu": mfu, "measured": measured}
    plans = [plan_experiment(experiments[name], results, **options) for name in active]
    plan = Plan(plans)
    plan.warnings = [w for e in plans for w in e.warnings]
    if plan.gpu_hours > warn_gpu_hours:
        plan.warnings.append(
            f"~{plan.gpu_hours:,.0f} GPU-hours at the cap exceed the threshold of "
            f"{warn_gpu_hours:,g} (--warn-gpu-hours)"
        )
    return plan


def build_plan(config: dict[str, Any], **options) -> Plan:
    """The plan of the active experiments of a merged workflow config (``load_config``)."""
    from adamnoise.errors import ConfigError
    from adamnoise.workflow_config import load_experiments

    try:
        experiments = load_experiments(config)
    except ConfigError as error:
        raise PlanError(f"invalid config: {error}") from None
    return plan_experiments(
        experiments, config["active"], config.get("results", "results"), **options
    )


# --------------------------------------------------------------------------------------------
# rendering


def human_bytes(value: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def human_count(value: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g}"


def hours_label(plan: Plan) -> str:
    parts = []
    if any(e.device == "cuda" for e in plan.experiments):
        parts.append(f"~{plan.gpu_hours:,.0f} GPU-hours (estimate)")
    if any(e.device != "cuda" for e in plan.experiments):
        parts.append(f"~{plan.cpu_hours:,.3g} CPU-hours")
    return " + ".join(parts)


def plan_summary_line(plan: Plan) -> str:
    """One line for every Snakemake invocation (and the end of ``adamnoise plan``)."""
    line = (
        f"plan: {plan.runs:,} runs in {plan.jobs:,} training jobs, "
        f"{human_count(plan.tokens)} tokens at the cap, {hours_label(plan)}, "
        f"peak {human_bytes(plan.peak_memory_bytes)} per job, "
        f"results {human_bytes(plan.result_bytes)}, "
        f"checkpoints up to {human_bytes(plan.checkpoint_bytes)} per job"
    )
    if plan.warnings:
        line += f"; {len(plan.warnings)} warning(s)"
    return line + " (details: adamnoise plan --configfile ...)"


def format_plan(plan: Plan) -> str:
    lines = []
    for e in plan.experiments:
        biggest = max(len(job.runs) for job in e.jobs)
        lines.append(
            f"experiment {e.name}: {len(e.runs):,} runs in {len(e.jobs):,} jobs"
            + (f" (packs of <= {biggest})" if biggest > 1 else "")
        )
        lines.append(
            f"  model {e.model}: {e.parameters:,} parameters, vocabulary {e.vocab_size:,}, "
            f"seq_len {e.seq_len}; {e.device}, {e.mode}"
        )
        fwd, train = forward_flops_per_token(e.terms), training_flops_per_token(e.terms)
        executed = executed_flops_per_token(e.terms)
        lines.append(
            f"  FLOPs per token (counted): forward {human_count(fwd)}, training "
            f"{human_count(train)} (forward + backward)"
            + (f", executed {human_count(executed)} (recomputation)" if executed > train else "")
        )
        for term in e.terms:
            lines.append(
                f"    {term.name:<50} {human_count(term.forward):>8} x "
                f"{1 + term.backward + term.recompute:g}"
            )
        lines.append(
            f"  throughput: {e.tokens_per_s:,.0f} tokens/s per run ({e.rate.source}: "
            f"{e.rate.detail})"
        )
        lines.append("  | batch size | runs | jobs | steps per run | tokens per run | hours |")
        lines.append("  |---|---|---|---|---|---|")
        by_batch: dict[int, list[RunPlan]] = {}
        for run in e.runs:
            by_batch.setdefault(run.batch_size, []).append(run)
        jobs_of: dict[int, int] = {}
        for job in e.jobs:
            jobs_of[job.runs[0].batch_size] = jobs_of.get(job.runs[0].batch_size, 0) + 1
        for b, runs in by_batch.items():
            steps = sorted({r.steps for r in runs})
            span = f"{steps[0]:,}" + (f"-{steps[-1]:,}" if len(steps) > 1 else "")
            lines.append(
                f"  | {b:,} | {len(runs):,} | {jobs_of.get(b, 0):,} | {span} | "
                f"{human_count(max(r.tokens for r in runs))} | "
                f"{sum(r.seconds for r in runs) / 3600:,.2f} |"
            )
        kind = "GPU" if e.device == "cuda" else "CPU"
        longest = max(job.seconds for job in e.jobs) / 3600
        runtime = e.resources.get("runtime")
        lines.append(
            f"  total: {human_count(e.tokens)} tokens, {e.device_hours:,.2f} {kind}-hours; "
            f"longest job {longest:,.2f} h"
            + (f" (resources.runtime {runtime} min)" if runtime is not None else "")
        )
        lines.append(
            f"  peak memory per job ~{human_bytes(e.peak_memory_bytes)} (estimate); results "
            f"{human_bytes(e.result_bytes)}; largest checkpoint {human_bytes(e.checkpoint_bytes)}"
        )
    lines.append(
        f"total: {plan.runs:,} runs, {plan.jobs:,} training jobs, {human_count(plan.tokens)} "
        f"tokens at the cap, {hours_label(plan)}"
    )
    lines.append(
        "hours = sum over runs of (tokens x F_executed + eval_tokens x F_forward) / "
        "(peak FLOP/s x MFU) / 3600 (docs/performance.md)"
    )
    for warning in plan.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def plan_as_dict(plan: Plan) -> dict[str, Any]:
    return {
        "runs": plan.runs,
        "jobs": plan.jobs,
        "tokens": plan.tokens,
        "gpu_hours": plan.gpu_hours,
        "cpu_hours": plan.cpu_hours,
        "peak_memory_bytes": plan.peak_memory_bytes,
        "result_bytes": plan.result_bytes,
        "checkpoint_bytes": plan.checkpoint_bytes,
        "warnings": plan.warnings,
        "experiments": [
            {
                "name": e.name,
                "model": e.model,
                "parameters": e.parameters,
                "device": e.device,
                "precision": e.mode,
                "runs": len(e.runs),
                "jobs": len(e.jobs),
                "tokens": e.tokens,
                "forward_flops_per_token": forward_flops_per_token(e.terms),
                "training_flops_per_token": training_flops_per_token(e.terms),
                "executed_flops_per_token": executed_flops_per_token(e.terms),
                "tokens_per_s": e.tokens_per_s,
                "throughput_source": e.rate.source,
                "throughput_detail": e.rate.detail,
                "device_hours": e.device_hours,
                "longest_job_hours": max(job.seconds for job in e.jobs) / 3600,
                "peak_memory_bytes": e.peak_memory_bytes,
                "result_bytes": e.result_bytes,
                "checkpoint_bytes": e.checkpoint_bytes,
            }
            for e in plan.experiments
        ],
    }


# --------------------------------------------------------------------------------------------
# the subcommand


def register(subparsers) -> None:
    parser = add_command(subparsers, "plan", run_plan)
    parser.add_argument(
        "--configfile", action="append", default=[], metavar="FILE", help="workflow config"
    )
    parser.add_argument(
        "--gpu", choices=sorted(GPUS), default=DEFAULT_GPU, help="GPU that cuda runs are costed on"
    )
    parser.add_argument(
        "--auto-device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where runs with device: auto train when their resources ask for no GPU "
        "(default: cpu)",
    )
    parser.add_argument("--mfu", type=float, help="model FLOPs utilisation instead of assumed")
    parser.add_argument(
        "--measured",
        metavar="gpu_check.json",
        help="tokens/s measured by benchmarks/gpu_check.sh instead of the assumed MFU",
    )
    parser.add_argument(
        "--warn-gpu-hours",
        type=float,
        default=100.0,
        metavar="H",
        help="warn when the GPU-hours exceed H (default: 100)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run_plan(args: argparse.Namespace) -> int:
    """cost of a sweep before it runs: runs, jobs, tokens, GPU-hours, memory, disk

    Plan the active experiments of a workflow config (config/config.yaml with each --configfile
    merged over it, as Snakemake does): runs, training jobs, tokens at the cap, estimated GPU-hours
    from counted FLOPs, peak memory per job and disk. docs/performance.md explains the arithmetic
    and what is measured or assumed.
    """
    import json

    if args.mfu is not None and not 0 < args.mfu <= 1:
        print(f"adamnoise plan: --mfu must be in (0, 1], got {args.mfu}", file=sys.stderr)
        return 2
    try:
        measured = None
        if args.measured:
            try:
                measured = json.loads(Path(args.measured).read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise PlanError(f"--measured {args.measured}: {error}") from None
        plan = build_plan(
            load_config(args.configfile),
            gpu=args.gpu,
            assume_device=args.auto_device,
            mfu=args.mfu,
            measured=measured,
            warn_gpu_hours=args.warn_gpu_hours,
        )
    except ValueError as error:  # PlanError, a YAML error naming the file
        print(f"adamnoise plan: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(plan_as_dict(plan), indent=2))
    else:
        print(format_plan(plan))
        print(plan_summary_line(plan))
    return 0
