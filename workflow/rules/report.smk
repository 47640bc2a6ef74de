# Report stage: papermill executes one notebook per figure, nbconvert renders it to HTML. The
# figures, their inputs and where they render come from the registry (adamnoise.figures). Each
# figure is also a named target (`snakemake figure_beta2_sweep`) and part of `--report`.


rule report_figure:
    """Any registered figure of an experiment, a comparison, the theory or the toy quadratics."""
    input:
        unpack(report_inputs),
    output:
        notebook=f"{RESULTS}/{{group}}/{{folder}}/{{figure}}.ipynb",
        html=report(
            f"{RESULTS}/{{group}}/{{folder}}/{{figure}}.html",
            category="{group}",
            caption="../report/figure.rst",
        ),
    log:
        f"{RESULTS}/{{group}}/logs/{{folder}}_{{figure}}.log",
    wildcard_constraints:
        group="|".join([*EXPERIMENTS, "comparisons", *REPORT_GROUPS]),
        folder="|".join([fig.REPORT_FOLDER, *COMPARISONS]),
        figure="|".join(fig.FIGURES),
    conda:
        CONDA_ENV
    params:
        papermill=papermill_arguments,
        description=lambda wildcards: fig.FIGURES[wildcards.figure].description,
    shell:
        "(papermill --kernel python3 {input.notebook:q} {output.notebook:q} {params.papermill:q}"
        ' && jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})"'
        ") > {log:q} 2>&1"


rule report_index:
    """One page listing every figure of `rule all` with run counts and provenance."""
    input:
        figure_html_targets(),
    output:
        f"{RESULTS}/index.html",
    log:
        f"{RESULTS}/logs/report_index.log",
    conda:
        CONDA_ENV
    shell:
        "adamnoise report-index {input:q} --out {output:q} > {log:q} 2>&1"


# `snakemake figure_<name>` renders one figure for every active experiment (or comparison) that
# lists it; `snakemake figure_theory` / `figure_toy` render every figure of that scope
for figure_name in fig.FIGURES:

    rule:
        name:
            f"figure_{figure_name}"
        input:
            figure_targets(figure_name),


for scope in REPORT_GROUPS:

    rule:
        name:
            f"figure_{scope}"
        input:
            [figure_targets(name) for name in fig.names(scope)],
