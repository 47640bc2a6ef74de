"""``adamnoise theory lemmas | grid`` and ``adamnoise recommend``.

Only NumPy / SciPy at import time (xarray is imported by ``theory grid`` when it runs).
"""

from __future__ import annotations

import argparse
import json
import math

from adamnoise.cli import add_command, add_command_family, fail


def register(subparsers) -> None:
    """Add the theory commands to the main ``adamnoise`` parser."""
    theory_commands = add_command_family(
        subparsers,
        "theory",
        help="seed 000 / 004 theory: lemma thresholds, beta-scaling rules, theory grid",
        description="Recompute the seed papers' theory (thresholds, grids) from the formulas.",
    )

    lemmas = add_command(theory_commands, "lemmas", run_lemmas)
    lemmas.add_argument("--json", action="store_true", help="print a JSON list instead of a table")

    grid = add_command(theory_commands, "grid", run_grid)
    grid.add_argument("--out", required=True, help="output netCDF path (PATH.nc)")

    rules = add_command(theory_commands, "rules", run_rules)
    rules.add_argument("--axis", choices=("beta2", "beta1"), default="beta2", help="swept beta")
    rules.add_argument("--fixed", type=float, help="the other beta (default 0.9 / 0.999)")
    rules.add_argument(
        "--batch-sizes", type=float, nargs="+", required=True, help="b, smallest = anchor"
    )
    rules.add_argument("--anchor-beta", type=float, required=True, help="best beta at the anchor")
    rules.add_argument("--n-samples", type=int, required=True, help="N, samples per epoch")
    rules.add_argument("--b-simple", type=float, required=True, help="B_simple (same unit as b)")
    rules.add_argument(
        "--candidates",
        type=float,
        nargs="+",
        default=[0.9, 0.95, 0.99, 0.995, 0.999, 0.9995],
        help="betas seed 000's rule chooses among",
    )
    rules.add_argument("--json", action="store_true", help="print JSON")

    recommend = add_command(subparsers, "recommend", run_recommend)
    recommend.add_argument("--n-samples", type=int, required=True, help="N, samples per epoch")
    recommend.add_argument("--batch-size", type=int, required=True, help="b, samples per step")
    recommend.add_argument(
        "--b-simple", type=float, required=True, help="B_simple = tr(Sigma)/|G|^2 (McCandlish)"
    )
    recommend.add_argument("--json", action="store_true", help="print JSON")


# ---------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}"


def _side(side: str) -> str:
    return {"above": ">=", "below": "<="}.get(side, "")


def format_lemma_table(rows) -> str:
    """The lemma rows as a fixed-width text table (computed vs printed)."""
    header = (
        f"{'lemma':<6}{'fixed':<13}{'sweep':<7}{'increasing for':<22}{'printed':<11}"
        f"{'decreasing for':<22}{'printed':<11}ok"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ok = "yes" if row.consistent else "NO"
        if row.lemma in ("3.4", "3.5", "3.6"):
            inc = f"lambda {_side(row.increasing_side)} {_fmt(row.lambda_increasing)}"
            dec = f"lambda {_side(row.decreasing_side)} {_fmt(row.lambda_decreasing)}"
            # the printed claims: ">= x" for the side above, "< x" (strict) for the side below
            p_inc = ("<" if row.increasing_side == "below" else ">=") + _fmt(row.printed_increasing)
            p_dec = ("<" if row.decreasing_side == "below" else ">=") + _fmt(row.printed_decreasing)
            lines.append(
                f"{row.lemma:<6}{row.fixed:<13}{row.sweep:<7}{inc:<22}{p_inc:<11}"
                f"{dec:<22}{p_dec:<11}{ok}"
            )
            if row.printed_convex_range is not None:
                low, high = row.printed_convex_range
                example = row.minimiser_example or {}
                lines.append(
                    f"{'':<6}strictly convex for lambda > {_fmt(row.lambda_convex)} "
                    f"(printed: {low:g} < lambda < {high:g}); lambda = "
                    f"{_fmt(example.get('lambda'), 4)}: minimiser {row.sweep} = "
                    f"{_fmt(example.get('argmin'))}"
                )
        else:
            lines.append(
                f"{row.lemma:<6}{row.fixed:<13}{row.sweep:<7}{row.quantity} = "
                f"{_fmt(row.computed, 4)} (printed: {_fmt_printed(row)}){'':<2}{ok}"
            )
    return "\n".join(lines)


def _fmt_printed(row) -> str:
    return "> 0" if row.lemma == "3.7" else f"< {row.printed:g}"


def run_lemmas(args: argparse.Namespace) -> int:
    """seed 000 Lemmas 3.4-3.7 and A.1: computed vs printed

    One row per lemma claim of seed 000, computed thresholds next to the printed (conservatively
    rounded) ones.
    """
    from adamnoise.theory.lemmas import lemma_table

    rows = lemma_table()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(format_lemma_table(rows))
    return 0 if all(row.consistent for row in rows) else 1


def run_grid(args: argparse.Namespace) -> int:
    """write the theory grid (C_total, stability regions, curves) as netCDF

    The dataset of adamnoise.theory.grids.theory_grid_dataset, with provenance attributes.
    """
    from adamnoise import provenance
    from adamnoise.io import save_netcdf
    from adamnoise.theory.grids import theory_grid_dataset

    dataset = theory_grid_dataset()
    dataset.attrs.update(provenance.as_attrs(provenance.collect(command="adamnoise theory grid")))
    save_netcdf(dataset, args.out)
    print(f"wrote {args.out}")
    return 0


def run_rules(args: argparse.Namespace) -> int:
    """every competing rule's beta per batch size (seed 000, token half-life, sqrt, ...)

    The beta each rule of adamnoise.theory.scaling_rules predicts for a sweep of one beta across
    batch sizes. The transfer rules start from --anchor-beta at the smallest batch size; seed 000's
    rule needs N and B_simple (lambda, eq. 8) and picks among --candidates.
    """
    import numpy as np

    from adamnoise.theory.implicit_bias import noise_ratio
    from adamnoise.theory.scaling_rules import DEFAULT_BETAS, RULES, SweepContext, predict_all

    batch_sizes = np.sort(np.asarray(args.batch_sizes, dtype=float))
    problems = []
    if not 0 <= args.anchor_beta < 1:
        problems.append(f"--anchor-beta must be in [0, 1), got {args.anchor_beta}")
    if batch_sizes[0] < 1 or batch_sizes[-1] > args.n_samples:
        problems.append(f"--batch-sizes must lie in [1, N = {args.n_samples}]")
    if not args.b_simple > 0:
        problems.append(f"--b-simple must be > 0, got {args.b_simple}")
    if problems:
        return fail("adamnoise theory rules: error: " + "; ".join(problems), 2)
    other = "beta1" if args.axis == "beta2" else "beta2"
    fixed = args.fixed if args.fixed is not None else DEFAULT_BETAS[other]
    lam = noise_ratio(args.n_samples, batch_sizes, args.b_simple)
    context = SweepContext(
        axis=args.axis,
        fixed=fixed,
        batch_sizes=batch_sizes,
        noise_ratio=lam,
        anchor_batch_size=float(batch_sizes[0]),
        anchor_beta=args.anchor_beta,
        candidates=np.asarray(args.candidates, dtype=float),
    )
    predicted = predict_all(context)
    if args.json:
        rows = [
            {"batch_size": float(b), "noise_ratio": float(lam[i])}
            | {name: _none_if_nan(values[i]) for name, values in predicted.items()}
            for i, b in enumerate(batch_sizes)
        ]
        print(json.dumps({"axis": args.axis, "fixed": fixed, "rows": rows}, indent=2))
        return 0
    print(
        f"{args.axis} per batch size ({other} = {fixed:g}; anchor {args.anchor_beta:g} at "
        f"b = {batch_sizes[0]:g}; N = {args.n_samples}, B_simple = {args.b_simple:g})"
    )
    header = f"{'b':>8} {'lambda':>9} " + " ".join(f"{name:>16}" for name in predicted)
    print(header)
    print("-" * len(header))
    for i, b in enumerate(batch_sizes):
        cells = " ".join(f"{_fmt(float(values[i])):>16}" for values in predicted.values())
        print(f"{b:>8g} {lam[i]:>9.4g} {cells}")
    for name, rule in RULES.items():
        print(f"  {name}: {rule.label} ({rule.source})")
    return 0


def _none_if_nan(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def run_recommend(args: argparse.Namespace) -> int:
    """seed 000 Sec. 3.3 rule of thumb: (beta1, beta2) for a batch size

    Regime, recommended (beta1, beta2) and the threshold batch sizes of seed 000 Sec. 3.3, from the
    noise ratio lambda = (N/b - 1)/(N - 1) B_simple. Batch size and B_simple must count the same
    unit (samples or sequences).
    """
    from adamnoise.theory.rule_of_thumb import recommend

    try:
        result = recommend(args.n_samples, args.batch_size, args.b_simple)
    except ValueError as error:
        return fail(f"adamnoise recommend: error: {error}", 2)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(f"regime:           {result.regime}")
    print(f"noise ratio:      lambda = {result.noise_ratio:.4g}")
    print(f"recommended:      beta1 = {result.beta1:g}, beta2 = {result.beta2:g}")
    print(f"batch at lambda=1:   {result.batch_size_lambda_1:.1f} (smaller: small-batch regime)")
    print(f"batch at lambda=0.5: {result.batch_size_lambda_half:.1f} (larger: large-batch regime)")
    print(f"why:              {result.reasoning}")
    return 0
