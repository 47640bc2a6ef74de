"""The toy quadratics of seed 002 (App. I, Fig. 17) and seed 003 (§5, Fig. 6; App. D).

Both seeds describe the same problem, in the same words (seed 002 App. I, seed 003 App. D):

* the loss is L(w) = ½ wᵀHw on R⁹;
* H is block-diagonal with three 3 × 3 blocks and the eigenvalues {1, 2, 3, 99, 100, 101, 4998,
  4999, 5000}, distributed over the blocks as printed::

      H_details_het = [[1, 2, 3], [99, 100, 101], [4998, 4999, 5000]]
      H_details_hom = [[1, 99, 4998], [2, 100, 4999], [3, 101, 5000]]

  "heterogeneous" (Transformer-like): the spectra of the blocks differ by orders of magnitude;
  "homogeneous" (CNN-like): every block holds a small, a middle and a large eigenvalue;
* every block is Q_k diag(λ_k) Q_kᵀ with its own rotation Q_k, "sampled from the Haar measure by
  decomposition of a random 3 × 3 positive semidefinite matrix AAᵀ, where A has i.i.d. Gaussian
  entries" (the eigenvectors of a Wishart matrix are Haar distributed);
* noise: "take the square root of the Hessian to define a 9 × 9 design matrix X, H = XᵀX,
  X = H^½, and subsample a number (the batch size) of rows of X at each iteration".

Since H = XᵀX = Σᵢ xᵢxᵢᵀ over the rows xᵢ of X, L(w) = ½ Σᵢ (xᵢᵀw)²: each row is one "sample".
The mini-batch gradient of a batch S of B distinct rows is (n/B) Σ_{i∈S} xᵢxᵢᵀw with n = 9: the
batch size B = n is the full gradient Hw, and for every B the average over all batches is Hw
(unbiased). The noise is multiplicative (it vanishes at the minimum w = 0), as in least squares
that interpolates its data.

Choices where the seeds are silent (the figures' numbers were lost in extraction; the seeds'
codebase, Orvieto & Gower's, is not public here). Each is also listed in ``docs/quadratics.md``:

* Rows are drawn without replacement within a step ("subsample rows"), independently across steps,
  and rescaled by n/B so that every batch size estimates the same gradient. Run r of every
  experiment uses the batch stream of seed r: the optimisers, learning rates and Hessians of one
  run see the same rows (common random numbers), and a batch of size B is the first B rows of the
  same random permutation as every other batch size at that step.
* One problem instance (``problem_seed`` 0): the three rotations are drawn in block order and
  shared by both Hessians, so that the two problems differ only in where the eigenvalues sit; the
  initial point w₀ ~ N(0, I₉) is drawn next and shared too. Runs differ only in their mini-batches
  (at B = 9 all runs coincide).
* 1000 steps, float64, the project's warm-up + cosine schedule (10 % warm-up, to 0): seed 002 says
  "cosine learning rate schedule" for the toy and "cosine ... with 10 % warm-up" for every
  language-model run; seed 003 "always use[s] warm-up (10%) and cosine anneal".
* Learning rates: 3 per decade over a range wide enough that the best one is inside it (the
  datasets flag a best rate on the edge of its grid). "Tuned" = the lowest final loss averaged
  over the runs (a diverged run counts as +inf).

The optimisers are the project's own (``adamnoise.optim.build_optimizer``, the ``torch.optim``
wrappers around the functional cores that the language-model runs use), stepped through
``LambdaLR`` with ``adamnoise.schedules.build_schedule``. To keep the sweeps fast, one optimiser
steps every learning rate and every run at once: the parameters are a tensor W[lr, run, 9], each
learning rate is a parameter group holding the view W[lr] (all rules here are coordinate-wise and
unclipped, so a [run, 9] parameter is exactly `run` independent 9-dimensional problems).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from adamnoise.optim import build_optimizer
from adamnoise.schedules import build_schedule

DIMENSION = 9
BLOCK_SIZE = 3

# seed 002 App. I and seed 003 App. D ("H_details_het", "H_details_hom"): one row per block
EIGENVALUE_BLOCKS: dict[str, tuple[tuple[float, ...], ...]] = {
    "heterogeneous": ((1.0, 2.0, 3.0), (99.0, 100.0, 101.0), (4998.0, 4999.0, 5000.0)),
    "homogeneous": ((1.0, 99.0, 4998.0), (2.0, 100.0, 4999.0), (3.0, 101.0, 5000.0)),
}
# "eig(H_hom) = eig(H_het) = {1, 2, 3, 99, 100, 101, 4998, 4999, 5000}"
EIGENVALUES = (1.0, 2.0, 3.0, 99.0, 100.0, 101.0, 4998.0, 4999.0, 5000.0)

# the schedule of both seeds' training runs (see the module docstring)
COSINE_SCHEDULE: dict[str, Any] = {
    "name": "warmup_cosine",
    "warmup_fraction": 0.1,
    "min_ratio": 0.0,
}


def log_grid(low: float, high: float, per_decade: int = 3) -> tuple[float, ...]:
    """Learning rates from ``low`` to ``high`` (both included), ``per_decade`` per factor 10."""
    count = round(math.log10(high / low) * per_decade) + 1
    return tuple(float(f"{lr:.4g}") for lr in np.logspace(math.log10(low), math.log10(high), count))


# --------------------------------------------------------------------------------------------
# The problem


def haar_rotation(rng: np.random.Generator, size: int = BLOCK_SIZE) -> np.ndarray:
    """An orthogonal matrix from the Haar measure: the eigenvectors of AAᵀ, A i.i.d. N(0, 1).

    Seed 002 App. I / seed 003 App. D. The eigenvectors of a Wishart matrix are Haar distributed up
    to the sign and order of the columns, which Q diag(λ) Qᵀ does not see.
    """
    a = rng.standard_normal((size, size))
    _, eigenvectors = np.linalg.eigh(a @ a.T)
    return eigenvectors


@dataclass(frozen=True, eq=False)
class BlockQuadratic:
    """L(w) = ½ wᵀHw, H = blockdiag(Q_k diag(λ_k) Q_kᵀ) (seed 002 App. I, seed 003 App. D).

    ``eigenvalue_blocks[k]`` are the eigenvalues of block k (coordinates 3k, 3k+1, 3k+2),
    ``rotations[k]`` its Q_k, ``initial_point`` the w₀ every run starts from. Build one with
    ``block_quadratic(kind)``.
    """

    kind: str
    eigenvalue_blocks: tuple[tuple[float, ...], ...]
    rotations: np.ndarray  # [block, 3, 3], orthogonal
    initial_point: np.ndarray  # [9]

    @property
    def n_blocks(self) -> int:
        return len(self.eigenvalue_blocks)

    def _block_diagonal(self, power: float) -> np.ndarray:
        matrix = np.zeros((DIMENSION, DIMENSION))
        for k, (q, eigenvalues) in enumerate(
            zip(self.rotations, self.eigenvalue_blocks, strict=True)
        ):
            block = slice(BLOCK_SIZE * k, BLOCK_SIZE * (k + 1))
            matrix[block, block] = q @ np.diag(np.asarray(eigenvalues) ** power) @ q.T
        return matrix

    @property
    def hessian(self) -> np.ndarray:
        """H (9 × 9)."""
        return self._block_diagonal(1.0)

    @property
    def design(self) -> np.ndarray:
        """X = H^½ (9 × 9, symmetric): H = XᵀX, and row i of X is the sample xᵢ."""
        return self._block_diagonal(0.5)

    @property
    def n_rows(self) -> int:
        """Rows of X, i.e. samples: the full batch size."""
        return DIMENSION

    def loss(self, w) -> np.ndarray:
        """L(w) = ½ wᵀHw for w of shape [..., 9]."""
        w = np.asarray(w, dtype=float)
        return 0.5 * np.einsum("...i,ij,...j->...", w, self.hessian, w)

    def block_of_coordinate(self) -> np.ndarray:
        """The block index of each of the 9 coordinates (0, 0, 0, 1, 1, 1, 2, 2, 2)."""
        return np.repeat(np.arange(self.n_blocks), BLOCK_SIZE)


def block_quadratic(kind: str, seed: int = 0) -> BlockQuadratic:
    """The ``kind`` ("heterogeneous" or "homogeneous") problem of seed 002 App. I / 003 App. D.

    The rotations are drawn in block order from ``seed``, then w₀ ~ N(0, I₉): the two kinds of one
    seed share rotations and initial point and differ only in the placement of the eigenvalues.
    """
    if kind not in EIGENVALUE_BLOCKS:
        raise ValueError(f"unknown Hessian {kind!r}; allowed: {sorted(EIGENVALUE_BLOCKS)}")
    blocks = EIGENVALUE_BLOCKS[kind]
    rng = np.random.default_rng(seed)
    rotations = np.stack([haar_rotation(rng) for _ in blocks])
    initial_point = rng.standard_normal(DIMENSION)
    return BlockQuadratic(kind, blocks, rotations, initial_point)


# --------------------------------------------------------------------------------------------
# Mini-batches


def batch_row_weights(n_rows: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """The rows each step samples, as weights [step, row]: n/B on the B drawn rows, else 0.

    Each step draws a uniform random permutation of the rows (``seed`` fixes the stream) and keeps
    its first B: B distinct rows, uniformly among all subsets. Weighting them by n/B makes
    Σᵢ weightᵢ xᵢxᵢᵀw an unbiased estimate of Hw (``minibatch_gradient``).
    """
    if not 1 <= batch_size <= n_rows:
        raise ValueError(f"batch_size must be in 1..{n_rows}, got {batch_size}")
    rng = np.random.default_rng(seed)
    permutations = rng.random((steps, n_rows)).argsort(axis=1)
    weights = np.zeros((steps, n_rows))
    np.put_along_axis(weights, permutations[:, :batch_size], n_rows / batch_size, axis=1)
    return torch.from_numpy(weights)


def loss_and_gradient(
    design: torch.Tensor, w: torch.Tensor, row_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The full loss L(w) and the mini-batch gradient Σᵢ weightᵢ xᵢ(xᵢᵀw), batched over w [..., 9].

    One product Xw gives both: the residuals rᵢ = xᵢᵀw, L = ½ Σᵢ rᵢ², and the gradient
    Xᵀ(weight ⊙ r). ``row_weights`` broadcasts against the residuals [..., n] (see
    ``batch_row_weights``).
    """
    residuals = w @ design.T
    gradient = (residuals * row_weights) @ design
    return 0.5 * residuals.square().sum(-1), gradient


def minibatch_gradient(problem: BlockQuadratic, w, rows: Sequence[int]) -> np.ndarray:
    """(n/B) Σ_{i∈rows} xᵢxᵢᵀw: the stochastic gradient of the batch ``rows`` at w."""
    weights = np.zeros(problem.n_rows)
    weights[list(rows)] = problem.n_rows / len(rows)
    _, gradient = loss_and_gradient(
        torch.from_numpy(problem.design),
        torch.as_tensor(np.asarray(w, dtype=float)),
        torch.from_numpy(weights),
    )
    return gradient.numpy()


# --------------------------------------------------------------------------------------------
# Training


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread, then restore the setting.

    The tensors here hold a few hundred numbers: a second intra-op thread only adds
    synchronisation, and on a busy machine (two cores shared with other jobs) it made ``train``
    about 8 times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class Trajectories:
    """What ``train`` returns, for every learning rate and run seed.

    ``loss[lr, run, t]`` is L(w_t), t = 0 (w₀) … steps (after the last update); ``final_point[lr,
    run]`` is w_steps; ``block_variance[lr, run, t − 1, block]`` (only when asked for, else None)
    is the mean over a block's coordinates of Adam's variance estimate v_t − m_t² after update t
    (no bias correction): with β1 = β2 = β, seed 003 Prop. 1's σ²_t = β s_t.
    """

    lrs: np.ndarray
    seeds: np.ndarray
    loss: np.ndarray
    final_point: np.ndarray
    block_variance: np.ndarray | None = None

    @property
    def final_loss(self) -> np.ndarray:
        """[lr, run]: the loss after the last step."""
        return self.loss[..., -1]


def train(
    problem: BlockQuadratic,
    optimizer: dict[str, Any],
    *,
    batch_size: int,
    lrs: Sequence[float],
    seeds: Sequence[int],
    steps: int,
    schedule: dict[str, Any] | None = None,
    record_variance: bool = False,
) -> Trajectories:
    """Run ``optimizer`` from w₀ for every learning rate in ``lrs`` and every run seed in ``seeds``.

    ``optimizer`` is a project optimiser config without ``lr`` (``{"name": "adam", "beta1": 0.9,
    ...}``, see ``adamnoise.optim.factory``); ``schedule`` a schedule config (default: the warm-up +
    cosine of both seeds). Run ``seeds[j]`` draws its batches from ``batch_row_weights(...,
    seed=seeds[j])``, whatever the other runs and rates, so that a run is reproducible alone
    (``loss_curve``). ``record_variance`` (Adam only) fills ``Trajectories.block_variance``.
    """
    if record_variance and optimizer["name"] not in ("adam", "adamw"):
        raise ValueError(f"record_variance needs Adam's moments; {optimizer['name']!r} has none")
    schedule = COSINE_SCHEDULE if schedule is None else schedule
    design = torch.from_numpy(problem.design)
    row_weights = torch.stack(
        [batch_row_weights(problem.n_rows, batch_size, steps, seed) for seed in seeds], dim=1
    )  # [step, run, row]

    # W[lr, run, :] are the parameters; each learning rate is a parameter group holding a view
    start = torch.from_numpy(problem.initial_point)
    weights = start.expand(len(lrs), len(seeds), DIMENSION).clone()
    gradients = torch.zeros_like(weights)
    groups = []
    for i, lr in enumerate(lrs):
        param = weights[i]
        param.grad = gradients[i]  # a view: filling `gradients` sets every group's gradient
        groups.append({"params": [param], "lr": float(lr)})
    opt = build_optimizer(groups, {**optimizer, "lr": float(lrs[0])})
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, build_schedule(schedule, steps))

    loss = torch.empty(steps + 1, len(lrs), len(seeds), dtype=torch.float64)
    variance = torch.empty(steps, len(lrs), len(seeds), problem.n_blocks, dtype=torch.float64)
    with single_threaded():
        for t in range(steps):
            loss[t], gradient = loss_and_gradient(design, weights, row_weights[t])
            gradients.copy_(gradient)
            opt.step()
            scheduler.step()
            if record_variance:
                states = [opt.state[group["params"][0]] for group in opt.param_groups]
                m = torch.stack([state["exp_avg"] for state in states])
                v = torch.stack([state["exp_avg_sq"] for state in states])
                per_coordinate = v - m.square()
                variance[t] = per_coordinate.unflatten(-1, (problem.n_blocks, BLOCK_SIZE)).mean(-1)
        loss[steps] = 0.5 * (weights @ design.T).square().sum(-1)

    return Trajectories(
        lrs=np.asarray(lrs, dtype=float),
        seeds=np.asarray(seeds),
        loss=loss.permute(1, 2, 0).numpy(),
        final_point=weights.numpy(),
        block_variance=variance.permute(1, 2, 0, 3).numpy() if record_variance else None,
    )


def loss_curve(
    problem: BlockQuadratic,
    optimizer: dict[str, Any],
    *,
    batch_size: int,
    lr: float,
    seed: int,
    steps: int,
    schedule: dict[str, Any] | None = None,
) -> np.ndarray:
    """L(w_t) for t = 0 … steps of one run (one learning rate, one batch seed)."""
    trajectories = train(
        problem,
        optimizer,
        batch_size=batch_size,
        lrs=[lr],
        seeds=[seed],
        steps=steps,
        schedule=schedule,
    )
    return trajectories.loss[0, 0]


def mean_final_loss(final_loss: np.ndarray) -> np.ndarray:
    """Final loss [..., run] averaged over runs; a diverged run (NaN or inf) makes it +inf."""
    final_loss = np.asarray(final_loss, dtype=float)
    return np.where(np.isfinite(final_loss), final_loss, np.inf).mean(axis=-1)


def tune(final_loss: np.ndarray) -> tuple[int, ...]:
    """Index of the best setting: the lowest final loss averaged over runs (last axis).

    ``final_loss`` is [setting axes..., run], e.g. [lr, run] or [beta, lr, run]. Ties go to the
    first setting; if every setting diverged, the first one is returned.
    """
    mean = mean_final_loss(final_loss)
    return tuple(int(i) for i in np.unravel_index(np.argmin(mean), mean.shape))


def on_grid_edge(index: int, grid_size: int) -> bool:
    """Whether a tuned index is the first or last of its grid (the optimum may lie outside)."""
    return index in (0, grid_size - 1)


# --------------------------------------------------------------------------------------------
# Seed 002, App. I / Fig. 17: the Adam-SGD gap against batch size


@dataclass(frozen=True)
class QuadraticGapSetup:
    """Seed 002 App. I / Fig. 17: SGD and Adam on both Hessians across batch sizes.

    Printed in the seed: the problem (see the module docstring), "SGD and Adam using a cosine
    learning rate schedule and no clipping", "learning rates ... tuned", "mean and 2-sigma standard
    dev. for 10 runs", and for every language-model run of the seed: Adam's β2 = 0.95, "the
    standard choice (0.9, 0.95)", SGD = SGD with momentum (App. G.2 Algorithm 1: m_t = β m_{t−1}
    + g_t, i.e. no dampening), no weight decay. Chosen here: batch sizes 1 … 9 (every possible
    one: X has 9 rows), SGD momentum 0.9, Adam ε = 1e-8, 1000 steps, the learning-rate grids, and
    tuning per (Hessian, optimiser, batch size). The caption of Fig. 17 says the rates were "tuned
    so to give similar performance at Homogeneous batch size 1"; the seed does not say how rates
    for the other batch sizes were chosen, so every batch size gets its own best rate here, which
    can only narrow a gap that tuning at one batch size would show.
    """

    hessians: tuple[str, ...] = ("heterogeneous", "homogeneous")
    optimizers: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "sgd": {"name": "sgd", "beta1": 0.9, "dampening": 0.0},
            "adam": {"name": "adam", "beta1": 0.9, "beta2": 0.95, "eps": 1e-8},
        }
    )
    lr_grids: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: {"sgd": log_grid(1e-6, 1e-2), "adam": log_grid(1e-4, 1.0)}
    )
    batch_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9)
    steps: int = 1000
    runs: int = 10
    schedule: dict[str, Any] = field(default_factory=lambda: dict(COSINE_SCHEDULE))
    problem_seed: int = 0


def _provenance(command: str | None) -> dict[str, str]:
    from adamnoise import provenance

    return provenance.as_attrs(provenance.collect(command=command or "adamnoise.toy.quadratic"))


def _dimensionless(dims, values, description: str) -> tuple:
    """A data variable of the toy's datasets: every quantity of the quadratics has units "1"."""
    return dims, values, {"units": "1", "description": description}


def _problem_variables(problems: dict[str, BlockQuadratic]) -> dict[str, Any]:
    """The Hessians themselves (seed 002 Fig. 21), for the figures and for checking."""
    kinds = list(problems)
    return {
        "hessian_matrix": _dimensionless(
            ("hessian", "row", "column"),
            np.stack([problems[k].hessian for k in kinds]),
            "H of each problem (block-diagonal, 3 x 3 blocks)",
        ),
        "block_eigenvalues": _dimensionless(
            ("hessian", "block", "within_block"),
            np.array([problems[k].eigenvalue_blocks for k in kinds]),
            "eigenvalues of each block (seed's H_details)",
        ),
        "initial_loss": _dimensionless(
            ("hessian",),
            np.array([float(problems[k].loss(problems[k].initial_point)) for k in kinds]),
            "L(w0) = 1/2 w0^T H w0 at the shared initial point",
        ),
    }


def gap_vs_batch_size(
    setup: QuadraticGapSetup | None = None, *, runs: int | None = None, command: str | None = None
):
    """Seed 002 Fig. 17 as an xarray Dataset: SGD and Adam on both Hessians per batch size.

    Every (Hessian, optimiser, batch size) is run at every rate of its grid; ``protocol`` says how
    one rate is then picked:

    * ``tuned_at_homogeneous_b1`` (the caption of Fig. 17: "learning rates are tuned so to give
      similar performance at Homogeneous batch size 1"): each optimiser keeps the rate that is best
      on the homogeneous problem at batch size 1, for every Hessian and batch size;
    * ``tuned_per_batch_size``: the best rate of each (Hessian, optimiser, batch size).

    Variables: ``final_loss`` (protocol, hessian, optimizer, batch_size, run) and ``lr``,
    ``lr_on_grid_edge`` (protocol, hessian, optimizer, batch_size); ``grid_final_loss`` (hessian,
    optimizer, batch_size, lr_index, run) for every rate of ``lr_grid`` (optimizer, lr_index); and
    the problems (``hessian_matrix``, ``block_eigenvalues``, ``initial_loss``). ``runs`` overrides
    ``setup.runs``.
    """
    import xarray as xr

    setup = setup or QuadraticGapSetup()
    if runs is not None:
        setup = dataclasses.replace(setup, runs=runs)
    seeds = list(range(setup.runs))
    names = list(setup.optimizers)
    grid_size = max(len(setup.lr_grids[name]) for name in names)
    lr_grid = np.full((len(names), grid_size), np.nan)
    # NaN where an optimiser's grid is shorter than the longest one
    grid_final_loss = np.full(
        (len(setup.hessians), len(names), len(setup.batch_sizes), grid_size, setup.runs), np.nan
    )
    problems = {kind: block_quadratic(kind, setup.problem_seed) for kind in setup.hessians}
    for h, kind in enumerate(setup.hessians):
        for o, name in enumerate(names):
            lrs = setup.lr_grids[name]
            lr_grid[o, : len(lrs)] = lrs
            for b, batch_size in enumerate(setup.batch_sizes):
                trajectories = train(
                    problems[kind],
                    setup.optimizers[name],
                    batch_size=batch_size,
                    lrs=lrs,
                    seeds=seeds,
                    steps=setup.steps,
                    schedule=setup.schedule,
                )
                grid_final_loss[h, o, b, : len(lrs)] = trajectories.final_loss

    # the index of the chosen rate in its grid, per protocol, as [hessian, optimizer, batch_size]
    shape = grid_final_loss.shape[:3]
    per_batch_size = np.zeros(shape, dtype=int)
    for index in np.ndindex(shape):
        grid_length = len(setup.lr_grids[names[index[1]]])
        (per_batch_size[index],) = tune(grid_final_loss[index][:grid_length])
    if "homogeneous" not in setup.hessians or 1 not in setup.batch_sizes:
        raise ValueError("the Fig. 17 protocol tunes at the homogeneous Hessian and batch size 1")
    reference = per_batch_size[setup.hessians.index("homogeneous"), :, setup.batch_sizes.index(1)]
    protocols = {
        "tuned_at_homogeneous_b1": np.broadcast_to(reference[None, :, None], shape),
        "tuned_per_batch_size": per_batch_size,
    }
    final_loss = np.empty((len(protocols), *shape, setup.runs))
    lr = np.empty((len(protocols), *shape))
    edge = np.zeros((len(protocols), *shape), dtype=bool)
    for p, chosen in enumerate(protocols.values()):
        for index in np.ndindex(shape):
            o, i = index[1], chosen[index]
            final_loss[(p, *index)] = grid_final_loss[index][i]
            lr[(p, *index)] = lr_grid[o, i]
            edge[(p, *index)] = on_grid_edge(i, len(setup.lr_grids[names[o]]))

    dims = ("protocol", "hessian", "optimizer", "batch_size")
    dataset = xr.Dataset(
        {
            "final_loss": _dimensionless(
                (*dims, "run"), final_loss, "L(w_T) at the protocol's learning rate, per run"
            ),
            "lr": _dimensionless(dims, lr, "peak learning rate the protocol picked"),
            "lr_on_grid_edge": _dimensionless(
                dims, edge, "picked rate is the first or last of its grid"
            ),
            "grid_final_loss": _dimensionless(
                ("hessian", "optimizer", "batch_size", "lr_index", "run"),
                grid_final_loss,
                "L(w_T) for every rate of lr_grid (NaN/inf: diverged or padding)",
            ),
            "lr_grid": _dimensionless(
                ("optimizer", "lr_index"), lr_grid, "peak learning rates tried (NaN: padding)"
            ),
            **_problem_variables(problems),
        },
        coords={
            "protocol": list(protocols),
            "hessian": list(setup.hessians),
            "optimizer": names,
            "batch_size": list(setup.batch_sizes),
            "run": seeds,
        },
        attrs={
            "description": "Adam-SGD gap against batch size on the 9-dimensional block quadratic: "
            "final loss L(w_T) per Hessian, optimiser, batch size and learning-rate protocol",
            "reproduces": "seed 002 (Is your batch size the problem? Revisiting the Adam-SGD "
            "gap), App. F.2 / App. I, Fig. 17 (problem: Fig. 21)",
            "units": "loss L(w) = 1/2 w^T H w (dimensionless); batch size in rows of X = H^(1/2) "
            "out of 9",
            "steps": setup.steps,
            "runs": setup.runs,
            "problem_seed": setup.problem_seed,
            "optimizers": repr(setup.optimizers),
            "schedule": repr(setup.schedule),
            **_provenance(command),
        },
    )
    dataset["batch_size"].attrs["units"] = "rows per step (9 = full batch)"
    return dataset


# --------------------------------------------------------------------------------------------
# Seed 003, §5 / Fig. 6: SGD with momentum, Signum and Adam with β1 = β2


@dataclass(frozen=True)
class SignDescentSetup:
    """Seed 003 §5 / Fig. 6 and App. D: tuned SGD with momentum, Signum, Adam with β1 = β2.

    Printed in the seed: the heterogeneous problem (App. D, the same as seed 002's), that each
    method is tuned, that Adam uses β1 = β2, SGD's momentum as an EMA (§2 eq. 1; the project's
    ``dampening = β1``), Signum = sign of the momentum, and the second row of Fig. 6: Adam's
    variance estimate per block over time. Chosen here (the figure's settings were lost in
    extraction): batch size 3 (a third of the rows: noisy, but not the extreme B = 1), 1000 steps,
    10 runs (as seed 002's toy), Adam ε = 1e-8 with bias correction (the seed runs PyTorch's Adam
    "including this factor"), and joint tuning of the momentum β and the learning rate. The β grid
    reaches down to 0.2 because on this short, noisy problem the sign methods prefer little
    momentum (with 0.9 as the lowest β, Signum and Adam picked the edge); β = 0 is left out since
    there Adam and Signum are both SignSGD (m = g, v = g²).
    """

    hessian: str = "heterogeneous"
    optimizers: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "sgd_momentum": {"name": "sgd"},
            "signum": {"name": "signum"},
            "adam_equal_betas": {"name": "adam", "eps": 1e-8},
        }
    )
    lr_grids: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: {
            # EMA momentum (dampening = β) does not amplify the rate by 1/(1 − β): higher rates
            "sgd_momentum": log_grid(1e-5, 1e-1),
            "signum": log_grid(1e-4, 1.0),
            "adam_equal_betas": log_grid(1e-4, 1.0),
        }
    )
    betas: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.975)
    batch_size: int = 3
    steps: int = 1000
    runs: int = 10
    schedule: dict[str, Any] = field(default_factory=lambda: dict(COSINE_SCHEDULE))
    problem_seed: int = 0

    def optimizer_config(self, name: str, beta: float) -> dict[str, Any]:
        """The project optimiser config of ``name`` with momentum β (β1 = β2 = β for Adam)."""
        config = dict(self.optimizers[name])
        config["beta1"] = beta
        if config["name"] == "sgd":
            config["dampening"] = beta  # seed 003 eq. (1): m_t = β m_{t-1} + (1 - β) g_t
        if config["name"] == "adam":
            config["beta2"] = beta
        return config


def sign_descent_comparison(
    setup: SignDescentSetup | None = None, *, runs: int | None = None, command: str | None = None
):
    """Seed 003 Fig. 6 as an xarray Dataset: three tuned optimisers on the heterogeneous problem.

    Variables: ``loss`` (optimizer, run, step) at each optimiser's tuned (β, lr), ``final_loss``
    (optimizer, run), ``tuned_lr``, ``tuned_beta``, ``lr_on_grid_edge``, ``beta_on_grid_edge``
    (optimizer), ``tuning_loss`` (optimizer, beta, lr_index) with ``lr_grid`` (optimizer,
    lr_index), ``adam_block_variance`` (run, step, block): Adam's variance estimate v − m² averaged
    over each block's coordinates (seed 003 Fig. 6, second row), and the problem. ``runs``
    overrides ``setup.runs``.
    """
    import xarray as xr

    setup = setup or SignDescentSetup()
    if runs is not None:
        setup = dataclasses.replace(setup, runs=runs)
    seeds = list(range(setup.runs))
    names = list(setup.optimizers)
    problem = block_quadratic(setup.hessian, setup.problem_seed)
    grid_size = max(len(setup.lr_grids[name]) for name in names)

    loss = np.full((len(names), setup.runs, setup.steps + 1), np.nan)
    tuned_lr = np.full(len(names), np.nan)
    tuned_beta = np.full(len(names), np.nan)
    lr_edge = np.zeros(len(names), dtype=bool)
    beta_edge = np.zeros(len(names), dtype=bool)
    tuning_loss = np.full((len(names), len(setup.betas), grid_size), np.nan)
    lr_grid = np.full((len(names), grid_size), np.nan)
    adam_variance = None

    for o, name in enumerate(names):
        lrs = setup.lr_grids[name]
        lr_grid[o, : len(lrs)] = lrs
        per_beta = [
            train(
                problem,
                setup.optimizer_config(name, beta),
                batch_size=setup.batch_size,
                lrs=lrs,
                seeds=seeds,
                steps=setup.steps,
                schedule=setup.schedule,
                record_variance=setup.optimizers[name]["name"] == "adam",
            )
            for beta in setup.betas
        ]
        final = np.stack([trajectories.final_loss for trajectories in per_beta])
        best_beta, best_lr = tune(final)
        tuning_loss[o, :, : len(lrs)] = mean_final_loss(final)
        best = per_beta[best_beta]
        loss[o] = best.loss[best_lr]
        tuned_lr[o], tuned_beta[o] = lrs[best_lr], setup.betas[best_beta]
        lr_edge[o] = on_grid_edge(best_lr, len(lrs))
        beta_edge[o] = on_grid_edge(best_beta, len(setup.betas))
        if best.block_variance is not None:
            adam_variance = best.block_variance[best_lr]

    steps = np.arange(setup.steps + 1)
    variance = np.full((setup.runs, setup.steps + 1, problem.n_blocks), np.nan)
    if adam_variance is not None:
        variance[:, 1:] = adam_variance  # defined after the first update
    dataset = xr.Dataset(
        {
            "loss": _dimensionless(
                ("optimizer", "run", "step"), loss, "L(w_t) at the tuned (beta, lr), per run"
            ),
            "final_loss": _dimensionless(
                ("optimizer", "run"), loss[..., -1], "L(w_T) at the tuned (beta, lr), per run"
            ),
            "tuned_lr": _dimensionless(
                ("optimizer",), tuned_lr, "peak learning rate of the best (beta, lr)"
            ),
            "tuned_beta": _dimensionless(
                ("optimizer",),
                tuned_beta,
                "momentum beta of the best (beta, lr) (Adam: beta1 = beta2)",
            ),
            "lr_on_grid_edge": _dimensionless(
                ("optimizer",), lr_edge, "tuned rate is the first or last of its grid"
            ),
            "beta_on_grid_edge": _dimensionless(
                ("optimizer",), beta_edge, "tuned beta is the first or last of its grid"
            ),
            "tuning_loss": _dimensionless(
                ("optimizer", "beta", "lr_index"),
                tuning_loss,
                "mean L(w_T) over runs for every (beta, grid rate) (inf: a run diverged)",
            ),
            "lr_grid": _dimensionless(
                ("optimizer", "lr_index"), lr_grid, "peak learning rates tried (NaN: padding)"
            ),
            "adam_block_variance": (
                ("run", "step", "block"),
                variance,
                {
                    "units": "squared gradient units",
                    "description": "Adam (beta1 = beta2) variance estimate v_t - m_t^2 (no bias "
                    "correction; seed 003 Prop. 1's beta s_t), mean over each block's "
                    "coordinates, at Adam's tuned (beta, lr); NaN at step 0",
                },
            ),
            **_problem_variables({setup.hessian: problem}),
        },
        coords={
            "optimizer": names,
            "run": seeds,
            "step": steps,
            "beta": list(setup.betas),
            "block": np.arange(problem.n_blocks),
        },
        attrs={
            "description": "SGD with momentum, Signum and Adam with beta1 = beta2, each tuned, on "
            "the heterogeneous 9-dimensional block quadratic; Adam's per-block variance estimate",
            "reproduces": "seed 003 (In search of Adam's secret sauce), Sec. 5, Fig. 6; problem "
            "App. D",
            "units": "loss L(w) = 1/2 w^T H w (dimensionless); step = optimiser steps",
            "batch_size": setup.batch_size,
            "steps": setup.steps,
            "runs": setup.runs,
            "problem_seed": setup.problem_seed,
            "optimizers": repr({name: setup.optimizers[name] for name in names}),
            "schedule": repr(setup.schedule),
            **_provenance(command),
        },
    )
    dataset["step"].attrs["units"] = "optimiser steps (0: initial point)"
    return dataset


# --------------------------------------------------------------------------------------------
# Summaries (what the CLI and the notebooks print)


def gap_table(dataset):
    """Run-mean final loss of SGD and Adam and their ratio, per protocol, Hessian and batch size.

    A pandas DataFrame with rows (protocol, hessian, quantity) and one column per batch size;
    ``quantity`` is ``sgd``, ``adam`` (mean L(w_T) over runs) and ``adam/sgd`` (their ratio: the
    smaller, the larger Adam's advantage).
    """
    import pandas as pd

    mean = dataset["final_loss"].mean("run")
    rows = {}
    for protocol in dataset["protocol"].values:
        for hessian in dataset["hessian"].values:
            point = mean.sel(protocol=protocol, hessian=hessian)
            sgd, adam = point.sel(optimizer="sgd").values, point.sel(optimizer="adam").values
            rows[(protocol, hessian, "sgd")] = sgd
            rows[(protocol, hessian, "adam")] = adam
            rows[(protocol, hessian, "adam/sgd")] = adam / sgd
    table = pd.DataFrame.from_dict(rows, orient="index", columns=dataset["batch_size"].values)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["protocol", "hessian", "quantity"])
    table.columns.name = "batch_size"
    return table


def sign_descent_table(dataset):
    """Per optimiser: mean and 2σ of the final loss over runs, the tuned (β, lr), and the best
    run-mean final loss at every β of the grid (columns ``beta=...``), as a pandas DataFrame."""
    import pandas as pd

    final = dataset["final_loss"]
    table = pd.DataFrame(
        {
            "mean_final_loss": final.mean("run").values,
            "two_sigma": 2 * final.std("run", ddof=1).values,
            "tuned_beta": dataset["tuned_beta"].values,
            "tuned_lr": dataset["tuned_lr"].values,
        },
        index=pd.Index(dataset["optimizer"].values, name="optimizer"),
    )
    best_per_beta = dataset["tuning_loss"].min("lr_index")
    for beta in dataset["beta"].values:
        table[f"beta={beta:g}"] = best_per_beta.sel(beta=beta).values
    return table
