# Theory stage: the seeds' constants on grids, and per experiment the predicted flip batch sizes.


rule theory_grid:
    """C_total over beta1 x beta2 x lambda (seed 000) and C(beta, gamma) on the unit square (004)."""
    output:
        f"{RESULTS}/theory/theory_grid.nc",
    log:
        f"{RESULTS}/logs/theory_grid.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise theory grid --out {output} > {log} 2>&1"


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
        "adamnoise predict-flips {input} --out {output} > {log} 2>&1"
