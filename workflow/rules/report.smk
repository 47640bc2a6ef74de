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
        figure="|".join(FIGURES),
    conda:
        CONDA_ENV
    params:
        papermill=papermill_parameters,
    shell:
        "(papermill --kernel python3 {input.notebook} {output.notebook} {params.papermill}"
        " && jupyter nbconvert --to html {output.notebook} --output-dir $(dirname {output.html})"
        ") > {log} 2>&1"


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
        "(papermill --kernel python3 {input.notebook} {output.notebook} -p theory_grid {input.grid}"
        " && jupyter nbconvert --to html {output.notebook} --output-dir $(dirname {output.html})"
        ") > {log} 2>&1"


rule figure_theory:
    input:
        rules.report_theory.output.html,


rule figure_beta2_sweep:
    input:
        figure_targets("beta2_sweep"),


rule figure_beta1_sweep:
    input:
        figure_targets("beta1_sweep"),


rule figure_noise_scale:
    input:
        figure_targets("noise_scale"),


rule figure_stability:
    input:
        figure_targets("stability"),
