# Shared helpers: the experiments of the config, their runs, and the targets of `rule all`.
import json

import yaml
from snakemake.logging import logger

from adamnoise import comparison as cmp
from adamnoise.data import corpus
from adamnoise.errors import ConfigError
from adamnoise import experiment as ex
from adamnoise import figures as fig
from adamnoise import plan as cost_plan
from adamnoise import workflow_config

try:
    EXPERIMENTS = workflow_config.load_experiments(config)
    COMPARISONS = cmp.load_comparisons(config, EXPERIMENTS)
    SWEEP_WARNINGS = [
        warning
        for name in config["active"]
        for warning in workflow_config.one_value_sweeps(EXPERIMENTS[name])
    ]
except ConfigError as error:
    raise WorkflowError(f"invalid config: {error}") from None
for warning in SWEEP_WARNINGS:
    logger.warning(f"config: {warning}")

RESULTS = config.get("results", "results")
RESOURCES_DIR = config.get("resources_dir", "resources")
ACTIVE = {name: EXPERIMENTS[name] for name in config["active"]}
# one line of cost plan per invocation (`adamnoise plan` prints the details), torch-free; not in
# the jobs' own invocations of this Snakefile
if workflow.is_main_process:
    try:
        logger.info(
            cost_plan.plan_summary_line(
                cost_plan.plan_experiments(EXPERIMENTS, config["active"], RESULTS)
            )
        )
    except ValueError as error:
        logger.warning(f"plan: not computed ({error})")
# a comparison is built by `rule all` when all its experiments are active
ACTIVE_COMPARISONS = {
    name: comparison
    for name, comparison in COMPARISONS.items()
    if all(experiment in ACTIVE for experiment in comparison.experiments)
}
# the experiments trained one job per run by `train`; `pack: K` ones have one rule per pack
UNPACKED_EXPERIMENTS = (
    "|".join(name for name, e in EXPERIMENTS.items() if e.pack_size is None) or "^$"
)
# every rule runs in this environment under --software-deployment-method conda
CONDA_ENV = "../../envs/adamnoise.yaml"
CORPUS_FILES = corpus.CORPUS_FILES


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "^$",
    comparison="|".join(COMPARISONS) or "^$",
    run_id=ex.RUN_ID_PATTERN,


def corpus_files(dataset):
    return [f"{ex.corpus_dir(RESULTS, dataset)}/{name}" for name in CORPUS_FILES]


def experiment_resource(name, default):
    """A training-job resource of an experiment (config `resources:`), or the default."""

    def lookup(wildcards):
        return (
            EXPERIMENTS[wildcards.experiment]
            .config.get("resources", {})
            .get(name, default)
        )

    return lookup


def run_results(wildcards):
    """What the aggregate waits for: every run's result (packed or not)."""
    experiment = EXPERIMENTS[wildcards.experiment]
    return pack_files(experiment, experiment.run_ids(), "result.nc")


def pack_files(experiment, run_ids, name):
    """The run.yaml or result.nc files of some runs of an experiment."""
    return [f"{RESULTS}/{experiment.name}/runs/{run_id}/{name}" for run_id in run_ids]


def canonical(value):
    """A config as key-sorted JSON: params that only a reordering of keys changes stay equal."""
    return json.dumps(value, sort_keys=True)


def write_config_yaml(path, config_json, log):
    """Write a `canonical` config as YAML (keys sorted), and a line to the log."""
    from adamnoise.io import write_text

    write_text(path, yaml.safe_dump(json.loads(config_json), sort_keys=False))
    write_text(log, f"wrote {path}\n")


# the figure scopes without an experiment or comparison: one page each, under <results>/<scope>/
REPORT_GROUPS = ("theory", "toy")


def figure_targets(figure):
    """The HTML of one figure: for every active experiment (or comparison) that has it, or the
    one page of a theory or toy figure."""
    scope = fig.FIGURES[figure].scope
    if scope == "comparison":
        names = [n for n, c in ACTIVE_COMPARISONS.items() if c.figure == figure]
    elif scope == "experiment":
        names = [n for n, e in ACTIVE.items() if figure in e.figures]
    else:
        names = [None]
    return [fig.page_path(RESULTS, figure, name) for name in names]


def figure_html_targets():
    """Every rendered figure of `rule all` (the index page lists them)."""
    scopes = ["theory", "experiment", "comparison"]
    if config.get("toy_quadratics", True):
        scopes.append("toy")
    return [
        target
        for scope in scopes
        for figure in fig.names(scope)
        for target in figure_targets(figure)
    ]


def all_targets():
    """The aggregate and flips of every active experiment, and every figure with its inputs."""
    targets = [f"{RESULTS}/index.html"]
    for name in ACTIVE:
        targets.append(f"{RESULTS}/{name}/aggregate.nc")
        targets.append(f"{RESULTS}/{name}/theory_flips.nc")
    return targets + figure_html_targets()


# Report stage: each figure's inputs and papermill parameters come from the registry
# (adamnoise.figures)


def report_inputs(wildcards):
    """The notebook and the input files of the page <group>/<folder>/<figure>.html."""
    try:
        name = fig.locate(wildcards.group, wildcards.folder, wildcards.figure)
    except ValueError as error:
        raise WorkflowError(str(error)) from None
    experiments = ()
    if wildcards.group == "comparisons":
        comparison = COMPARISONS[name]
        if comparison.figure != wildcards.figure:
            raise WorkflowError(
                f"comparison {name!r} draws {comparison.figure!r}, not {wildcards.figure!r}"
            )
        experiments = comparison.experiments
    files = fig.report_inputs(RESULTS, wildcards.figure, name, experiments)
    notebook = f"{workflow.basedir}/notebooks/{fig.FIGURES[wildcards.figure].notebook}"
    return {"notebook": notebook, **files}


def papermill_arguments(wildcards, input):
    """`-p NAME PATH` per input, `-y` for a list: words each quoted by `{params.papermill:q}`."""
    inputs = {
        name: input[name] if isinstance(input[name], str) else list(input[name])
        for name in input.keys()
        if name != "notebook"
    }
    return fig.papermill_arguments(wildcards.figure, inputs)
