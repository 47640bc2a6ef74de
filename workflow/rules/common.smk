# Shared helpers: the experiments of the config, their runs, and the targets of `rule all`.
import yaml

from adamnoise import experiment as ex

try:
    EXPERIMENTS = ex.load_experiments(config)
except ex.ConfigError as error:
    raise WorkflowError(f"invalid config: {error}") from None

RESULTS = config.get("results", "results")
RESOURCES_DIR = config.get("resources_dir", "resources")
ACTIVE = {name: EXPERIMENTS[name] for name in config["active"]}
# every rule runs in this environment under --software-deployment-method conda
CONDA_ENV = "../../envs/adamnoise.yaml"
CORPUS_FILES = ("train.npy", "valid.npy", "test.npy", "vocab.json", "stats.json")


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "^$",
    run_id=r"bs\d+_b1-[^_/]+_b2-[^_/]+_lr-[^_/]+_s\d+",


def corpus_files(dataset):
    return [f"{RESULTS}/data/{dataset}/{name}" for name in CORPUS_FILES]


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
    experiment = EXPERIMENTS[wildcards.experiment]
    return [
        f"{RESULTS}/{experiment.name}/runs/{run_id}/result.nc"
        for run_id in experiment.run_ids()
    ]


def figure_targets(figure):
    """The HTML of one figure for every active experiment that lists it."""
    return [
        f"{RESULTS}/{name}/report/{figure}.html"
        for name, experiment in ACTIVE.items()
        if figure in experiment.figures
    ]


def all_targets():
    targets = [f"{RESULTS}/theory/report/theory_figures.html"]
    for name, experiment in ACTIVE.items():
        targets.append(f"{RESULTS}/{name}/aggregate.nc")
        targets.append(f"{RESULTS}/{name}/theory_flips.nc")
        targets += [
            f"{RESULTS}/{name}/report/{figure}.html" for figure in experiment.figures
        ]
        targets += [
            f"{RESULTS}/{name}/optima_{axis}.csv"
            for axis in ("beta2", "beta1")
            if f"{axis}_sweep" in experiment.figures
        ]
    return targets


# Report stage: the figures, and the inputs and papermill parameters of each
FIGURES = ("beta2_sweep", "beta1_sweep", "noise_scale", "stability")
# the figures of a beta sweep also read that sweep's optima (Table 1)
SWEEP_AXIS = {"beta2_sweep": "beta2", "beta1_sweep": "beta1"}


def figure_inputs(wildcards):
    inputs = {
        "notebook": f"{workflow.basedir}/notebooks/{wildcards.figure}.ipynb",
        "aggregate": f"{RESULTS}/{wildcards.experiment}/aggregate.nc",
        "flips": f"{RESULTS}/{wildcards.experiment}/theory_flips.nc",
    }
    if wildcards.figure in SWEEP_AXIS:
        axis = SWEEP_AXIS[wildcards.figure]
        inputs["optima"] = f"{RESULTS}/{wildcards.experiment}/optima_{axis}.nc"
    return inputs


def papermill_parameters(wildcards, input):
    parameters = f"-p aggregate_path {input.aggregate} -p flips_path {input.flips}"
    if "optima" in input.keys():
        parameters += f" -p optima_path {input.optima}"
    return parameters
