# Train stage: one job per grid point of an experiment.


rule run_config:
    """The complete config of one run; rewritten (and the run redone) when it changes."""
    output:
        f"{RESULTS}/{{experiment}}/runs/{{run_id}}/run.yaml",
    log:
        f"{RESULTS}/{{experiment}}/logs/run_config/{{run_id}}.log",
    localrule: True
    params:
        # canonical (key-sorted JSON): an equal config with its keys reordered reruns nothing
        run_config=lambda wildcards: canonical(
            EXPERIMENTS[wildcards.experiment].run_config(
                EXPERIMENTS[wildcards.experiment].point(wildcards.run_id),
                ex.corpus_dir(RESULTS, EXPERIMENTS[wildcards.experiment].dataset),
            )
        ),
    run:
        write_config_yaml(output[0], params.run_config, log[0])


rule train:
    """Train one run; a killed job resumes from its checkpoint when rerun (--resume)."""
    input:
        config=rules.run_config.output,
        corpus=lambda wildcards: corpus_files(EXPERIMENTS[wildcards.experiment].dataset),
    output:
        f"{RESULTS}/{{experiment}}/runs/{{run_id}}/result.nc",
    log:
        f"{RESULTS}/{{experiment}}/logs/train/{{run_id}}.log",
    wildcard_constraints:
        # the runs of `pack: K` experiments are outputs of their pack's rule (below)
        experiment=UNPACKED_EXPERIMENTS,
    conda:
        CONDA_ENV
    threads: experiment_resource("cpus", 1)
    resources:
        gpu=experiment_resource("gpus", 0),
        mem_mb=experiment_resource("mem_mb", 2000),
        runtime=experiment_resource("runtime", 30),
    shell:
        # OMP_NUM_THREADS: torch would otherwise take every core in each of the parallel jobs
        # Snakemake deletes the declared log before it reruns a failed or incomplete job, so every
        # attempt is also appended to LOG.attempts, which it does not know (a resumed run says
        # where it resumed). On SIGTERM (Slurm's time limit) the trainer checkpoints and exits 143:
        # the job shell waits for it (its trap runs after the pipeline) and tee ignores the signal
        # so that the trainer can still write.
        'trap : TERM; (echo "== attempt at $(date -u +%FT%TZ) on $(hostname)"'
        " && OMP_NUM_THREADS={threads} adamnoise train {input.config:q} --out {output:q} --resume"
        ") 2>&1 | (trap '' TERM; exec tee -a {log:q}.attempts) >> {log:q}"


# One rule per pack (`pack: K`), named train_pack_<experiment>_<pack_id>: the runs of one pack
# are trained in one process, and their results are the rule's outputs (a rule's outputs cannot be
# computed from wildcards), so that a deleted or unreadable member result plans its pack again.
# Each result is written atomically to runs/<run_id>/result.nc as `rule train` writes it; a killed
# job resumes the pack from its checkpoint when rerun (--resume). The marker lists the results.
for pack_experiment in EXPERIMENTS.values():
    for pack_id, pack_run_ids in pack_experiment.packs.items():

        rule:
            name:
                f"train_pack_{pack_experiment.name}_{pack_id}"
            input:
                configs=pack_files(pack_experiment, pack_run_ids, "run.yaml"),
                corpus=corpus_files(pack_experiment.dataset),
            output:
                results=pack_files(pack_experiment, pack_run_ids, "result.nc"),
                marker=f"{RESULTS}/{pack_experiment.name}/packs/{pack_id}.done",
            log:
                f"{RESULTS}/{pack_experiment.name}/logs/train_pack/{pack_id}.log",
            conda:
                CONDA_ENV
            threads: pack_experiment.config.get("resources", {}).get("cpus", 1)
            resources:
                gpu=pack_experiment.config.get("resources", {}).get("gpus", 0),
                mem_mb=pack_experiment.config.get("resources", {}).get("mem_mb", 2000),
                runtime=pack_experiment.config.get("resources", {}).get("runtime", 30),
            shell:
                'trap : TERM; (echo "== attempt at $(date -u +%FT%TZ) on $(hostname)"'
                " && OMP_NUM_THREADS={threads} adamnoise train-pack {input.configs:q}"
                " --out {output.results:q} --resume) 2>&1"
                " | (trap '' TERM; exec tee -a {log:q}.attempts) >> {log:q}"
                " && printf '%s\\n' {output.results:q} > {output.marker:q}.part"
                " && mv {output.marker:q}.part {output.marker:q}"
