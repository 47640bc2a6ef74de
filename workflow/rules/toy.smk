# Toy stage: the 9-dimensional block quadratics of seed 002 (App. I, Fig. 17) and seed 003 (Sec. 5,
# Fig. 6), run on CPU in seconds with the project's optimisers; their figures (scope `toy` of
# adamnoise.figures) are rendered by the report stage.


rule toy_quadratic:
    """Seed 002 Fig. 17 (gap: SGD vs Adam across batch sizes) or seed 003 Fig. 6 (sign: SGD with
    momentum, Signum, Adam with beta1 = beta2) as netCDF."""
    output:
        netcdf=f"{RESULTS}/toy/quadratic_{{problem}}.nc",
        csv=f"{RESULTS}/toy/quadratic_{{problem}}.csv",
    log:
        f"{RESULTS}/logs/toy_quadratic_{{problem}}.log",
    wildcard_constraints:
        # the datasets of `adamnoise toy`
        problem="gap|sign",
    conda:
        CONDA_ENV
    shell:
        "adamnoise toy {wildcards.problem:q} --out {output.netcdf:q} --csv {output.csv:q}"
        " > {log:q} 2>&1"
