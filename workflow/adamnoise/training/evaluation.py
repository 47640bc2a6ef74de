"""Evaluations of a run: the validation loss with its standard error, what is recorded with it,
the measurements at the best weights, and the stopping rule (trainer.py's docstring)."""

from __future__ import annotations

import math

import torch

from adamnoise.training.batches import SequenceCut
from adamnoise.training.exact_noise import exact_noise_scale
from adamnoise.training.result import History, perplexity
from adamnoise.training.runtime import host_values


@torch.no_grad()
def evaluate(model, loss_of, cut: SequenceCut, batch_size: int, autocast) -> tuple[float, float]:
    """Token-weighted mean cross-entropy of a split (every scored token counts once) and its
    standard error over the split's sequences.

    The standard error treats the sequences as the sampled units (their tokens are not
    independent): with T_i scored tokens and mean loss x_i in sequence i, T = sum T_i and the mean
    x = sum T_i x_i / T, se^2 = n/(n-1) sum (T_i/T)^2 (x_i - x)^2, which is s^2/n for sequences of
    equal length. It is the evaluation noise of one number: how much the loss would move on
    another validation sample of the same size.
    """
    was_training = model.training
    model.eval()
    sums, counts = [], []
    for inputs, targets in cut.eval_batches(batch_size):
        with autocast():
            per_token = loss_of(inputs, targets)
        sums.append(per_token.double().sum(dim=-1))
        counts.append(torch.full_like(sums[-1], targets.shape[-1]))
    model.train(was_training)
    if not sums:
        return math.nan, math.nan
    seq_sums, seq_tokens = torch.cat(sums), torch.cat(counts)
    n, tokens = seq_sums.numel(), seq_tokens.sum()
    mean = seq_sums.sum() / tokens
    weights = seq_tokens / tokens
    variance = (
        (weights.square() * (seq_sums / seq_tokens - mean).square()).sum() * n / max(n - 1, 1)
    )
    loss, se = host_values(torch.stack([mean, variance.sqrt()]))  # one synchronisation
    return loss, (se if n > 1 else math.nan)


def record_evaluation(
    history: History, step: int, steps_per_epoch: int, val: tuple[float, float], noise
) -> bool:
    """Record an evaluation (``val``: loss and its standard error) with the current B_simple
    estimates; True if it is a new best."""
    previous_best = history.best_index
    history.record_eval(
        epoch=step / steps_per_epoch,
        step=step,
        val_loss=val[0],
        val_loss_se=val[1],
        b_simple=noise.b_simple,
        grad_noise_trace=noise.noise_trace,
        grad_sq_norm=noise.grad_sq_norm,
    )
    return history.best_index != previous_best


def keeps_best_weights(t) -> bool:
    """Whether a run copies its weights at every new best (for the measurements at the best)."""
    return t.test_at_best or t.exact_noise_scale


def measure_at_best(
    history: History, t, model, loss_of, params, cuts: tuple[SequenceCut, SequenceCut], autocast
) -> None:
    """Test perplexity and the exact B_simple (on the (train, test) ``cuts``) at the weights of
    the best evaluation, which ``loss_of`` and ``params`` must hold; ``model`` is the module whose
    training flag ``evaluate`` switches (B_simple is measured in training mode, as in training)."""
    train_cut, test_cut = cuts
    if t.test_at_best:
        test_loss, test_se = evaluate(model, loss_of, test_cut, t.eval_batch_size, autocast)
        history.test_ppl = perplexity(test_loss)
        history.test_loss_se = test_se
    if t.exact_noise_scale:
        exact = exact_noise_scale(loss_of, params, train_cut, autocast)
        history.exact_grad_sq_norm = exact.grad_sq_norm
        history.exact_noise_trace = exact.noise_trace


def passed_minimum(history: History, t, step: int) -> bool:
    """The stopping rule of trainer.py's docstring for ``training`` settings ``t`` (False without
    ``patience``): ``patience`` evaluations and ``patience_fraction`` of the best step since it."""
    best = history.best_index
    if t.patience is None or best is None:
        return False
    best_step = history.eval_step[best]
    evals_since = len(history.val_loss) - 1 - best
    return evals_since >= t.patience and step - best_step >= t.patience_fraction * best_step
