"""The seed papers' theory, pure NumPy / SciPy, broadcasting over every argument.

* ``implicit_bias``: seed 000's formulas (C1..C5, C_total, noise ratio, SGD-momentum
  coefficients); ``lemmas``: its Lemmas 3.4-3.7 and A.1 computed; ``rule_of_thumb``: its rule of
  thumb (Sec. 3.3);
* ``scaling_rules``: competing rules for the best beta per batch size (seed 000's, the token
  half-life rule, the square-root SDE rule, beta1 = beta2, the default);
* ``stability``: seed 004 Sec. 3.1 (stability constant C, regions B+ / B0 / B-, max-update bound,
  level and normal curves);
* ``sign_descent``: seed 003 Prop. 1 / Thm 4.1 (Adam with beta1 = beta2 as mollified Signum);
* ``grids``: all of it on grids as an xarray Dataset (imports xarray lazily);
* ``cli``: ``adamnoise theory lemmas | rules | grid`` and ``adamnoise recommend``.
"""

from adamnoise.theory.implicit_bias import (
    c1,
    c2,
    c3,
    c4,
    c5,
    c_total,
    flip_batch_size,
    full_batch_coefficient,
    noise_ratio,
    sgdm_memory_coefficient,
    sgdm_noise_coefficient,
)
from adamnoise.theory.lemmas import lemma_table, monotonicity_thresholds
from adamnoise.theory.rule_of_thumb import Recommendation, recommend
from adamnoise.theory.scaling_rules import RULES as SCALING_RULES
from adamnoise.theory.scaling_rules import predict_all as predict_beta_rules
from adamnoise.theory.sign_descent import adam_direction_equal_betas, deviation_average
from adamnoise.theory.stability import (
    growth_exponent,
    level_curve_through,
    max_update_bound,
    normal_curve_through,
    stability_constant,
    stability_region,
)

__all__ = [
    "SCALING_RULES",
    "Recommendation",
    "adam_direction_equal_betas",
    "c1",
    "c2",
    "c3",
    "c4",
    "c5",
    "c_total",
    "deviation_average",
    "flip_batch_size",
    "full_batch_coefficient",
    "growth_exponent",
    "lemma_table",
    "level_curve_through",
    "max_update_bound",
    "monotonicity_thresholds",
    "noise_ratio",
    "normal_curve_through",
    "predict_beta_rules",
    "recommend",
    "sgdm_memory_coefficient",
    "sgdm_noise_coefficient",
    "stability_constant",
    "stability_region",
]
