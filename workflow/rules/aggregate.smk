# Aggregate stage: all runs of an experiment into one xarray Dataset (netCDF).


rule experiment_config:
    """The experiment's config on its own; rewritten (and the aggregate redone) when it changes."""
    output:
        f"{RESULTS}/{{experiment}}/experiment.yaml",
    log:
        f"{RESULTS}/{{experiment}}/logs/experiment_config.log",
    localrule: True
    params:
        config=lambda wildcards: {
            "results": RESULTS,
            "active": [wildcards.experiment],
            "experiments": {
                wildcards.experiment: EXPERIMENTS[wildcards.experiment].config
            },
        },
    run:
        from adamnoise.io import write_text

        write_text(output[0], yaml.safe_dump(params.config, sort_keys=False))
        write_text(log[0], f"wrote {output[0]}\n")


rule aggregate:
    input:
        config=rules.experiment_config.output,
        runs=run_results,
    output:
        f"{RESULTS}/{{experiment}}/aggregate.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/aggregate.log",
    conda:
        CONDA_ENV
    params:
        runs_dir=f"{RESULTS}/{{experiment}}/runs",
    shell:
        "adamnoise aggregate {input.config:q} {wildcards.experiment:q}"
        " --runs-dir {params.runs_dir:q} --out {output:q} > {log:q} 2>&1"
