# Theory stage: the seeds' constants on grids (no measurement needed).


rule theory_grid:
    """C_total over beta1 x beta2 x lambda (seed 000) and C(beta, gamma) on the unit square (004)."""
    output:
        f"{RESULTS}/theory/theory_grid.nc",
    log:
        f"{RESULTS}/logs/theory_grid.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise theory grid --out {output:q} > {log:q} 2>&1"
