"""The toy quadratics of seeds 002 (App. I, Fig. 17) and 003 (§5, Fig. 6; App. D).

The problem is checked against the numbers printed in the seeds, the mini-batch gradient against
its definition, the optimiser steps and small runs of both experiments against hand computation
(and seed 003 Prop. 1), and the workflow's full-size runs for their structure (slow). What the runs
say about the seeds' claims is a measurement (docs/quadratics.md), not a test.
"""

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from adamnoise.theory.sign_descent import deviation_average
from adamnoise.toy import quadratic as q

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# seed 002 App. I / seed 003 App. D, transcribed again here on purpose
PRINTED_HET = [[1, 2, 3], [99, 100, 101], [4998, 4999, 5000]]
PRINTED_HOM = [[1, 99, 4998], [2, 100, 4999], [3, 101, 5000]]
PRINTED_EIGENVALUES = [1, 2, 3, 99, 100, 101, 4998, 4999, 5000]
KINDS = ("heterogeneous", "homogeneous")


@pytest.fixture(scope="module")
def problems():
    return {kind: q.block_quadratic(kind) for kind in KINDS}


# --------------------------------------------------------------------------------------------
# The problem


def test_eigenvalue_blocks_are_the_printed_ones():
    assert [list(b) for b in q.EIGENVALUE_BLOCKS["heterogeneous"]] == PRINTED_HET
    assert [list(b) for b in q.EIGENVALUE_BLOCKS["homogeneous"]] == PRINTED_HOM
    assert list(q.EIGENVALUES) == PRINTED_EIGENVALUES


@pytest.mark.parametrize("kind", KINDS)
def test_hessian_has_the_printed_spectrum_and_block_structure(problems, kind):
    hessian = problems[kind].hessian
    printed = PRINTED_HET if kind == "heterogeneous" else PRINTED_HOM
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), PRINTED_EIGENVALUES, atol=1e-9)
    for k, eigenvalues in enumerate(printed):
        block = slice(3 * k, 3 * k + 3)
        np.testing.assert_allclose(
            np.linalg.eigvalsh(hessian[block, block]), eigenvalues, atol=1e-9
        )
        # a random rotation, not the diagonal matrix of eigenvalues (whose spread it mixes)
        off_diagonal = hessian[block, block][~np.eye(3, dtype=bool)]
        assert np.abs(off_diagonal).max() > 0.05 * (max(eigenvalues) - min(eigenvalues))
        outside = np.ones(9, dtype=bool)
        outside[block] = False
        assert np.all(hessian[block][:, outside] == 0.0)  # exactly block-diagonal


def test_both_hessians_share_spectrum_rotations_and_start(problems):
    het, hom = problems["heterogeneous"], problems["homogeneous"]
    np.testing.assert_allclose(
        np.linalg.eigvalsh(het.hessian), np.linalg.eigvalsh(hom.hessian), atol=1e-9
    )
    assert not np.allclose(het.hessian, hom.hessian)
    np.testing.assert_array_equal(het.rotations, hom.rotations)
    np.testing.assert_array_equal(het.initial_point, hom.initial_point)


def test_rotations_are_orthogonal_and_differ_per_block(problems):
    rotations = problems["heterogeneous"].rotations
    for rotation in rotations:
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert not np.allclose(np.abs(rotations[0]), np.abs(rotations[1]))
    other_seed = q.block_quadratic("heterogeneous", seed=1).rotations
    assert not np.allclose(np.abs(rotations), np.abs(other_seed))


@pytest.mark.parametrize("kind", KINDS)
def test_design_is_the_square_root_of_the_hessian(problems, kind):
    design = problems[kind].design
    np.testing.assert_allclose(design, design.T, atol=1e-12)
    np.testing.assert_allclose(design.T @ design, problems[kind].hessian, atol=1e-9)
    assert np.linalg.eigvalsh(design).min() > 0
    w = problems[kind].initial_point
    np.testing.assert_allclose(problems[kind].loss(w), 0.5 * np.sum((design @ w) ** 2), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Mini-batches


def test_full_batch_gives_the_exact_gradient(problems):
    for problem in problems.values():
        w = problem.initial_point
        gradient = q.minibatch_gradient(problem, w, range(9))
        np.testing.assert_allclose(gradient, problem.hessian @ w, rtol=1e-12)


@pytest.mark.parametrize("batch_size", range(1, 10))
def test_row_subsample_is_unbiased_over_all_subsets(problems, batch_size):
    problem = problems["heterogeneous"]
    w = np.random.default_rng(3).standard_normal(9)
    gradients = [
        q.minibatch_gradient(problem, w, rows)
        for rows in itertools.combinations(range(9), batch_size)
    ]
    np.testing.assert_allclose(np.mean(gradients, axis=0), problem.hessian @ w, rtol=1e-10)
    if batch_size < 9:  # and it is noisy
        assert np.std(gradients, axis=0).max() > 1.0


def test_sampler_draws_b_distinct_rows_uniformly_and_unbiased(problems):
    steps, batch_size = 20000, 3
    weights = q.batch_row_weights(9, batch_size, steps, seed=0).numpy()
    assert np.all((weights > 0).sum(axis=1) == batch_size)
    np.testing.assert_allclose(weights[weights > 0], 9 / batch_size)
    inclusion = (weights > 0).mean(axis=0)
    p = batch_size / 9
    assert np.all(np.abs(inclusion - p) < 5 * np.sqrt(p * (1 - p) / steps))

    problem = problems["homogeneous"]
    design = problem.design
    w = problem.initial_point
    gradients = ((design @ w) * weights) @ design  # Σ_i weight_i x_i (x_i^T w), every step
    standard_error = gradients.std(axis=0) / np.sqrt(steps)
    assert np.all(np.abs(gradients.mean(axis=0) - problem.hessian @ w) < 5 * standard_error)


def test_batch_size_out_of_range_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        q.batch_row_weights(9, 10, 5, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        q.batch_row_weights(9, 0, 5, seed=0)


# --------------------------------------------------------------------------------------------
# Optimiser steps by hand


def _hand_gradient(problem, w, weights_row):
    rows = np.flatnonzero(weights_row)
    design = problem.design
    return sum(weights_row[i] * design[i] * (design[i] @ w) for i in rows)


def _constant_lr_run(problem, optimizer, *, lr, seed, **kwargs):
    """One run at a constant learning rate: its trajectories and the batch weights of its steps
    (``kwargs``: ``batch_size``, ``steps`` and the rest of ``q.train``'s)."""
    schedule = {"name": "constant"}
    trajectories = q.train(problem, optimizer, lrs=[lr], seeds=[seed], schedule=schedule, **kwargs)
    rows = q.batch_row_weights(9, kwargs["batch_size"], kwargs["steps"], seed)
    return trajectories, rows.numpy()


def test_adam_steps_by_hand(problems):
    problem = problems["heterogeneous"]
    lr, beta1, beta2, eps, steps, seed = 0.01, 0.9, 0.95, 1e-8, 4, 5
    trajectories, rows = _constant_lr_run(
        problem,
        {"name": "adam", "beta1": beta1, "beta2": beta2, "eps": eps},
        batch_size=2,
        lr=lr,
        seed=seed,
        steps=steps,
        record_variance=True,
    )
    w = problem.initial_point.copy()
    m = np.zeros(9)
    v = np.zeros(9)
    for t in range(1, steps + 1):
        assert trajectories.loss[0, 0, t - 1] == pytest.approx(problem.loss(w), rel=1e-12)
        g = _hand_gradient(problem, w, rows[t - 1])
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        step = lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
        if t == 1:  # the first bias-corrected Adam step is lr * sign(g)
            np.testing.assert_allclose(step, lr * np.sign(g), rtol=1e-6)
        w = w - step
        block_variance = (v - m * m).reshape(3, 3).mean(axis=1)
        np.testing.assert_allclose(trajectories.block_variance[0, 0, t - 1], block_variance)
    np.testing.assert_allclose(trajectories.final_point[0, 0], w, rtol=1e-12)
    assert trajectories.final_loss[0, 0] == pytest.approx(problem.loss(w), rel=1e-12)


@pytest.mark.parametrize("dampening", [0.0, 0.9])
def test_sgd_momentum_steps_by_hand(problems, dampening):
    problem = problems["homogeneous"]
    lr, momentum, steps, seed = 1e-4, 0.9, 3, 2
    trajectories, rows = _constant_lr_run(
        problem,
        {"name": "sgd", "beta1": momentum, "dampening": dampening},
        batch_size=4,
        lr=lr,
        seed=seed,
        steps=steps,
    )
    w = problem.initial_point.copy()
    buffer = None
    for t in range(steps):
        g = _hand_gradient(problem, w, rows[t])
        # torch.optim.SGD's convention: the first buffer is the gradient itself
        buffer = g if buffer is None else momentum * buffer + (1 - dampening) * g
        w = w - lr * buffer
        assert trajectories.loss[0, 0, t + 1] == pytest.approx(problem.loss(w), rel=1e-12)
    np.testing.assert_allclose(trajectories.final_point[0, 0], w, rtol=1e-12)


def test_signum_steps_by_hand(problems):
    problem = problems["heterogeneous"]
    lr, beta, steps, seed = 0.003, 0.6, 3, 1
    trajectories, rows = _constant_lr_run(
        problem,
        {"name": "signum", "beta1": beta},
        batch_size=3,
        lr=lr,
        seed=seed,
        steps=steps,
    )
    w = problem.initial_point.copy()
    m = np.zeros(9)
    for t in range(steps):
        m = beta * m + (1 - beta) * _hand_gradient(problem, w, rows[t])
        w = w - lr * np.sign(m)
    np.testing.assert_allclose(trajectories.final_point[0, 0], w, rtol=1e-12)


def test_the_schedule_scales_the_steps(problems):
    # warm-up + cosine over 20 steps: 2 warm-up steps, the first at half the peak rate
    problem = problems["homogeneous"]
    lr = 1e-4
    loss = q.loss_curve(
        problem, {"name": "sgd", "beta1": 0.9}, batch_size=9, lr=lr, seed=0, steps=20
    )
    w0 = problem.initial_point
    w1 = w0 - 0.5 * lr * problem.hessian @ w0
    assert loss[1] == pytest.approx(problem.loss(w1), rel=1e-12)
    # the cosine ends at 0: the last step does not move
    assert loss[-1] == loss[-2]


def test_adam_variance_is_seed_003_prop1(problems):
    """With beta1 = beta2 = beta, v - m^2 is beta s of Prop. 1 (theory.sign_descent)."""
    problem = problems["heterogeneous"]
    beta, steps, seed = 0.8, 6, 4
    trajectories, rows = _constant_lr_run(
        problem,
        {"name": "adam", "beta1": beta, "beta2": beta, "eps": 1e-8},
        batch_size=3,
        lr=0.01,
        seed=seed,
        steps=steps,
        record_variance=True,
    )
    w = problem.initial_point.copy()
    grads, m, v = [], np.zeros(9), np.zeros(9)
    for t in range(1, steps + 1):
        g = _hand_gradient(problem, w, rows[t - 1])
        grads.append(g)
        m = beta * m + (1 - beta) * g
        v = beta * v + (1 - beta) * g * g
        w = w - 0.01 * (m / (1 - beta**t)) / (np.sqrt(v / (1 - beta**t)) + 1e-8)
    _, s = deviation_average(np.array(grads), beta)
    expected = (beta * s).reshape(steps, 3, 3).mean(axis=-1)
    np.testing.assert_allclose(trajectories.block_variance[0, 0], expected, rtol=1e-9)
    # v = m^2 + beta s >= m^2 (zero only while a block's rows have not been drawn yet)
    assert (
        np.all(trajectories.block_variance >= 0) and trajectories.block_variance[0, 0, -1].min() > 0
    )


def test_record_variance_needs_adam(problems):
    with pytest.raises(ValueError, match="record_variance"):
        q.train(
            problems["heterogeneous"],
            {"name": "sgd"},
            batch_size=1,
            lrs=[1e-4],
            seeds=[0],
            steps=2,
            record_variance=True,
        )


# --------------------------------------------------------------------------------------------
# Determinism and tuning


def test_same_seed_same_numbers_and_batched_equals_alone(problems):
    problem = problems["heterogeneous"]
    adam = {"name": "adam", "beta1": 0.9, "beta2": 0.95}
    kwargs = dict(batch_size=2, lrs=[1e-3, 1e-2], seeds=[0, 1, 2], steps=50)
    first = q.train(problem, adam, **kwargs)
    second = q.train(problem, adam, **kwargs)
    np.testing.assert_array_equal(first.loss, second.loss)
    assert not np.allclose(first.loss[:, 0], first.loss[:, 1])  # other seed, other batches
    alone = q.loss_curve(problem, adam, batch_size=2, lr=1e-2, seed=2, steps=50)
    np.testing.assert_allclose(first.loss[1, 2], alone, rtol=1e-12)


def test_full_batch_runs_coincide(problems):
    trajectories = q.train(
        problems["homogeneous"],
        {"name": "sgd", "beta1": 0.9},
        batch_size=9,
        lrs=[1e-4],
        seeds=[0, 1, 2],
        steps=30,
    )
    np.testing.assert_array_equal(trajectories.loss[0, 0], trajectories.loss[0, 2])


def test_tune_picks_the_lowest_run_mean_and_counts_divergence_as_inf():
    final_loss = np.array([[1.0, 1.0], [0.1, np.nan], [0.5, 0.7], [0.2, np.inf]])
    assert q.tune(final_loss) == (2,)
    np.testing.assert_array_equal(q.mean_final_loss(final_loss), [1.0, np.inf, 0.6, np.inf])
    assert q.tune(np.array([[[3.0], [2.0]], [[1.0], [4.0]]])) == (1, 0)
    assert q.on_grid_edge(0, 5) and q.on_grid_edge(4, 5) and not q.on_grid_edge(2, 5)


def test_log_grid_has_three_rates_per_decade():
    grid = q.log_grid(1e-4, 1.0)
    assert len(grid) == 13 and grid[0] == 1e-4 and grid[-1] == 1.0
    np.testing.assert_allclose(np.diff(np.log10(grid)), 1 / 3, atol=1e-3)


def test_train_leaves_the_thread_setting_alone(problems):
    import torch

    threads = torch.get_num_threads()
    q.train(
        problems["heterogeneous"], {"name": "sgd"}, batch_size=1, lrs=[1e-4], seeds=[0], steps=2
    )
    assert torch.get_num_threads() == threads


def test_cli_registers_both_commands(tmp_path):
    from adamnoise.cli import build_parser
    from adamnoise.toy import cli

    args = build_parser().parse_args(["toy", "gap", "--out", str(tmp_path / "g.nc")])
    assert args.func is cli.run_gap and args.runs is None
    args = build_parser().parse_args(["toy", "sign", "--out", "s.nc", "--runs", "3"])
    assert args.func is cli.run_sign and args.runs == 3


# --------------------------------------------------------------------------------------------
# Small runs of both experiments against quantities computed here, independently. (What they show
# about the seeds' claims is a measurement, reported in docs/quadratics.md, not a test.)


def _schedule(steps):
    from adamnoise.schedules import build_schedule

    return build_schedule(dict(q.COSINE_SCHEDULE), steps)


def _hand_run(problem, optimizer, lr, rows, steps):
    """Final loss of one run by hand: ``rows`` [step, row] weights, the warm-up + cosine schedule.
    torch's conventions: SGD's first buffer is the gradient; Adam with bias correction."""
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging rate: inf / NaN, as recorded
        return _hand_steps(problem, optimizer, lr, rows, steps)


def _hand_steps(problem, optimizer, lr, rows, steps):
    multiplier = _schedule(steps)
    w = problem.initial_point.copy()
    m, v, buffer = np.zeros(9), np.zeros(9), None
    beta1, beta2 = optimizer.get("beta1", 0.9), optimizer.get("beta2", 0.999)
    for t in range(steps):
        g = _hand_gradient(problem, w, rows[t])
        rate = lr * multiplier(t)
        if optimizer["name"] == "sgd":
            damp = optimizer.get("dampening", 0.0)
            buffer = g if buffer is None else beta1 * buffer + (1 - damp) * g
            w = w - rate * buffer
        elif optimizer["name"] == "signum":
            m = beta1 * m + (1 - beta1) * g
            w = w - rate * np.sign(m)
        else:
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat, v_hat = m / (1 - beta1 ** (t + 1)), v / (1 - beta2 ** (t + 1))
            w = w - rate * m_hat / (np.sqrt(v_hat) + optimizer["eps"])
    return problem.loss(w)


def _hand_tuned(mean_loss):
    """Index of the smallest finite mean final loss (a diverged rate counts as +inf)."""
    return np.unravel_index(np.argmin(np.where(np.isfinite(mean_loss), mean_loss, np.inf)),
                            mean_loss.shape)  # fmt: skip


def test_gap_small_run_against_hand_computation(problems):
    """Full batch (B = 9 of 9 rows) is gradient descent: every run's final loss at every rate of
    the grid equals the hand-computed one; each protocol's rate is the grid's smallest mean final
    loss where its protocol tunes it, and its final losses are that rate's runs."""
    setup = q.QuadraticGapSetup(batch_sizes=(1, 9), runs=4, steps=300)
    dataset = q.gap_vs_batch_size(setup, command="pytest")
    assert dataset["final_loss"].dims == ("protocol", "hessian", "optimizer", "batch_size", "run")
    grid = dataset["grid_final_loss"]
    full_rows = np.ones((setup.steps, 9))
    for hessian, name in itertools.product(setup.hessians, setup.optimizers):
        lrs = dataset["lr_grid"].sel(optimizer=name).values
        for index, lr in enumerate(lrs[np.isfinite(lrs)]):
            runs = grid.sel(hessian=hessian, optimizer=name, batch_size=9, lr_index=index).values
            by_hand = _hand_run(problems[hessian], setup.optimizers[name], lr, full_rows, 300)
            if np.isfinite(by_hand):
                np.testing.assert_allclose(runs, by_hand, rtol=1e-9, atol=1e-300)
            else:  # the run diverged by hand too
                assert not np.isfinite(runs).all()
        for b in setup.batch_sizes:
            mean = grid.sel(hessian=hessian, optimizer=name, batch_size=b).mean("run").values
            tuned = _hand_tuned(mean[np.isfinite(lrs)])[0]
            cell = dict(hessian=hessian, optimizer=name, batch_size=b)
            per_b = dataset.sel(protocol="tuned_per_batch_size", **cell)
            assert float(per_b["lr"]) == pytest.approx(lrs[tuned])
            np.testing.assert_array_equal(
                per_b["final_loss"].values, grid.sel(**cell, lr_index=tuned).values
            )
    # the caption's protocol keeps every optimiser's rate of the homogeneous Hessian at B = 1
    caption = dataset.sel(protocol="tuned_at_homogeneous_b1")
    reference = dataset.sel(protocol="tuned_per_batch_size", hessian="homogeneous", batch_size=1)
    for name in setup.optimizers:
        np.testing.assert_array_equal(
            caption["lr"].sel(optimizer=name).values, float(reference["lr"].sel(optimizer=name))
        )


def test_sign_small_run_against_hand_computation(problems):
    """Each optimiser's (beta, lr) is the smallest mean final loss of its tuning grid, and the
    recorded loss of its first run equals a hand-computed run with that beta and rate on the
    rows that run drew (seed 0)."""
    setup = q.SignDescentSetup(betas=(0.6, 0.9), runs=3, steps=200)
    dataset = q.sign_descent_comparison(setup, command="pytest")
    assert dataset["loss"].dims == ("optimizer", "run", "step")
    assert dataset.sizes["step"] == setup.steps + 1
    rows = q.batch_row_weights(9, setup.batch_size, setup.steps, 0).numpy()
    problem = problems[setup.hessian]
    for name, optimizer in setup.optimizers.items():
        tuning = dataset["tuning_loss"].sel(optimizer=name).values  # [beta, lr_index]
        beta_index, lr_index = _hand_tuned(tuning)
        lr = float(dataset["lr_grid"].sel(optimizer=name).values[lr_index])
        beta = setup.betas[beta_index]
        assert float(dataset["tuned_beta"].sel(optimizer=name)) == beta
        assert float(dataset["tuned_lr"].sel(optimizer=name)) == pytest.approx(lr)
        assert float(dataset["final_loss"].sel(optimizer=name).mean("run")) == pytest.approx(
            tuning[beta_index, lr_index], rel=1e-12
        )
        config = dict(optimizer, beta1=beta, beta2=beta)
        if name == "sgd_momentum":
            config["dampening"] = beta  # the EMA momentum of seed 003 eq. 1
        by_hand = _hand_run(problem, config, lr, rows, setup.steps)
        recorded = float(dataset["loss"].sel(optimizer=name).isel(run=0, step=-1))
        assert recorded == pytest.approx(by_hand, rel=1e-9)


def test_gap_protocol_needs_its_reference_point():
    with pytest.raises(ValueError, match="homogeneous"):
        q.gap_vs_batch_size(q.QuadraticGapSetup(batch_sizes=(2, 9), runs=2, steps=5))


# --------------------------------------------------------------------------------------------
# The workflow: both reports built by snakemake at full size (slow)


@pytest.fixture(scope="module")
def toy_workflow(tmp_path_factory):
    """Both toy reports built by snakemake in a copy of the workflow; returns (results, seconds)."""
    workdir = tmp_path_factory.mktemp("toy_workflow")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for part in ("Snakefile", "workflow", "notebooks", "config", "envs", "profiles"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, workdir / part, ignore=ignore)
        else:
            shutil.copy2(source, workdir / part)
    targets = [
        f"results/toy/report/{name}.html" for name in ("quadratic_gap", "quadratic_sign_descent")
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "2", *targets],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        logs = "\n".join(p.read_text() for p in (workdir / "results" / "logs").glob("*toy*"))
        pytest.fail(f"snakemake failed:\n{result.stdout}\n{result.stderr}\n{logs}")
    return workdir / "results", seconds


@pytest.mark.slow
def test_workflow_builds_both_reports(toy_workflow):
    results, seconds = toy_workflow
    assert seconds < 300, f"both toy reports took {seconds:.0f} s"
    gap_html = (results / "toy" / "report" / "quadratic_gap.html").read_text()
    assert "adam/sgd" in gap_html and "tuned_at_homogeneous_b1" in gap_html
    sign_html = (results / "toy" / "report" / "quadratic_sign_descent.html").read_text()
    assert "adam_equal_betas" in sign_html and "mean_final_loss" in sign_html
    for name in ("gap", "sign"):
        log = (results / "logs" / f"toy_quadratic_{name}.log").read_text()
        assert f"adamnoise toy {name}:" in log


@pytest.mark.slow
def test_full_size_datasets_carry_units_and_provenance(toy_workflow):
    results, _ = toy_workflow
    for name, reproduces in (("gap", "seed 002"), ("sign", "seed 003")):
        with xr.open_dataset(results / "toy" / f"quadratic_{name}.nc") as dataset:
            assert dataset.attrs["reproduces"].startswith(reproduces)
            assert dataset.attrs["provenance_command"] == f"adamnoise toy {name}"
            assert "provenance_git_commit" in dataset.attrs and dataset.attrs["wall_time_s"] > 0
            assert dataset.sizes["run"] == 10
            for variable in dataset.data_vars.values():
                assert variable.attrs.get("units") and variable.attrs.get("description")


@pytest.mark.slow
def test_full_size_runs_are_tuned_inside_their_grids(toy_workflow):
    results, _ = toy_workflow
    with xr.open_dataset(results / "toy" / "quadratic_gap.nc") as gap:
        assert list(gap["batch_size"].values) == list(range(1, 10))
        assert not gap["lr_on_grid_edge"].any()
    with xr.open_dataset(results / "toy" / "quadratic_sign.nc") as sign:
        assert not sign["lr_on_grid_edge"].any() and not sign["beta_on_grid_edge"].any()
    with pytest.raises(ValueError, match="batch_size"):
        q.batch_row_weights(9, 0, 5, seed=0)
