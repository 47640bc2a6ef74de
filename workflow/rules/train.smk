# Train stage: one job per grid point of an experiment.


rule run_config:
    """The complete config of one run; rewritten (and the run redone) when it changes."""
    output:
        f"{RESULTS}/{{experiment}}/runs/{{run_id}}/run.yaml",
    log:
        f"{RESULTS}/{{experiment}}/logs/run_config/{{run_id}}.log",
    localrule: True
    params:
        run_config=lambda wildcards: EXPERIMENTS[wildcards.experiment].run_config(
            EXPERIMENTS[wildcards.experiment].point(wildcards.run_id),
            ex.corpus_dir(RESULTS, EXPERIMENTS[wildcards.experiment].dataset),
        ),
    run:
        from adamnoise.io import write_text

        write_text(output[0], yaml.safe_dump(params.run_config, sort_keys=False))
        write_text(log[0], f"wrote {output[0]}\n")


rule train:
    """Train one run; a killed job resumes from its checkpoint when rerun (--resume)."""
    input:
        config=rules.run_config.output,
        corpus=lambda wildcards: corpus_files(EXPERIMENTS[wildcards.experiment].dataset),
    output:
        f"{RESULTS}/{{experiment}}/runs/{{run_id}}/result.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/train/{{run_id}}.log",
    conda:
        CONDA_ENV
    threads: experiment_resource("cpus", 1)
    resources:
        gpu=experiment_resource("gpus", 0),
        mem_mb=experiment_resource("mem_mb", 2000),
        runtime=experiment_resource("runtime", 30),
    shell:
        # OMP_NUM_THREADS: torch would otherwise take every core in each of the parallel jobs
        "OMP_NUM_THREADS={threads} adamnoise train {input.config:q} --out {output:q} --resume"
        " > {log:q} 2>&1"


rule train_pack:
    """Train the runs of one pack (`pack: K`) in one process; the marker lists their results.

    Each result is written atomically to runs/<run_id>/result.nc as `rule train` writes it; a
    killed job resumes the pack from its checkpoint when rerun (--resume).
    """
    input:
        configs=lambda wildcards: pack_members(wildcards, "run.yaml"),
        corpus=lambda wildcards: corpus_files(EXPERIMENTS[wildcards.experiment].dataset),
    output:
        f"{RESULTS}/{{experiment}}/packs/{{pack_id}}.done",
    log:
        f"{RESULTS}/{{experiment}}/logs/train_pack/{{pack_id}}.log",
    conda:
        CONDA_ENV
    threads: experiment_resource("cpus", 1)
    resources:
        gpu=experiment_resource("gpus", 0),
        mem_mb=experiment_resource("mem_mb", 2000),
        runtime=experiment_resource("runtime", 30),
    params:
        results=lambda wildcards: pack_members(wildcards, "result.nc"),
    shell:
        "OMP_NUM_THREADS={threads} adamnoise train-pack {input.configs:q} --out {params.results:q}"
        " --resume > {log:q} 2>&1"
        " && printf '%s\\n' {params.results:q} > {output:q}.part && mv {output:q}.part {output:q}"
