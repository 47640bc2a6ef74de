"""The theory on grids, as one xarray Dataset for the report notebook (and the workflow).

``theory_grid_dataset()`` holds

* ``c_total`` (beta1, beta2, noise_ratio): seed 000 eq. (7) on a beta1 x beta2 x lambda grid,
  with ``full_batch`` and ``noise_slope`` = C1 + C2 (beta1, beta2) so that C_total can be
  recombined for any lambda;
* ``stability_constant`` and ``stability_region`` over the open unit square (square_beta1,
  square_beta2) and over a zoomed window near the defaults (zoom_beta1, zoom_beta2): seed 004's
  C(beta, gamma) and its regions B+ / B0 / B- (codes 1 / 0 / -1);
* the level curve and the 64-point normal curve through the PyTorch defaults (seed 004 Fig. 1c),
  with C and the predicted growth exponent along the normal curve;
* the recomputed lemma thresholds of seed 000 as attributes.
"""

from __future__ import annotations

import json

import numpy as np

from adamnoise.theory import implicit_bias, lemmas, stability

# beta axes of the C_total grid: [0.9, 0.999] in steps of 0.0005, so that the paper's values
# 0.9, 0.99 and 0.999 are grid points (rounded to kill floating-point fuzz in the labels)
DEFAULT_BETAS = np.round(np.linspace(0.9, 0.999, 199), 6)
# lambdas around the beta2 reversal (0.5) and the beta1 reversal (1)
DEFAULT_LAMBDAS = np.array(
    [0.0, 0.1, 0.25, 0.4, 0.45, 0.49, 0.5, 0.51, 0.55, 0.6, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 5.0]
)


def _cell_centres(lo: float, hi: float, n: int) -> np.ndarray:
    """n cell centres of (lo, hi): never touches the edges, where C is singular at 0."""
    return lo + (hi - lo) * (np.arange(n) + 0.5) / n


def theory_grid_dataset(
    beta1=DEFAULT_BETAS,
    beta2=DEFAULT_BETAS,
    noise_ratio=DEFAULT_LAMBDAS,
    square_points: int = 400,
    zoom_window: tuple[float, float, float, float] = (0.85, 1.0, 0.9, 1.0),
    zoom_points: int = 300,
    curve_point: tuple[float, float] = (stability.DEFAULT_BETA1, stability.DEFAULT_BETA2),
    normal_curve_points: int = 64,
    level_curve_points: int = 256,
    include_lemmas: bool = True,
):
    """Build the theory dataset (see the module docstring). ``zoom_window`` is (beta1_lo, beta1_hi,
    beta2_lo, beta2_hi); ``curve_point`` is (beta1, beta2) for the level and normal curves."""
    import xarray as xr  # imported here: the theory CLI's other commands do not need it

    b1 = np.asarray(beta1, dtype=float)
    b2 = np.asarray(beta2, dtype=float)
    lam = np.asarray(noise_ratio, dtype=float)
    full_batch = implicit_bias.full_batch_coefficient(b1[:, None], b2[None, :])
    noise_slope = implicit_bias.c1(b1[:, None], b2[None, :]) + implicit_bias.c2(
        b1[:, None], b2[None, :]
    )
    c_total = implicit_bias.c_total(b1[:, None, None], b2[None, :, None], lam[None, None, :])

    sq = _cell_centres(0.0, 1.0, square_points)
    z1 = _cell_centres(zoom_window[0], zoom_window[1], zoom_points)
    z2 = _cell_centres(zoom_window[2], zoom_window[3], zoom_points)

    point_b1, point_b2 = curve_point
    normal_b1, normal_b2 = stability.normal_curve_through(point_b1, point_b2, normal_curve_points)
    level_b1, level_b2 = stability.level_curve_through(point_b1, point_b2, level_curve_points)
    crossing = stability.normal_curve_zero_crossing(point_b1, point_b2)

    beta_attrs = {
        "beta1": {"long_name": "Adam first-moment parameter beta1 (seed 004: gamma)", "units": "1"},
        "beta2": {"long_name": "Adam second-moment parameter beta2 (seed 004: beta)", "units": "1"},
    }
    region_attrs = {
        "long_name": "seed 004 stability region of (beta1, beta2)",
        "flag_values": np.array([1, 0, -1], dtype=np.int8),
        "flag_meanings": "B_plus B_zero B_minus",
        "description": "B+: C > 0 (bounded max-update), B0: C = 0, B-: C < 0 (exponential growth)",
    }
    c_attrs = {
        "long_name": "seed 004 stability constant "
        "C = (2 beta2 (1-beta1) - beta1 (1-beta2))/(beta1 beta2)",
        "units": "1 per step",
    }

    def stability_maps(prefix: str, grid: str, grid_b1, grid_b2) -> dict:
        """C and its region over the grid_b1 x grid_b2 grid, on dims ``<grid>_beta1/2``."""
        dims = (f"{grid}_beta1", f"{grid}_beta2")
        b1_b2 = grid_b1[:, None], grid_b2[None, :]
        return {
            f"{prefix}stability_constant": (dims, stability.stability_constant(*b1_b2), c_attrs),
            f"{prefix}stability_region": (
                dims,
                stability.stability_region_code(*b1_b2),
                region_attrs,
            ),
        }

    def curve_betas(curve: str, through: str, curve_b1, curve_b2) -> dict:
        """beta1 and beta2 along the normal or level curve, on its dim ``<curve>_point``."""
        return {
            f"{curve}_curve_beta{i}": (
                f"{curve}_point",
                values,
                {"long_name": f"beta{i} on the {curve} curve {through}", "units": "1"},
            )
            for i, values in ((1, curve_b1), (2, curve_b2))
        }

    ds = xr.Dataset(
        data_vars={
            "c_total": (
                ("beta1", "beta2", "noise_ratio"),
                c_total,
                {
                    "long_name": "seed 000 eq. (7) C_total(beta1, beta2, lambda)",
                    "units": "1",
                    "description": "magnitude of implicit (anti-)penalisation of approximate "
                    "l1-sharpness; > 0 regularisation, < 0 anti-regularisation",
                },
            ),
            "full_batch": (
                ("beta1", "beta2"),
                full_batch,
                {"long_name": "beta1/(1-beta1) - beta2/(1-beta2) (C_total at lambda = 0)"},
            ),
            "noise_slope": (
                ("beta1", "beta2"),
                noise_slope,
                {"long_name": "C1 + C2 of seed 000 App. A.2 (dC_total/dlambda)"},
            ),
            **stability_maps("", "square", sq, sq),
            **stability_maps("zoom_", "zoom", z1, z2),
            **curve_betas("normal", "through curve_point", normal_b1, normal_b2),
            "normal_curve_c": (
                "normal_point",
                stability.stability_constant(normal_b1, normal_b2),
                c_attrs,
            ),
            "normal_curve_growth_exponent": (
                "normal_point",
                stability.growth_exponent(normal_b1, normal_b2),
                {
                    "long_name": "predicted slope |C|/2 of log max-update per step (0 outside B-)",
                    "units": "1 per step",
                },
            ),
            **curve_betas("level", "C = C(curve_point)", level_b1, level_b2),
        },
        coords={
            "beta1": ("beta1", b1, beta_attrs["beta1"]),
            "beta2": ("beta2", b2, beta_attrs["beta2"]),
            "noise_ratio": (
                "noise_ratio",
                lam,
                {
                    "long_name": "lambda = (N/b - 1)/(N - 1) B_simple (seed 000 eq. 8)",
                    "units": "1",
                },
            ),
            "square_beta1": ("square_beta1", sq, beta_attrs["beta1"]),
            "square_beta2": ("square_beta2", sq, beta_attrs["beta2"]),
            "zoom_beta1": ("zoom_beta1", z1, beta_attrs["beta1"]),
            "zoom_beta2": ("zoom_beta2", z2, beta_attrs["beta2"]),
            "normal_point": (
                "normal_point",
                np.arange(normal_curve_points),
                {"long_name": "sample index along the normal curve, 0 = curve_point"},
            ),
            "level_point": ("level_point", np.arange(level_curve_points)),
        },
        attrs={
            "title": "Theory of seeds 000 and 004 on grids",
            "curve_point_beta1": float(point_b1),
            "curve_point_beta2": float(point_b2),
            "normal_curve_constant": float(stability.normal_curve_constant(point_b1, point_b2)),
            "normal_curve_note": "uniform in arc length from curve_point to where beta1 reaches 1",
            "normal_curve_b0_crossing": json.dumps(crossing),
            "level_curve_c": float(stability.stability_constant(point_b1, point_b2)),
        },
    )
    if include_lemmas:
        ds.attrs["lemma_table"] = json.dumps([row.as_dict() for row in lemmas.lemma_table()])
    return ds
