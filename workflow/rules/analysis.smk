# Analysis stage: measurements held against theory, per experiment.


rule theory_flips:
    """Seed 000 §3.3: batch sizes where lambda crosses 1 and 0.5, from the measured B_simple."""
    input:
        rules.aggregate.output,
    output:
        f"{RESULTS}/{{experiment}}/theory_flips.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/theory_flips.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise predict-flips {input:q} --out {output:q} > {log:q} 2>&1"


rule optima:
    """Best beta per (batch size, lr) with seed statistics and the predicted slope sign:
    seed 000 Table 1 as netCDF and CSV (optima.py)."""
    input:
        aggregate=rules.aggregate.output,
        flips=rules.theory_flips.output,
    output:
        netcdf=f"{RESULTS}/{{experiment}}/optima_{{axis}}.nc",
        csv=report(
            f"{RESULTS}/{{experiment}}/optima_{{axis}}.csv",
            category="{experiment}",
            caption="../report/table1.rst",
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/optima_{{axis}}.log",
    wildcard_constraints:
        axis="beta1|beta2",
    conda:
        CONDA_ENV
    shell:
        "adamnoise optima {input.aggregate:q} --flips {input.flips:q} --axis {wildcards.axis:q}"
        " --out {output.netcdf:q} --csv {output.csv:q} > {log:q} 2>&1"


rule predictions:
    """Competing rules for the best beta per batch size and their regret (predictions.py)."""
    input:
        aggregate=rules.aggregate.output,
        flips=rules.theory_flips.output,
    output:
        netcdf=f"{RESULTS}/{{experiment}}/predictions_{{axis}}.nc",
        csv=report(
            f"{RESULTS}/{{experiment}}/predictions_{{axis}}.csv",
            category="{experiment}",
            caption="../report/predictions.rst",
        ),
        summary=f"{RESULTS}/{{experiment}}/regret_summary_{{axis}}.csv",
    log:
        f"{RESULTS}/{{experiment}}/logs/predictions_{{axis}}.log",
    wildcard_constraints:
        axis="beta1|beta2",
    conda:
        CONDA_ENV
    shell:
        "adamnoise predictions {input.aggregate:q} --flips {input.flips:q} --axis {wildcards.axis:q}"
        " --out {output.netcdf:q} --csv {output.csv:q} --summary {output.summary:q}"
        " > {log:q} 2>&1"


rule growth:
    """Max-update growth of every run against seed 004's stability region (analysis.py)."""
    input:
        rules.aggregate.output,
    output:
        f"{RESULTS}/{{experiment}}/growth.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/growth.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise growth {input:q} --out {output:q} > {log:q} 2>&1"


rule diagonal_gap:
    """Seed 003: the best beta1 = beta2 setting against the best of the grid (predictions.py)."""
    input:
        rules.aggregate.output,
    output:
        f"{RESULTS}/{{experiment}}/diagonal_gap.csv",
    log:
        f"{RESULTS}/{{experiment}}/logs/diagonal_gap.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise diagonal-gap {input:q} --csv {output:q} > {log:q} 2>&1"


rule optimizer_gap:
    """Seed 002 Fig. 1: the tuned optimum of each experiment of a comparison and the gap to the
    first (comparison.py)."""
    input:
        lambda wildcards: [
            f"{RESULTS}/{name}/aggregate.nc"
            for name in COMPARISONS[wildcards.comparison].experiments
        ],
    output:
        f"{RESULTS}/comparisons/{{comparison}}/optimizer_gap.nc",
    log:
        f"{RESULTS}/comparisons/{{comparison}}/logs/optimizer_gap.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise optimizer-gap {input:q} --out {output:q} > {log:q} 2>&1"
