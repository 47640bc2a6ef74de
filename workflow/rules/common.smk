# Shared helpers: the experiments of the config, their runs, and the targets of `rule all`.
import json

import yaml
from snakemake.logging import logger

from adamnoise import comparison as cmp
from adamnoise.data import corpus
from adamnoise import experiment as ex
from adamnoise import figures as fig
from adamnoise import plan as cost_plan

try:
    EXPERIMENTS = ex.load_experiments(config)
    COMPARISONS = cmp.load_comparisons(config, EXPERIMENTS)
    SWEEP_WARNINGS = [
        warning
        for name in config["active"]
        for warning in ex.one_value_sweeps(EXPERIMENTS[name])
    ]
except (ex.ConfigError, cmp.ComparisonError) as error:
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


def figure_targets(figure):
    """The HTML of one figure for every active experiment (or comparison) that has it."""
    if fig.FIGURES[figure].scope == "comparison":
        return [
            f"{RESULTS}/comparisons/{name}/{figure}.html"
            for name, comparison in ACTIVE_COMPARISONS.items()
            if comparison.figure == figure
        ]
    return [
        f"{RESULTS}/{name}/report/{figure}.html"
        for name, experiment in ACTIVE.items()
        if figure in experiment.figures
    ]


def figure_html_targets():
    """Every rendered figure of `rule all` (the index page lists them)."""
    targets = [f"{RESULTS}/theory/report/theory_figures.html"]
    if config.get("toy_quadratics", True):
        targets += [f"{RESULTS}/toy/report/{figure}.html" for figure in TOY_FIGURES]
    for figure in fig.FIGURES:
        targets += figure_targets(figure)
    return targets


def all_targets():
    targets = [f"{RESULTS}/index.html"]
    for name, experiment in ACTIVE.items():
        targets.append(f"{RESULTS}/{name}/aggregate.nc")
        targets.append(f"{RESULTS}/{name}/theory_flips.nc")
        for figure in experiment.figures:
            axis = fig.SWEEP_AXIS.get(figure)
            if figure.endswith("_sweep"):
                targets.append(f"{RESULTS}/{name}/optima_{axis}.csv")
            if figure.endswith("_predictions"):
                targets.append(f"{RESULTS}/{name}/predictions_{axis}.csv")
    return targets + figure_html_targets()


# Report stage: each figure's inputs and papermill parameters come from the registry
# (adamnoise.figures)


def figure_inputs(wildcards):
    files = fig.input_files(wildcards.figure, f"{RESULTS}/{wildcards.experiment}")
    return {
        "notebook": f"{workflow.basedir}/notebooks/{fig.FIGURES[wildcards.figure].notebook}",
        **files,
    }


def papermill_parameters(wildcards, input):
    figure = fig.FIGURES[wildcards.figure]
    parameters = {name: input[name] for name in figure.inputs} | figure.parameters
    # a list of words, each quoted by `{params.papermill:q}`
    return [
        word for name, value in parameters.items() for word in ("-p", name, str(value))
    ]


def comparison_inputs(wildcards):
    comparison = COMPARISONS[wildcards.comparison]
    directories = [f"{RESULTS}/{name}" for name in comparison.experiments]
    files = fig.comparison_input_files(comparison.figure, directories)
    inputs = {
        "notebook": f"{workflow.basedir}/notebooks/{fig.FIGURES[comparison.figure].notebook}"
    }
    for name, paths in files.items():
        inputs[name] = paths
    return inputs


def comparison_parameters(wildcards, input):
    """List parameters as papermill YAML (-y): one flow-style line per parameter."""
    names = fig.FIGURES[COMPARISONS[wildcards.comparison].figure].inputs
    lines = [
        f"{name}: [{', '.join(repr(str(p)) for p in input[name])}]" for name in names
    ]
    return [word for line in lines for word in ("-y", line)]
