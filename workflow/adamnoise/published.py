"""Numbers printed in the seeds, kept next to ours in the reports.

Seed 000 (The Effect of Mini-Batch Noise on the Implicit Bias of Adam), App. B, Table 1:
Transformer-XL on WikiText-2, beta1 = 0.9, the "optimal" beta2 per batch size and learning rate
and the relative improvement Delta of its validation perplexity over the default beta2 = 0.999,
averaged over three runs. Its largest batch, 16384 sequences, is full batch for WikiText-2 at
seq_len 128 (N = 16,317 sequences): ``seed000_table1`` files it under N.
"""

from __future__ import annotations

import math

# learning rate -> {batch size: (optimal beta2, Delta in %)}
SEED000_TABLE1: dict[float, dict[int, tuple[float, float]]] = {
    1e-3: {
        128: (0.972, 4.11),
        256: (0.972, 3.07),
        512: (0.934, 4.72),
        1024: (0.934, 3.60),
        2048: (0.957, 5.59),
        4096: (0.848, 5.09),
        8192: (0.848, 5.87),
        16384: (0.848, 5.29),
    },
    10**-3.5: {
        128: (0.981, 1.39),
        256: (0.957, 3.95),
        512: (0.957, 3.91),
        1024: (0.900, 4.95),
        2048: (0.934, 6.31),
        4096: (0.934, 5.68),
        8192: (0.934, 6.11),
        16384: (0.769, 7.43),
    },
    1e-4: {
        128: (0.981, 3.14),
        256: (0.972, 5.61),
        512: (0.934, 6.33),
        1024: (0.934, 7.36),
        2048: (0.848, 8.58),
        4096: (0.900, 10.49),
        8192: (0.848, 9.11),
        16384: (0.769, 13.01),
    },
}
SEED000_FULL_BATCH = 16384


def seed000_table1(n_train_sequences: int) -> dict[tuple[int, float], tuple[float, float]]:
    """{(batch size, lr): (beta2, Delta %)} with the full-batch row under N, for ``optima.table1``.

    Learning rates are matched by their value rounded to 4 significant digits (3.162e-4 for
    10^-3.5), the precision configs write them with.
    """
    table = {}
    for lr, rows in SEED000_TABLE1.items():
        for batch_size, printed in rows.items():
            if batch_size >= n_train_sequences:
                batch_size = n_train_sequences
            table[(batch_size, round_lr(lr))] = printed
    return table


def round_lr(lr: float) -> float:
    """A learning rate to 4 significant digits, the key of ``seed000_table1``."""
    return float(f"{lr:.4g}") if lr > 0 and math.isfinite(lr) else lr
