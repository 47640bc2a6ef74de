"""``adamnoise theory lemmas | grid`` and ``adamnoise recommend``.

Only NumPy / SciPy at import time (xarray is imported by ``theory grid`` when it runs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def register(subparsers) -> None:
    """Add the theory commands to the main ``adamnoise`` parser."""
    theory = subparsers.add_parser(
        "theory",
        help="seed 000 / 004 theory: lemma thresholds, theory grid",
        description="Recompute the seed papers' theory (thresholds, grids) from the formulas.",
    )
    theory_commands = theory.add_subparsers(dest="theory_command", required=True, metavar="WHAT")

    lemmas = theory_commands.add_parser(
        "lemmas",
        help="seed 000 Lemmas 3.4-3.7 and A.1: computed vs printed",
        description="One row per lemma claim of seed 000, computed thresholds next to the "
        "printed (conservatively rounded) ones.",
    )
    lemmas.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    lemmas.set_defaults(func=run_lemmas)

    grid = theory_commands.add_parser(
        "grid",
        help="write the theory grid (C_total, stability regions, curves) as netCDF",
        description="Write theory_grid_dataset() with provenance attributes.",
    )
    grid.add_argument("--out", required=True, help="output netCDF path (PATH.nc)")
    grid.set_defaults(func=run_grid)

    recommend = subparsers.add_parser(
        "recommend",
        help="seed 000 Sec. 3.3 rule of thumb: (beta1, beta2) for a batch size",
        description="Regime, recommended (beta1, beta2) and the threshold batch sizes of seed "
        "000 Sec. 3.3, from the noise ratio lambda = (N/b - 1)/(N - 1) B_simple. Batch size and "
        "B_simple must count the same unit (samples or sequences).",
    )
    recommend.add_argument("--n-samples", type=int, required=True, help="N, samples per epoch")
    recommend.add_argument("--batch-size", type=int, required=True, help="b, samples per step")
    recommend.add_argument(
        "--b-simple", type=float, required=True, help="B_simple = tr(Sigma)/|G|^2 (McCandlish)"
    )
    recommend.add_argument("--json", action="store_true", help="print JSON")
    recommend.set_defaults(func=run_recommend)


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
    from adamnoise.theory.implicit_bias import lemma_table

    rows = lemma_table()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(format_lemma_table(rows))
    return 0 if all(row.consistent for row in rows) else 1


def run_grid(args: argparse.Namespace) -> int:
    from adamnoise import provenance
    from adamnoise.io import save_netcdf
    from adamnoise.theory.grids import theory_grid_dataset

    dataset = theory_grid_dataset()
    dataset.attrs.update(provenance.as_attrs(provenance.collect(command="adamnoise theory grid")))
    save_netcdf(dataset, args.out)
    print(f"wrote {args.out}")
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    from adamnoise.theory.implicit_bias import recommend

    try:
        result = recommend(args.n_samples, args.batch_size, args.b_simple)
    except ValueError as error:
        print(f"adamnoise recommend: error: {error}", file=sys.stderr)
        return 2
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
