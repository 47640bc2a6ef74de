"""Learning-rate multipliers at key steps, computed by hand, and config errors."""

from __future__ import annotations

import math

import pytest
import torch

from adamnoise.schedules import SCHEDULE_DEFAULTS, SCHEDULE_PARAMETERS, build_schedule

torch.set_num_threads(1)


def test_constant_is_one_everywhere():
    f = build_schedule({"name": "constant"}, total_steps=50)
    assert [f(t) for t in (0, 1, 49, 50, 1000)] == [1.0] * 5


def test_warmup_cosine_key_steps():
    # T = 100, 10 % warm-up (W = 10, seeds 002/003), cosine to 0
    f = build_schedule({"name": "warmup_cosine"}, total_steps=100)
    assert f(0) == pytest.approx(0.1)  # step 1 of 10
    assert f(4) == pytest.approx(0.5)  # step 5 of 10
    assert f(9) == 1.0  # the end of warm-up reaches the peak
    # first decay step, s = 11: ½(1 + cos(π/90)) = ½(1 + 0.99939083) = 0.99969541
    assert f(10) == pytest.approx(0.99969541)
    assert f(54) == pytest.approx(0.5)  # s = 55: half-way through the 90 decay steps
    # s = 78: ½(1 + cos(π·68/90)) = ½(1 + cos 136°) = ½(1 − cos 44°) = ½(1 − 0.71933980)
    assert f(77) == pytest.approx(0.14033010)
    assert f(99) == pytest.approx(0.0, abs=1e-12)  # the last step ends at min_ratio
    assert f(500) == pytest.approx(0.0, abs=1e-12)  # and stays there


def test_warmup_cosine_with_min_ratio_and_warmup_steps():
    cfg = {"name": "warmup_cosine", "warmup_steps": 4, "min_ratio": 0.1}
    f = build_schedule(cfg, total_steps=24)
    assert [f(t) for t in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(13) == pytest.approx(0.55)  # s = 14: half-way, 0.1 + 0.9 · 0.5
    assert f(23) == pytest.approx(0.1)
    # monotone non-increasing after the peak
    values = [f(t) for t in range(3, 24)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_warmup_cosine_without_warmup_starts_at_the_peak_region():
    f = build_schedule({"name": "warmup_cosine", "warmup_fraction": 0.0}, total_steps=2)
    assert f(0) == pytest.approx(0.5)  # s = 1 of 2: cos(π/2) = 0
    assert f(1) == pytest.approx(0.0, abs=1e-12)


def test_wsd_linear_key_steps():
    # T = 100, W = 10 steps, D = 20 % = 20 steps, decay from step S = 80 on
    cfg = {"name": "wsd", "warmup_steps": 10}
    f = build_schedule(cfg, total_steps=100)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == 1.0
    assert f(10) == 1.0 and f(50) == 1.0 and f(79) == 1.0  # stable, s ≤ 80
    assert f(80) == pytest.approx(0.95)  # s = 81: 1 − 1/20
    assert f(89) == pytest.approx(0.5)  # s = 90: half-way through the decay
    assert f(99) == pytest.approx(0.0, abs=1e-12)


def test_wsd_one_minus_sqrt_and_min_ratio():
    cfg = {
        "name": "wsd",
        "warmup_fraction": 0.05,
        "decay_fraction": 0.5,
        "decay_shape": "1-sqrt",
        "min_ratio": 0.2,
    }
    f = build_schedule(cfg, total_steps=40)  # W = 2, D = 20, S = 20
    assert [f(0), f(1), f(19)] == pytest.approx([0.5, 1.0, 1.0])
    # s = 25: progress 5/20 = 1/4, 1 − 0.8 · √(1/4) = 0.6
    assert f(24) == pytest.approx(0.6)
    # s = 30: progress 1/2, 1 − 0.8 · 0.70710678 = 0.43431458
    assert f(29) == pytest.approx(0.43431458)
    assert f(39) == pytest.approx(0.2)


def test_wsd_without_warmup_or_decay_is_constant():
    f = build_schedule({"name": "wsd", "decay_fraction": 0.0}, total_steps=10)
    assert [f(t) for t in range(12)] == [1.0] * 12


def test_fraction_rounding_is_to_the_nearest_step():
    # 0.29 · 100 = 28.999999999999996 in floating point: 29 warm-up steps, not 28
    f = build_schedule({"name": "warmup_cosine", "warmup_fraction": 0.29}, total_steps=100)
    assert f(28) == 1.0 and f(27) == pytest.approx(28 / 29)


def test_parameters_list_matches_defaults():
    assert set(SCHEDULE_PARAMETERS) == {"constant", "warmup_cosine", "wsd"}
    for name, defaults in SCHEDULE_DEFAULTS.items():
        assert SCHEDULE_PARAMETERS[name] == {"name", *defaults}
        build_schedule({"name": name, **defaults}, total_steps=100)


def test_works_with_lambda_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    f = build_schedule({"name": "wsd", "warmup_steps": 2, "decay_fraction": 0.5}, total_steps=6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, f)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # W = 2, S = 3, D = 3: 1/2, 1, 1, then 1 − 1/3, 1 − 2/3, 0 — times lr = 2
    assert lrs == pytest.approx([1.0, 2.0, 2.0, 4 / 3, 2 / 3, 0.0], abs=1e-12)


@pytest.mark.parametrize(
    "cfg, total_steps, key, fragment",
    [
        ({"name": "cosine"}, 10, "schedule.name", "allowed: ['constant', 'warmup_cosine', 'wsd']"),
        ({}, 10, "schedule.name", "missing"),
        ({"name": "constant", "warmup_steps": 3}, 10, "schedule.warmup_steps", "allowed: ['name']"),
        ({"name": "wsd", "min_lr": 0.1}, 10, "schedule.min_lr", "not a parameter of 'wsd'"),
        ({"name": "wsd", "min_ratio": 1.5}, 10, "schedule.min_ratio", "[0, 1]"),
        ({"name": "wsd", "decay_fraction": -0.1}, 10, "schedule.decay_fraction", "[0, 1]"),
        ({"name": "wsd", "decay_shape": "cosine"}, 10, "schedule.decay_shape", "'1-sqrt'"),
        (
            {"name": "warmup_cosine", "warmup_fraction": 1.0},
            10,
            "schedule.warmup_fraction",
            "[0, 1)",
        ),
        (
            {"name": "warmup_cosine", "warmup_fraction": "10%"},
            10,
            "schedule.warmup_fraction",
            "number",
        ),
        ({"name": "warmup_cosine", "warmup_steps": -1}, 10, "schedule.warmup_steps", ">= 0"),
        ({"name": "warmup_cosine", "warmup_steps": 2.5}, 10, "schedule.warmup_steps", "integer"),
        (
            {"name": "warmup_cosine", "warmup_steps": 2, "warmup_fraction": 0.1},
            10,
            "schedule.warmup_steps",
            "not both",
        ),
        ({"name": "warmup_cosine", "warmup_steps": 10}, 10, "schedule.warmup_steps", "no decay"),
        (
            {"name": "wsd", "warmup_fraction": 0.5, "decay_fraction": 0.6},
            10,
            "schedule.decay_fraction",
            "exceed",
        ),
        ({"name": "constant"}, 0, "total_steps", ">= 1"),
        ({"name": "wsd"}, 10.0, "total_steps", "integer"),
    ],
)
def test_bad_configs_name_the_key(cfg, total_steps, key, fragment):
    with pytest.raises(ValueError) as error:
        build_schedule(cfg, total_steps)
    message = str(error.value)
    assert message.startswith(f"{key}:"), message
    assert fragment in message, message


def test_negative_step_is_an_error():
    f = build_schedule({"name": "warmup_cosine"}, total_steps=10)
    with pytest.raises(ValueError, match="step index"):
        f(-1)
    assert math.isfinite(f(10**9))
