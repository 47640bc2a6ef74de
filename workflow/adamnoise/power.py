"""Can a sweep see a beta effect? Paired seed noise from pilot runs and the power it leaves.

Runs of one seed share their initialisation and data order, so two betas are compared seed by
seed: the difference d_s = ppl(beta, s) - ppl(default, s) over S seeds, tested with a paired
t-test (S - 1 degrees of freedom), the test ``optima``'s intervals use. With sigma the standard
deviation of d_s, a true difference delta is detected (two-sided, level alpha) with probability

    power = P(|T| > t_{1-alpha/2, S-1}),  T ~ noncentral t(S - 1, delta sqrt(S) / sigma),

and the *minimum detectable effect* (MDE) is the delta with power 0.8. ``power_table`` estimates
sigma from the seeds of pilot runs and gives the MDE for other seed counts, in perplexity and in
percent of the default's mean: the number to hold against the effect one hopes to see (seed 000
Table 1: Delta 1-13 %). An estimate of sigma from three pilot seeds is itself uncertain (its
95 % range spans about 0.5 to 6 times the value), which the table states with the pilot's seed
count.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from adamnoise.cli import add_command

ALPHA = 0.05
POWER = 0.8


def paired_t_power(effect: float, sd: float, n_seeds: int, alpha: float = ALPHA) -> float:
    """Probability that a two-sided paired t-test at level ``alpha`` over ``n_seeds`` seeds
    rejects "no difference" when the true mean difference is ``effect`` and the seed-to-seed
    standard deviation of the differences is ``sd``."""
    from scipy import stats

    if n_seeds < 2 or not sd > 0:
        return math.nan
    df = n_seeds - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = abs(effect) * math.sqrt(n_seeds) / sd
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def minimum_detectable_effect(
    sd: float, n_seeds: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The smallest true mean difference detected with probability ``power`` (bisection)."""
    if n_seeds < 2 or not sd > 0:
        return math.nan
    low, high = 0.0, sd
    while paired_t_power(high, sd, n_seeds, alpha) < power:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (
            (middle, high) if paired_t_power(middle, sd, n_seeds, alpha) < power else (low, middle)
        )
    return high


def paired_differences(
    aggregate: xr.Dataset, axis: str, statistic: str = "min_val_ppl", baseline: float = 0.999
) -> xr.DataArray:
    """ppl(beta, seed) - ppl(baseline, seed) of completed runs (NaN otherwise), every cell."""
    ppl = aggregate[statistic].where(aggregate["status"] == 0)
    values = np.asarray(aggregate[axis].values, dtype=float)
    index = int(np.argmin(np.abs(np.log((1 - values) / (1 - baseline)))))
    if not math.isclose(values[index], baseline, rel_tol=1e-9):
        raise ValueError(f"{axis} = {baseline} is not in the grid {values.tolist()}")
    return ppl - ppl.isel({axis: index})


def power_table(
    aggregate: xr.Dataset,
    axis: str,
    statistic: str = "min_val_ppl",
    seeds: tuple[int, ...] = (3, 4, 6, 8),
    baseline: float = 0.999,
):
    """Per cell and beta: the pilot's mean paired difference to ``baseline`` and its seed s.d.,
    and the minimum detectable effect with each seed count in ``seeds`` (perplexity and %)."""
    import pandas as pd

    differences = paired_differences(aggregate, axis, statistic, baseline)
    reference = aggregate[statistic].where(aggregate["status"] == 0)
    reference = reference.sel({axis: baseline}, method="nearest").mean("seed")
    cells = [d for d in differences.dims if d != "seed"]
    rows = []
    for index in np.ndindex(*(differences.sizes[d] for d in cells)):
        where = dict(zip(cells, index, strict=True))
        diffs = differences.isel(where).values
        diffs = diffs[np.isfinite(diffs)]
        beta = float(differences[axis].values[where[axis]])
        if math.isclose(beta, baseline, rel_tol=1e-9) or diffs.size < 2:
            continue
        sd = float(np.std(diffs, ddof=1))
        base = float(reference.isel({d: i for d, i in where.items() if d != axis}).values)
        row = {d: differences[d].values[i].item() for d, i in where.items()}
        row.update(n_pilot_seeds=int(diffs.size), mean_diff=float(diffs.mean()), sd_diff=sd)
        row["mean_diff_pct"] = 100 * row["mean_diff"] / base
        for n in seeds:
            mde = minimum_detectable_effect(sd, n)
            row[f"mde_{n}_seeds"] = mde
            row[f"mde_{n}_seeds_pct"] = 100 * mde / base
        rows.append(row)
    return pd.DataFrame(rows)


def register(subparsers) -> None:
    parser = add_command(subparsers, "power", _power)
    parser.add_argument("aggregate", help="aggregate.nc of the pilot experiment")
    parser.add_argument("--axis", default="beta2", choices=("beta1", "beta2"))
    parser.add_argument("--statistic", default="min_val_ppl", choices=("min_val_ppl", "test_ppl"))
    parser.add_argument("--baseline", type=float, default=0.999, help="beta compared against")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 6, 8])


def _power(args) -> int:
    """paired seed noise of a (pilot) sweep and the minimum detectable beta effect

    From an aggregate of pilot runs: per cell and beta, the mean paired difference to the baseline
    beta over seeds, its seed s.d., and the smallest true difference a paired t-test (two-sided,
    5 %) detects with 80 % power for each seed count (docs/protocol.md, 'Power').
    """
    aggregate = xr.load_dataset(args.aggregate)
    table = power_table(aggregate, args.axis, args.statistic, tuple(args.seeds), args.baseline)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0
