"""``adamnoise plan``: the arithmetic against a hand computation, the counted FLOPs, parameters
and activations against torch, the CLI on the shipped configs, the warnings, the dry-run line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adamnoise import plan as cost_plan
from adamnoise.cli import main

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**training) -> dict:
    """gpt-tiny on 64 pydoc-char sequences of 32 tokens, b in {8, 32}, 2 epochs, 12 runs."""
    return {
        "results": "results",
        "active": ["tiny"],
        "experiments": {
            "tiny": {
                "dataset": "pydoc-char",
                "seq_len": 32,
                "train_sequences": 64,
                "model": {"preset": "gpt-tiny"},
                "optimizer": {"name": "adam", "eps": 1e-6},
                "pack": 4,
                "training": {
                    "epochs": 2,
                    "micro_batch_size": 8,
                    "eval_every": 1.0,
                    "test_at_best": False,
                    "device": "cuda",
                    "tf32": True,
                    **training,
                },
                "grid": {
                    "batch_size": [8, 32],
                    "beta1": [0.9],
                    "beta2": [0.99, 0.999],
                    "lr": [1e-3],
                    "seed": [0, 1, 2],
                },
                "resources": {"gpus": 1, "runtime": 10},
            }
        },
    }


def test_tiny_config_against_a_hand_computation():
    plan = cost_plan.build_plan(tiny_config(), gpu="h100", mfu=0.5)
    (e,) = plan.experiments
    # pydoc-char: 103 characters; N = 64 sequences
    assert e.vocab_size == 103
    # gpt-tiny (d 64, 2 layers, d_mlp 176, untied): embedding, 2 x (2 norms, 4 d^2, 3 d d_mlp),
    # final norm, head
    assert e.parameters == 103 * 64 + 2 * (2 * 64 + 4 * 64**2 + 3 * 64 * 176) + 64 + 64 * 103
    # forward FLOPs per token at T = 32: qkv 2*64*192, scores and values 2 x 2*32*64, output
    # 2*64*64, SwiGLU 2*64*352 + 2*176*64, per layer; head 2*64*103
    per_layer = 2 * 64 * 192 + 2 * (2 * 32 * 64) + 2 * 64 * 64 + 2 * 64 * 352 + 2 * 176 * 64
    forward = 2 * per_layer + 2 * 64 * 103
    assert forward == 230_272
    assert cost_plan.forward_flops_per_token(e.terms) == forward
    assert cost_plan.training_flops_per_token(e.terms) == 3 * forward
    # b = 8: m = 8 batches, 16 steps; b = 32: m = 2, 4 steps; 2 epochs of 64 x 32 tokens each
    runs = {r.batch_size: r for r in e.runs}
    assert (runs[8].steps, runs[32].steps) == (16, 4)
    assert runs[8].tokens == runs[32].tokens == 2 * 64 * 32 == 4096
    # evaluations at step 0 and every epoch: 3; validation (24,878 - 1) // 32 = 777 sequences
    assert runs[8].eval_tokens == 3 * 777 * 32
    flops = 4096 * 3 * forward + 3 * 777 * 32 * forward
    assert runs[8].flops == pytest.approx(flops)
    # tf32 on an H100: 494.7 TFLOP/s dense, at MFU 50 %
    assert runs[8].seconds == pytest.approx(flops / (494.7e12 * 0.5))
    assert plan.gpu_hours == pytest.approx(12 * flops / (494.7e12 * 0.5) / 3600)
    assert plan.tokens == 12 * 4096
    # 6 runs per batch size in packs of <= 4: 2 jobs each
    assert (plan.runs, plan.jobs) == (12, 4)
    assert sorted(len(job.runs) for job in e.jobs) == [2, 2, 4, 4]
    # a job of 4 members: 4 x (24 bytes per parameter + a micro-batch of 8 x 32 tokens of
    # activations and logits' gradient), the corpus (64 training + 777 validation sequences,
    # int64) and the CUDA context
    act = cost_plan.activation_bytes_per_token({"preset": "gpt-tiny"}, 32, 103, "fp32")
    member = e.parameters * 24 + 8 * 32 * (act + 4 * 103)
    expected = 4 * member + (64 + 777) * 32 * 8 + 0.5 * 2**30
    assert e.peak_memory_bytes == pytest.approx(expected)
    # checkpoint per member: weights and two moments, 4 bytes each (no best weights: no
    # test_at_best, no exact_noise_scale)
    assert e.checkpoint_bytes == 4 * e.parameters * 4 * 3
    # result files: 29 kB + 45 B per step + 72 B per evaluation
    assert runs[8].result_bytes == 29_000 + 45 * 16 + 72 * 3
    assert plan.warnings == []


def test_the_cpu_rate_is_the_measured_one_scaled_by_flops():
    config = tiny_config(device="cpu", num_threads=2)
    (e,) = cost_plan.build_plan(config).experiments
    assert e.mode == "fp32"
    per_thread = cost_plan.cpu_flops_per_s_per_thread()
    # gpt-tiny at the measured shape (seq_len 64, pydoc-char) runs at the measured tokens/s
    ref = cost_plan.CPU_MEASURED
    terms = cost_plan.flop_terms(ref["model"], ref["seq_len"], 103, ref["micro_batch"])
    assert per_thread / cost_plan.training_flops_per_token(terms) == pytest.approx(
        ref["tokens_per_s_per_thread"]
    )
    assert e.rate.flops_per_s == pytest.approx(2 * per_thread)
    assert e.rate.source == "measured"


def test_warnings_name_the_threshold_runtime_memory_and_checkpoints():
    config = tiny_config(checkpoint_every=1)
    quiet = cost_plan.build_plan(config, mfu=0.5)
    assert quiet.warnings == []
    loud = cost_plan.build_plan(config, mfu=1e-8, warn_gpu_hours=0.01)
    text = "\n".join(loud.warnings)
    assert "GPU-hours at the cap exceed the threshold of 0.01 (--warn-gpu-hours)" in text
    assert "jobs need more than resources.runtime (10 min)" in text
    config["experiments"]["tiny"]["model"] = {"preset": "txl-paper"}
    config["experiments"]["tiny"]["training"]["micro_batch_size"] = 32
    config["experiments"]["tiny"]["training"]["test_at_best"] = True  # + best weights
    heavy = cost_plan.build_plan(config, gpu="h100", warn_gpu_hours=1e9)
    size = heavy.experiments[0].checkpoint_bytes / 2**30
    assert size > 1
    assert f"checkpoint_every 1 writes a {size:.1f} GiB checkpoint every" in heavy.warnings[0]
    big = tiny_config()
    big["experiments"]["tiny"]["model"] = {"preset": "gpt-small"}
    big["experiments"]["tiny"]["seq_len"] = 512
    big["experiments"]["tiny"]["train_sequences"] = 32
    big["experiments"]["tiny"]["grid"]["batch_size"] = [32]
    big["experiments"]["tiny"]["training"]["micro_batch_size"] = 32
    big["experiments"]["tiny"]["pack"] = 6
    text = "\n".join(cost_plan.build_plan(big, gpu="h100").warnings)
    assert "GiB of cuda memory; lower pack or micro_batch_size" in text


@pytest.mark.parametrize(
    "cfg",
    [
        {"preset": "txl-tiny"},
        {"preset": "gpt-tiny"},
        {"preset": "nanogpt-tiny"},
        {"preset": "txl-paper"},
        # chunked loss: the backward recomputes each chunk's logits (executed FLOPs)
        {"preset": "txl-tiny", "loss_chunk_tokens": 40},
        {"preset": "gpt-tiny", "loss_chunk_tokens": 40},
    ],
    ids=lambda cfg: "-".join(str(v) for v in cfg.values()),
)
def test_counted_flops_equal_torch_flop_counter(cfg):
    """Forward + backward of a micro-batch, counted by torch.utils.flop_counter (every matmul,
    SDPA counted over the full score matrix as ours is; the embedding is not a matmul)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from adamnoise.models import build_model

    vocab, seq_len, batch = 97, 32, 3
    model = build_model(cfg, vocab)
    inputs = torch.randint(0, vocab, (batch, seq_len))
    # the math kernel of SDPA: the flop counter does not see the CPU flash kernel
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(inputs, inputs).mean().backward()
    terms = cost_plan.flop_terms(cfg, seq_len, vocab, micro_batch=batch)
    counted = cost_plan.executed_flops_per_token(terms) * batch * seq_len
    assert counted == pytest.approx(counter.get_total_flops(), rel=1e-9)
    chunked = "loss_chunk_tokens" in cfg
    assert (
        cost_plan.executed_flops_per_token(terms) > cost_plan.training_flops_per_token(terms)
    ) == chunked


@pytest.mark.parametrize("preset", sorted(__import__("adamnoise.models").models.PRESETS))
def test_parameter_count_equals_the_built_model(preset):
    from adamnoise.models import build_model, count_parameters

    cfg = {"preset": preset}
    assert cost_plan.parameter_count(cfg, 101) == count_parameters(build_model(cfg, 101))


@pytest.mark.parametrize(
    ("preset", "vocab", "seq_len", "precision", "tolerance"),
    [
        ("txl-tiny", 1000, 64, "fp32", 0.25),
        ("txl-tiny", 1000, 64, "bf16", 0.25),
        ("txl-paper", 33278, 128, "fp32", 0.25),
        ("txl-paper", 33278, 128, "bf16", 0.25),
        ({"preset": "txl-tiny", "loss_chunk_tokens": 64}, 1000, 64, "fp32", 0.25),
        ({"preset": "txl-tiny", "loss_chunk_tokens": 64}, 1000, 64, "bf16", 0.25),
        ("gpt-tiny", 100, 64, "fp32", 0.25),
        ("nanogpt-tiny", 65, 64, "fp32", 0.25),
        # the tiny GPTs keep less under bf16 autocast than the calibration (gpt-small,
        # nanogpt-shakespeare-char) says: megabytes either way
        ("gpt-tiny", 100, 64, "bf16", 0.5),
        ("nanogpt-tiny", 65, 64, "bf16", 0.5),
    ],
)
def test_activation_estimate_near_what_autograd_saves(preset, vocab, seq_len, precision, tolerance):
    import contextlib

    import torch

    from adamnoise.models import build_model

    cfg = preset if isinstance(preset, dict) else {"preset": preset}
    torch.manual_seed(0)
    model = build_model(cfg, vocab)
    batch = 4
    inputs = torch.randint(0, vocab, (batch, seq_len))
    weights = {p.data_ptr() for p in model.parameters()}
    saved: dict[tuple, int] = {}

    def pack(tensor):
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape))
        if tensor.data_ptr() not in weights:
            saved[key] = tensor.numel() * tensor.element_size()
        return tensor

    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        model(inputs, inputs)
    measured = sum(saved.values()) / (batch * seq_len)
    estimate = cost_plan.activation_bytes_per_token(cfg, seq_len, vocab, precision, batch * seq_len)
    assert estimate == pytest.approx(measured, rel=tolerance)


def test_cli_on_the_paper_config(capsys):
    assert main(["plan", "--configfile", "config/paper.yaml"]) == 0
    out = capsys.readouterr().out
    assert "experiment paper-beta2: 1,008 runs in 1,008 jobs" in out
    assert "model txl-paper: 54,585,854 parameters, vocabulary 33,278" in out
    assert (
        "FLOPs per token (counted): forward 74.2 M, training 223 M (forward + backward), "
        "executed 257 M (recomputation)" in out
    )
    assert "output projection over the vocabulary, chunked" in out  # loss_chunk_tokens 2048
    assert "total: 2,016 runs, 2,016 training jobs, 760 G tokens at the cap" in out
    assert "GPU-hours (estimate)" in out and "(--warn-gpu-hours)" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("plan: 2,016 runs in 2,016 training jobs, 760 G tokens")
    assert main(["plan", "--configfile", "config/paper.yaml", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"] == 2016 and data["jobs"] == 2016
    assert data["tokens"] == 2 * 126 * sum(
        r.tokens
        for r in cost_plan.build_plan(cost_plan.load_config(["config/paper.yaml"]))
        .experiments[0]
        .runs[::126]
    )
    assert data["experiments"][0]["throughput_source"] == "estimate"
    assert 100 < data["gpu_hours"] < 2000
    assert main(["plan", "--configfile", "config/paper.yaml", "--warn-gpu-hours", "1e9"]) == 0
    assert "(--warn-gpu-hours)" not in capsys.readouterr().out


def test_cli_on_the_default_config(capsys):
    assert main(["plan", "--configfile", "config/config.yaml"]) == 0
    out = capsys.readouterr().out
    assert "experiment default: 12 runs in 12 jobs" in out
    assert "model gpt-tiny: 113,856 parameters, vocabulary 103" in out
    assert "CPU-hours" in out and "GPU-hours" not in out
    assert "tokens/s per run (measured" in out
    assert "warning" not in out


def test_cli_reports_a_bad_file(tmp_path, capsys):
    assert main(["plan", "--configfile", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments:\n  default:\n    model: {preset: no-such-model}\n")
    assert main(["plan", "--configfile", str(bad)]) == 2
    assert "invalid config" in capsys.readouterr().err


def test_plan_does_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        from adamnoise.plan import build_plan, load_config, plan_summary_line
        print(plan_summary_line(build_plan(load_config(["config/paper.yaml"]))))
        assert "torch" not in sys.modules
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan: 2,016 runs")


@pytest.mark.slow
def test_every_dry_run_prints_the_plan_line(tmp_path):
    from tests.test_workflow import copy_workflow, snakemake

    workdir = copy_workflow(tmp_path)
    result = snakemake(workdir, "--dry-run")
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.startswith("plan: ")]
    assert lines == [
        line for line in lines if "12 runs in 12 training jobs" in line and "CPU-hours" in line
    ]
    assert len(lines) == 1, output


def test_measured_throughput_replaces_the_assumed_mfu(tmp_path, capsys):
    """A gpu_check.json row of the same preset, precision and micro-batch size sets the rate."""
    # txl-paper's counted FLOPs per token at T = 128: model, and executed with the chunked loss
    model_flops, flops = 222_652_416.0, 222_652_416.0 + 2 * 512 * 33_278
    row = {
        "model": "txl-paper", "batch_size": 128, "micro_batch_size": 64, "seq_len": 128,
        "precision": "bf16", "runs": "single", "status": "ok", "tokens_per_s": 400_000.0,
        "training_flops_per_token": model_flops, "executed_flops_per_token": flops,
    }  # fmt: skip
    other = {**row, "micro_batch_size": 32, "tokens_per_s": 900_000.0}
    measured = {"smoke": False, "date": "2026-12-04", "device_name": "NVIDIA H200",
                "throughput": [row, other, {**row, "precision": "tf32"}]}  # fmt: skip
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps(measured))
    plan = cost_plan.build_plan(cost_plan.load_config(["config/paper.yaml"]), measured=measured)
    e = plan.experiments[0]
    assert e.rate.source == "measured" and "NVIDIA H200" in e.rate.detail
    assert e.tokens_per_s == pytest.approx(400_000.0)
    flops_total = sum(r.flops for x in plan.experiments for r in x.runs)
    assert plan.gpu_hours == pytest.approx(flops_total / (400_000.0 * flops) / 3600)
    # a smoke run's numbers (CPU) never stand for a GPU
    smoke = cost_plan.build_plan(
        cost_plan.load_config(["config/paper.yaml"]), measured={**measured, "smoke": True}
    )
    assert smoke.experiments[0].rate.source == "estimate"
    assert main(["plan", "--configfile", "config/paper.yaml", "--measured", str(path)]) == 0
    assert "400,000 tokens/s per run (measured: gpu_check.json" in capsys.readouterr().out


def test_device_auto_follows_the_gpus_the_job_asks_for():
    config = tiny_config(device="auto")
    assert cost_plan.build_plan(config).experiments[0].device == "cuda"  # resources.gpus: 1
    config["experiments"]["tiny"]["resources"]["gpus"] = 0
    assert cost_plan.build_plan(config).experiments[0].device == "cpu"
    assert cost_plan.build_plan(config, assume_device="cuda").experiments[0].device == "cuda"
