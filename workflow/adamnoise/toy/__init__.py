"""Toy problems of the seeds: the 9-dimensional block quadratics of seed 002 (App. I, Fig. 17) and
seed 003 (§5, Fig. 6; App. D), run with the project's optimisers.

* ``quadratic``: the problems, mini-batches, ``train`` / ``loss_curve``, tuning, and the datasets
  ``gap_vs_batch_size`` (seed 002) and ``sign_descent_comparison`` (seed 003);
* ``plots``: the two figures; ``cli``: ``adamnoise toy gap | sign``.
"""

from adamnoise.toy.quadratic import (
    EIGENVALUE_BLOCKS,
    EIGENVALUES,
    BlockQuadratic,
    QuadraticGapSetup,
    SignDescentSetup,
    Trajectories,
    block_quadratic,
    gap_vs_batch_size,
    loss_curve,
    minibatch_gradient,
    sign_descent_comparison,
    train,
    tune,
)

__all__ = [
    "EIGENVALUES",
    "EIGENVALUE_BLOCKS",
    "BlockQuadratic",
    "QuadraticGapSetup",
    "SignDescentSetup",
    "Trajectories",
    "block_quadratic",
    "gap_vs_batch_size",
    "loss_curve",
    "minibatch_gradient",
    "sign_descent_comparison",
    "train",
    "tune",
]
