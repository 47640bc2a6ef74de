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


GPT_TINY = {"preset": "gpt-tiny", "n_layer": 1, "d_model": 32, "dropout": 0.0, "d_mlp": 64}
TXL_TINY = {"preset": "txl-tiny", "n_layer": 1, "d_model": 32, "dropout": 0.0}
TXL_TINY.update(n_head=2, d_head=16, d_inner=64)


def tiny_model(arch: str):
    torch.manual_seed(0)
    return build_model(GPT_TINY if arch == "gpt-tiny" else TXL_TINY, VOCAB).double()


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


def test_stacked_rows_measure_what_each_member_measures_alone():
    """``stacked=True`` (the stacked engine): row k's loss, B_simple norms, gradient and
    max-update equal member k's own, measured by the single-run path."""
    from torch.func import functional_call, stack_module_state

    torch.set_num_threads(1)
    members = []
    for seed in range(3):  # three different initialisations
        torch.manual_seed(seed)
        members.append(build_model(GPT_TINY, VOCAB).double())
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(VOCAB, (3, BATCH, SEQ + 1), generator=g)  # each member its own batch
    splits = split_micro_batches(BATCH, 4)
    stacked_batches = [(tokens[:, s, :-1], tokens[:, s, 1:]) for s in splits]
    params, buffers = stack_module_state(members)
    names, stacked = list(params), list(params.values())
    skeleton = copy.deepcopy(members[0])

    def stacked_loss(inputs, targets):
        def member_loss(p, b, x, y):
            return functional_call(skeleton, (p, b), (x, y))

        return torch.vmap(member_loss)(
            dict(zip(names, stacked, strict=True)), buffers, inputs, targets
        )

    tracker = UpdateTracker(stacked, stacked=True)
    tracker.before()
    rows = GradientAccumulator(stacked, stacked=True).run(stacked_loss, stacked_batches)
    with torch.no_grad():
        torch._foreach_add_(stacked, [p.grad for p in stacked], alpha=-0.5)  # one SGD step
    row_updates = tracker.after()
    assert all(value.shape == (3,) for value in (*rows, row_updates))

    for k, model in enumerate(members):
        own = list(model.parameters())
        own_tracker = UpdateTracker(own)
        own_tracker.before()
        micro_batches = [(tokens[k, s, :-1], tokens[k, s, 1:]) for s in splits]
        alone = GradientAccumulator(own).run(model, micro_batches)
        for row_value, value in zip(rows, alone, strict=True):  # float32 reductions
            assert row_value[k].item() == pytest.approx(value.item(), rel=1e-6)
        for name, p in zip(names, stacked, strict=True):
            torch.testing.assert_close(p.grad[k], dict(model.named_parameters())[name].grad)
        with torch.no_grad():
            torch._foreach_add_(own, [p.grad for p in own], alpha=-0.5)
        assert row_updates[k].item() == pytest.approx(own_tracker.after().item(), rel=1e-9)
