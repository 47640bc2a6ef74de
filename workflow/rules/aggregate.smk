# Aggregate stage: all runs of an experiment into one xarray Dataset (netCDF).


rule experiment_config:
    """The experiment's config on its own; rewritten (and the aggregate redone) when it changes."""
    output:
        f"{RESULTS}/{{experiment}}/experiment.yaml",
    log:
        f"{RESULTS}/{{experiment}}/logs/experiment_config.log",
    localrule: True
    params:
        # canonical (key-sorted JSON): an equal config with its keys reordered reruns nothing
        config=lambda wildcards: canonical(
            {
                "results": RESULTS,
                "active": [wildcards.experiment],
                "experiments": {
                    wildcards.experiment: EXPERIMENTS[wildcards.experiment].config
                },
            }
        ),
    run:
        write_config_yaml(output[0], params.config, log[0])


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
