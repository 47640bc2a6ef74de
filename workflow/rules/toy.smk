# Toy stage: the 9-dimensional block quadratics of seed 002 (App. I, Fig. 17) and seed 003 (Sec. 5,
# Fig. 6), run on CPU in seconds with the project's optimisers, and their report notebooks.

# report notebook -> the `adamnoise toy` command whose dataset it shows
TOY_FIGURES = {"quadratic_gap": "gap", "quadratic_sign_descent": "sign"}


rule toy_quadratic:
    """Seed 002 Fig. 17 (gap: SGD vs Adam across batch sizes) or seed 003 Fig. 6 (sign: SGD with
    momentum, Signum, Adam with beta1 = beta2) as netCDF."""
    output:
        f"{RESULTS}/toy/quadratic_{{problem}}.nc",
    log:
        f"{RESULTS}/logs/toy_quadratic_{{problem}}.log",
    wildcard_constraints:
        problem="|".join(TOY_FIGURES.values()),
    conda:
        CONDA_ENV
    shell:
        "adamnoise toy {wildcards.problem:q} --out {output:q} > {log:q} 2>&1"


rule report_toy:
    input:
        notebook=f"{workflow.basedir}/notebooks/{{figure}}.ipynb",
        dataset=lambda wildcards: f"{RESULTS}/toy/quadratic_{TOY_FIGURES[wildcards.figure]}.nc",
    output:
        notebook=f"{RESULTS}/toy/report/{{figure}}.ipynb",
        html=report(f"{RESULTS}/toy/report/{{figure}}.html", category="toy"),
    log:
        f"{RESULTS}/logs/report_toy_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(TOY_FIGURES),
    conda:
        CONDA_ENV
    shell:
        "(papermill --kernel python3 {input.notebook:q} {output.notebook:q}"
        " -p dataset_path {input.dataset:q}"
        ' && jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})"'
        ") > {log:q} 2>&1"


rule figure_toy:
    input:
        [f"{RESULTS}/toy/report/{figure}.html" for figure in TOY_FIGURES],
