# Report stage: papermill executes one notebook per figure, nbconvert renders it to HTML.
# Each figure is also a named target (`snakemake figure_beta2_sweep`) and part of `--report`.


rule report_figure:
    input:
        unpack(figure_inputs),
    output:
        notebook=f"{RESULTS}/{{experiment}}/report/{{figure}}.ipynb",
        html=report(
            f"{RESULTS}/{{experiment}}/report/{{figure}}.html",
            category="{experiment}",
            caption="../report/figure.rst",
        ),
    log:
        f"{RESULTS}/{{experiment}}/logs/report_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(fig.EXPERIMENT_FIGURES),
    conda:
        CONDA_ENV
    params:
        papermill=papermill_parameters,
    shell:
        "(papermill --kernel python3 {input.notebook:q} {output.notebook:q} {params.papermill:q}"
        ' && jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})"'
        ") > {log:q} 2>&1"


rule report_theory:
    input:
        notebook=f"{workflow.basedir}/notebooks/theory_figures.ipynb",
        grid=rules.theory_grid.output,
    output:
        notebook=f"{RESULTS}/theory/report/theory_figures.ipynb",
        html=report(
            f"{RESULTS}/theory/report/theory_figures.html",
            category="theory",
            caption="../report/theory.rst",
        ),
    log:
        f"{RESULTS}/logs/report_theory.log",
    conda:
        CONDA_ENV
    shell:
        "(papermill --kernel python3 {input.notebook:q} {output.notebook:q} -p theory_grid {input.grid:q}"
        ' && jupyter nbconvert --to html {output.notebook:q} --output-dir "$(dirname {output.html:q})"'
        ") > {log:q} 2>&1"


rule figure_theory:
    input:
        rules.report_theory.output.html,


rule report_comparison:
    """A figure across experiments (config `comparisons:`), e.g. seed 002's optimiser gap."""
    input:
        unpack(comparison_inputs),
    output:
        notebook=f"{RESULTS}/comparisons/{{comparison}}/{{figure}}.ipynb",
        html=report(
            f"{RESULTS}/comparisons/{{comparison}}/{{figure}}.html",
            category="comparisons",
            caption="../report/figure.rst",
        ),
    log:
        f"{RESULTS}/comparisons/{{comparison}}/logs/report_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(fig.COMPARISON_FIGURES),
    conda:
        CONDA_ENV
    params:
        papermill=comparison_parameters,
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


# `snakemake figure_<name>` renders one figure for every active experiment that lists it
for figure_name in fig.FIGURES:

    rule:
        name:
            f"figure_{figure_name}"
        input:
            figure_targets(figure_name),
