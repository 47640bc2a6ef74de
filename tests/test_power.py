"""Power of a paired comparison: textbook values and a pilot aggregate with known differences."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from adamnoise.power import minimum_detectable_effect, paired_t_power, power_table


def test_paired_t_power_matches_the_textbook_values():
    # Cohen's d = 1 with n = 10 pairs, two-sided 5 %: power 0.80 (e.g. G*Power: 0.8031)
    assert paired_t_power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=0.001)
    # no effect: the test's level
    assert paired_t_power(0.0, 1.0, 5) == pytest.approx(0.05, abs=1e-9)
    # d = 0.5 with n = 34: power 0.80 (the classic sample size for a medium effect)
    assert paired_t_power(0.5, 1.0, 34) == pytest.approx(0.80, abs=0.01)
    assert np.isnan(paired_t_power(1.0, 1.0, 1))


def test_minimum_detectable_effect_inverts_the_power():
    mde = minimum_detectable_effect(2.0, 10)
    assert paired_t_power(mde, 2.0, 10) == pytest.approx(0.8, abs=1e-6)
    assert mde == pytest.approx(2.0 * 0.9923, rel=0.01)  # d = 0.99 for n = 10
    # three seeds: two degrees of freedom cost a lot; more than the normal approximation's
    # (z_0.975 + z_0.8) / sqrt(3) = 1.62, more than with six seeds
    three = minimum_detectable_effect(1.0, 3)
    assert paired_t_power(three, 1.0, 3) == pytest.approx(0.8, abs=1e-6)
    assert three > 2 * 1.62 > minimum_detectable_effect(1.0, 6)


def test_power_table_reads_the_paired_differences_of_a_pilot():
    # beta2 0.9 is worse than 0.999 by 1, 2, 3 (mean 2, s.d. 1) on a baseline of 20
    ppl = np.array([[[21.0, 22.0, 23.0], [20.0, 20.0, 20.0]]])  # [batch, beta2, seed]
    aggregate = xr.Dataset(
        {
            "min_val_ppl": (("batch_size", "beta2", "seed"), ppl),
            "status": (("batch_size", "beta2", "seed"), np.zeros_like(ppl, dtype=np.int8)),
        },
        coords={"batch_size": [8], "beta2": [0.9, 0.999], "seed": [0, 1, 2]},
    )
    table = power_table(aggregate, "beta2", seeds=(3, 10))
    row = table.iloc[0]
    assert row["beta2"] == 0.9 and row["n_pilot_seeds"] == 3
    assert row["mean_diff"] == pytest.approx(2.0) and row["sd_diff"] == pytest.approx(1.0)
    assert row["mean_diff_pct"] == pytest.approx(10.0)
    assert row["mde_10_seeds"] == pytest.approx(0.9923, rel=0.01)
    assert row["mde_10_seeds_pct"] == pytest.approx(100 * row["mde_10_seeds"] / 20.0)
    with pytest.raises(ValueError, match="not in the grid"):
        power_table(aggregate, "beta2", baseline=0.99)
