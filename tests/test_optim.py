"""Optimisers against torch.optim where the mathematics is the same; checkpoints; the factory.

Mapping of our configs onto torch.optim (see the docstrings in adamnoise.optim.functional),
with λ the weight decay:

    adam(β1, β2, ε, λ)                   = Adam(betas=(β1, β2), eps=ε, weight_decay=λ)
    adamw(β1, β2, ε, λ)                  = AdamW(betas=(β1, β2), eps=ε, weight_decay=λ)
    sgd(beta1=μ, dampening=τ, λ)         = SGD(momentum=μ, dampening=τ, weight_decay=λ)
    rmsprop(β2, ε, λ)                    = AdamW(betas=(0, β2), eps=ε, weight_decay=λ)
    rmsprop(β2, ε, bias_correction=off)  = RMSprop(alpha=β2, eps=ε)
    kadam(k=1, ε=1e-30, λ, coupled)      = Adam(eps=1e-30, weight_decay=λ)
    kadam(k=1, ε=1e-30, λ)               = AdamW(eps=1e-30, weight_decay=λ)
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch.testing import assert_close

from adamnoise.errors import ConfigError
from adamnoise.optim import (
    OPTIMIZER_DEFAULTS,
    OPTIMIZER_PARAMETERS,
    OPTIMIZERS,
    build_optimizer,
    resolve_optimizer_config,
)
from adamnoise.optim.functional import coordinate_quantile
from adamnoise.schedules import build_schedule

torch.set_num_threads(1)

STEPS = 20


class TinyNet(torch.nn.Module):
    """A two-layer tanh network: four parameter tensors of different shapes."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.hidden = torch.nn.Linear(6, 5)
        self.out = torch.nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def _batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + t)
    return torch.randn(8, 6, generator=gen), torch.randn(8, 2, generator=gen)


def train(model: torch.nn.Module, optimizer, steps: range, scheduler=None) -> list[dict]:
    stats = []
    for t in steps:
        x, y = _batch(t)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        stats.append(getattr(optimizer, "last_step_stats", None))
    return stats


def compare_with_torch(cfg: dict, make_torch_optimizer) -> None:
    ours_model, torch_model = TinyNet(), TinyNet()
    train(ours_model, build_optimizer(ours_model.parameters(), cfg), range(STEPS))
    train(torch_model, make_torch_optimizer(torch_model.parameters()), range(STEPS))
    assert_close(list(ours_model.parameters()), list(torch_model.parameters()))
    # and the run moved the parameters, so the comparison is not vacuous
    assert not torch.equal(ours_model.out.weight, TinyNet().out.weight)


# (β1, β2, ε, λ) combinations
ADAM_SETTINGS = [
    (0.9, 0.999, 1e-8, 0.0),
    (0.9, 0.95, 1e-6, 0.1),
    (0.5, 0.9, 1e-3, 0.01),
    (0.0, 0.99, 1e-8, 0.0),
    (0.95, 0.95, 1e-6, 0.0),
]


@pytest.mark.parametrize("beta1, beta2, eps, weight_decay", ADAM_SETTINGS)
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_matches_torch(name, beta1, beta2, eps, weight_decay):
    cfg = dict(name=name, lr=0.01, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
    torch_class = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    compare_with_torch(
        cfg,
        lambda p: torch_class(
            p, lr=0.01, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, foreach=False
        ),
    )


def test_adam_and_adamw_differ_with_weight_decay():
    runs = []
    for name in ("adam", "adamw"):
        model = TinyNet()
        cfg = {"name": name, "lr": 0.01, "weight_decay": 0.5}
        train(model, build_optimizer(model.parameters(), cfg), range(5))
        runs.append(model.out.weight.detach())
    assert (runs[0] - runs[1]).abs().max() > 1e-4


@pytest.mark.parametrize(
    "momentum, dampening, weight_decay",
    [(0.9, 0.0, 0.0), (0.98, 0.98, 1e-3), (0.5, 0.3, 0.01), (0.0, 0.0, 0.0)],
)
def test_sgd_matches_torch(momentum, dampening, weight_decay):
    cfg = dict(name="sgd", lr=0.1, beta1=momentum, dampening=dampening, weight_decay=weight_decay)
    compare_with_torch(
        cfg,
        lambda p: torch.optim.SGD(
            p,
            lr=0.1,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=False,
            foreach=False,
        ),
    )


@pytest.mark.parametrize("beta2, eps", [(0.99, 1e-8), (0.9, 1e-4), (0.999, 1e-6)])
def test_rmsprop_without_bias_correction_matches_torch_rmsprop(beta2, eps):
    cfg = dict(name="rmsprop", lr=0.01, beta2=beta2, eps=eps, bias_correction=False)
    compare_with_torch(
        cfg, lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=beta2, eps=eps, foreach=False)
    )


@pytest.mark.parametrize("beta2, eps, weight_decay", [(0.99, 1e-8, 0.0), (0.95, 1e-6, 0.1)])
def test_rmsprop_is_adamw_with_beta1_zero(beta2, eps, weight_decay):
    # seed 003 App. A.1.1: "RMSprop implemented using the AdamW Pytorch class" with β1 = 0
    cfg = dict(name="rmsprop", lr=0.01, beta2=beta2, eps=eps, weight_decay=weight_decay)
    compare_with_torch(
        cfg,
        lambda p: torch.optim.AdamW(
            p, lr=0.01, betas=(0.0, beta2), eps=eps, weight_decay=weight_decay, foreach=False
        ),
    )


@pytest.mark.parametrize("strategy", ["inverse_exp", "exp", "scaled", "naive"])
@pytest.mark.parametrize("coupled", [True, False])
def test_kadam_with_k_1_is_adam(strategy, coupled):
    # seed 004 §4.2: "Note that 1-Adam is equivalent to Adam" (with Algorithm 1's ε = 1e-30)
    cfg = dict(
        name="kadam",
        lr=0.01,
        k=1,
        strategy=strategy,
        beta1=0.9,
        beta2=0.99,
        eps=1e-30,
        weight_decay=0.05,
        coupled_weight_decay=coupled,
    )
    torch_class = torch.optim.Adam if coupled else torch.optim.AdamW
    compare_with_torch(
        cfg,
        lambda p: torch_class(
            p, lr=0.01, betas=(0.9, 0.99), eps=1e-30, weight_decay=0.05, foreach=False
        ),
    )


def test_kadam_with_k_2_is_not_adam():
    runs = []
    for k in (1, 2):
        model = TinyNet()
        train(
            model,
            build_optimizer(model.parameters(), {"name": "kadam", "lr": 0.01, "k": k}),
            range(5),
        )
        runs.append(model.out.weight.detach())
    assert (runs[0] - runs[1]).abs().max() > 1e-4


def test_coordinate_quantile_matches_torch_quantile():
    gen = torch.Generator().manual_seed(3)
    tensors = [torch.randn(7, 3, generator=gen), torch.randn(11, generator=gen)]
    everything = torch.cat([t.abs().flatten() for t in tensors])
    for q in (0.0, 0.1, 0.5, 0.9, 0.95, 1.0):
        assert_close(coordinate_quantile(tensors, q), torch.quantile(everything, q))
    # ties, and signs that the magnitudes must drop
    tied = [torch.tensor([0.0, -1.0, 1.0, 1.0]), torch.tensor([[2.0, -3.0], [1.0, 0.5]])]
    magnitudes = torch.tensor([0.0, 1.0, 1.0, 1.0, 2.0, 3.0, 1.0, 0.5])
    for q in torch.linspace(0, 1, 29).tolist():
        assert_close(coordinate_quantile(tied, q), torch.quantile(magnitudes, q))


def test_lambda_lr_scales_the_step():
    # SignSGD moves every coordinate by exactly lr · f(t), so the schedule is visible directly
    model = TinyNet()
    optimizer = build_optimizer(model.parameters(), {"name": "signsgd", "lr": 0.1})
    schedule = build_schedule({"name": "warmup_cosine", "warmup_steps": 4}, total_steps=10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    for t in range(3):
        before = model.out.bias.detach().clone()
        train(model, optimizer, range(t, t + 1), scheduler)
        step = (model.out.bias.detach() - before).abs()
        assert_close(step, torch.full_like(step, 0.1 * (t + 1) / 4))


# --------------------------------------------------------------------------------------------
# checkpoints

ROUND_TRIP_CONFIGS = [
    {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-6},
    {"name": "adam", "lr": 0.01, "bias_correction": False, "init": "gradient"},
    {"name": "adamw", "lr": 0.01, "weight_decay": 0.1, "grad_clip_norm": 0.5},
    {"name": "sgd", "lr": 0.1, "beta1": 0.98, "grad_clip_norm": 0.5, "coordinate_clip": 0.05},
    {"name": "sgd", "lr": 0.1, "coordinate_clip_fraction": 0.1},
    {"name": "signum", "lr": 0.01, "beta1": 0.95, "weight_decay": 0.1},
    {"name": "signsgd", "lr": 0.01},
    {"name": "emasign", "lr": 0.01, "init": "gradient"},
    {"name": "rmsprop", "lr": 0.01, "beta2": 0.99},
    {"name": "kadam", "lr": 0.01, "k": 3, "strategy": "exp", "weight_decay": 0.01},
]
# and every registered optimiser with its defaults, so that a new one is round-tripped too
ROUND_TRIP_CONFIGS += [{"name": name, "lr": 0.01} for name in OPTIMIZERS]


@pytest.mark.parametrize("cfg", ROUND_TRIP_CONFIGS, ids=lambda c: c["name"])
def test_state_dict_round_trip_is_bit_exact(cfg):
    schedule_cfg = {"name": "warmup_cosine", "warmup_steps": 3, "min_ratio": 0.1}

    def fresh(seed: int):
        model = TinyNet(seed)
        optimizer = build_optimizer(model.parameters(), cfg)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, build_schedule(schedule_cfg, 10))
        return model, optimizer, scheduler

    uninterrupted, optimizer, scheduler = fresh(0)
    uninterrupted_stats = train(uninterrupted, optimizer, range(10), scheduler)

    model, optimizer, scheduler = fresh(0)
    train(model, optimizer, range(5), scheduler)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "opt": optimizer.state_dict(),
            "sched": scheduler.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    checkpoint = torch.load(buffer)
    resumed, resumed_optimizer, resumed_scheduler = fresh(1)  # other initial values
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["opt"])
    resumed_scheduler.load_state_dict(checkpoint["sched"])
    resumed_stats = train(resumed, resumed_optimizer, range(5, 10), resumed_scheduler)

    for ours, reference in zip(resumed.parameters(), uninterrupted.parameters(), strict=True):
        assert torch.equal(ours, reference)
    assert resumed_stats == uninterrupted_stats[5:]


def test_factory_builds_every_optimizer_with_every_key():
    model = TinyNet()
    for name, defaults in OPTIMIZER_DEFAULTS.items():
        assert OPTIMIZER_PARAMETERS[name] == {"name", "lr", *defaults}
        cfg = {"name": name, "lr": 0.01, **defaults}
        optimizer = build_optimizer(model.parameters(), cfg)
        assert isinstance(optimizer, torch.optim.Optimizer)
        assert optimizer.param_groups[0]["lr"] == 0.01
        assert optimizer.last_step_stats == {}


def test_factory_fills_defaults_and_leaves_the_input_alone():
    cfg = {"name": "kadam", "lr": 1e-3}
    resolved = resolve_optimizer_config(cfg)
    assert cfg == {"name": "kadam", "lr": 1e-3}
    assert resolved["k"] == 2 and resolved["strategy"] == "inverse_exp"
    assert resolved["eps"] == 1e-30  # seed 004 Algorithm 1's default


def test_no_clipping_means_no_stats_and_no_stats_key():
    model = TinyNet()
    optimizer = build_optimizer(model.parameters(), {"name": "adam", "lr": 0.01})
    assert train(model, optimizer, range(2)) == [{}, {}]


@pytest.mark.parametrize(
    "cfg, key, fragment",
    [
        ({"name": "no-such-optimizer", "lr": 1e-3}, "name", f"allowed: {sorted(OPTIMIZERS)}"),
        ({"lr": 1e-3}, "name", "missing"),
        ({"name": "adam"}, "lr", "missing"),
        ({"name": "adam", "lr": 1e-3, "betas": [0.9, 0.99]}, "betas", "allowed: ['beta1'"),
        ({"name": "sgd", "lr": 0.1, "beta2": 0.99}, "beta2", "not a parameter of 'sgd'"),
        ({"name": "rmsprop", "lr": 0.1, "beta1": 0.9}, "beta1", "not a parameter of 'rmsprop'"),
        ({"name": "signsgd", "lr": 0.1, "eps": 1e-8}, "eps", "not a parameter"),
        ({"name": "adam", "lr": "1e-3"}, "lr", "write 1.0e-3"),
        ({"name": "adam", "lr": 0.0}, "lr", "> 0"),
        ({"name": "adam", "lr": 1e-3, "beta1": 1.0}, "beta1", "[0, 1)"),
        ({"name": "adam", "lr": 1e-3, "beta2": -0.1}, "beta2", "[0, 1)"),
        ({"name": "adam", "lr": 1e-3, "eps": -1e-8}, "eps", ">= 0"),
        ({"name": "adamw", "lr": 1e-3, "weight_decay": float("nan")}, "weight_decay", "finite"),
        ({"name": "adam", "lr": 1e-3, "init": "ones"}, "init", "('zero', 'gradient')"),
        ({"name": "adam", "lr": 1e-3, "init": "gradient"}, "init", "bias_correction: false"),
        ({"name": "adam", "lr": 1e-3, "bias_correction": "no"}, "bias_correction", "true or"),
        ({"name": "sgd", "lr": 0.1, "dampening": 1.5}, "dampening", "[0, 1]"),
        ({"name": "sgd", "lr": 0.1, "grad_clip_norm": 0}, "grad_clip_norm", "> 0 or null"),
        (
            {"name": "sgd", "lr": 0.1, "coordinate_clip_fraction": 1.0},
            "coordinate_clip_fraction",
            "(0, 1)",
        ),
        (
            {"name": "sgd", "lr": 0.1, "coordinate_clip": 0.1, "coordinate_clip_fraction": 0.1},
            "coordinate_clip_fraction",
            "not both",
        ),
        ({"name": "kadam", "lr": 1e-3, "k": 0}, "k", "integer >= 1"),
        ({"name": "kadam", "lr": 1e-3, "k": 2.0}, "k", "integer >= 1"),
        ({"name": "kadam", "lr": 1e-3, "strategy": "sqrt"}, "strategy", "'inverse_exp'"),
        ({"name": "kadam", "lr": 1e-3, "coupled_weight_decay": 1}, "coupled_weight_decay", "true"),
    ],
)
def test_factory_rejects_bad_configs_naming_the_key(cfg, key, fragment):
    with pytest.raises(ConfigError) as error:
        build_optimizer(TinyNet().parameters(), copy.deepcopy(cfg))
    assert error.value.key == f"optimizer.{key}"
    message = str(error.value)
    assert message.startswith(f"optimizer.{key}:"), message
    assert fragment in message, message
