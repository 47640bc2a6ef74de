"""Gradient accumulation equals the full-batch gradient; the max-update measurement."""

from __future__ import annotations

import copy

import pytest
import torch

from adamnoise.models import build_model
from adamnoise.optim import build_optimizer
from adamnoise.training.batches import split_micro_batches
from adamnoise.training.gradients import GradientAccumulator, UpdateTracker

VOCAB, SEQ, BATCH = 40, 12, 8
ADAM = {"name": "adam", "lr": 1e-2, "beta1": 0.9, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.0}


def tiny_model(arch: str):
    torch.manual_seed(0)
    cfg = {"preset": arch, "n_layer": 1, "d_model": 32, "dropout": 0.0}
    if arch == "gpt-tiny":
        cfg["d_mlp"] = 64
    else:
        cfg.update(n_head=2, d_head=16, d_inner=64)
    return build_model(cfg, VOCAB).double()


def batch():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(VOCAB, (BATCH, SEQ + 1), generator=g)
    return tokens[:, :-1], tokens[:, 1:]


@pytest.mark.parametrize("arch", ["gpt-tiny", "txl-tiny"])
@pytest.mark.parametrize("micro", [1, 2, 4, 8])
def test_accumulated_update_equals_full_batch_update(arch, micro):
    torch.set_num_threads(1)
    inputs, targets = batch()
    full_model = tiny_model(arch)
    accumulated_model = copy.deepcopy(full_model)

    # reference: one backward of the full-batch mean loss, one Adam step
    full_opt = build_optimizer(full_model.parameters(), ADAM)
    full_loss = full_model(inputs, targets).mean()
    full_loss.backward()

    params = list(accumulated_model.parameters())
    opt = build_optimizer(params, ADAM)
    micro_batches = [(inputs[s], targets[s]) for s in split_micro_batches(BATCH, micro)]
    loss, _, big_sq = GradientAccumulator(params).run(accumulated_model, micro_batches)
    grad_sq = sum(p.grad.double().square().sum() for p in params)
    # the gradients themselves (Adam's first step is nearly scale-free, so check them directly)
    for p_full, p_acc in zip(full_model.parameters(), params, strict=True):
        torch.testing.assert_close(p_acc.grad, p_full.grad, rtol=1e-10, atol=1e-13)
    opt.step()
    full_opt.step()

    assert loss.item() == pytest.approx(full_loss.item(), rel=1e-6)
    assert big_sq.item() == pytest.approx(grad_sq.item(), rel=1e-6)
    for p_full, p_acc in zip(full_model.parameters(), params, strict=True):
        torch.testing.assert_close(p_acc, p_full, rtol=1e-10, atol=1e-12)


def test_max_update_is_the_largest_parameter_change():
    torch.set_num_threads(1)
    model = tiny_model("gpt-tiny").float()
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    tracker = UpdateTracker(params)
    opt = torch.optim.SGD(params, lr=0.5)
    inputs, targets = batch()
    model(inputs, targets).mean().backward()
    tracker.before()
    opt.step()
    measured = tracker.after()
    expected = max((p.detach() - b).abs().max() for p, b in zip(params, before, strict=True))
    assert measured.item() == expected.item()
    # for SGD it is lr * max |g|
    largest_grad = max(p.grad.abs().max() for p in params)
    assert measured.item() == pytest.approx(0.5 * largest_grad.item(), rel=1e-5)
