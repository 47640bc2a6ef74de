"""The report's figures, registered once: each names its notebook and the files it reads.

The workflow derives from this registry the report rules' inputs and papermill parameters, the
named targets (``snakemake figure_<name>``) and the figure names a config may list; a test holds
the config schema's enum to it. Adding a figure = a notebook + one entry here.

Two scopes:

* ``experiment`` figures read files of one experiment, ``results/<experiment>/<file>``, and are
  listed under that experiment's ``figures:``;
* ``comparison`` figures read the same file of several experiments (a list parameter, in the
  order of the config's ``experiments:``) and are declared under the config's ``comparisons:``.

Torch-free: the workflow imports this when it parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    name: str
    notebook: str  # file under notebooks/
    description: str
    # papermill parameter -> file under results/<experiment>/ that it receives
    inputs: dict[str, str] = field(default_factory=dict)
    scope: str = "experiment"
    # papermill parameters with fixed values (one notebook serving several figures)
    parameters: dict[str, str] = field(default_factory=dict)


def _sweep(axis: str, fixed: str, seed_figure: str) -> Figure:
    return Figure(
        name=f"{axis}_sweep",
        notebook="beta_sweep.ipynb",
        description=f"min. val. perplexity against {axis} ({fixed}) per batch size, the best "
        f"{axis} with its seed range against the predicted flip ({seed_figure}), Table 1",
        inputs={
            "aggregate_path": "aggregate.nc",
            "flips_path": "theory_flips.nc",
            "optima_path": f"optima_{axis}.nc",
        },
        parameters={"axis": axis},
    )


def _predictions(axis: str) -> Figure:
    return Figure(
        name=f"{axis}_predictions",
        notebook="predictions.ipynb",
        description=f"the {axis} each competing rule predicts per batch size and its regret "
        "against the empirical best, with seed uncertainty",
        inputs={"predictions_path": f"predictions_{axis}.nc"},
        parameters={"axis": axis},
    )


FIGURES: dict[str, Figure] = {
    figure.name: figure
    for figure in (
        _sweep("beta2", "beta1 fixed", "seed 000 Fig. 2"),
        _sweep("beta1", "beta2 fixed", "seed 000 Fig. 3"),
        _predictions("beta2"),
        _predictions("beta1"),
        Figure(
            name="noise_scale",
            notebook="noise_scale.ipynb",
            description="B_simple over training per batch size and the predicted flip batch sizes",
            inputs={"aggregate_path": "aggregate.nc", "flips_path": "theory_flips.nc"},
        ),
        Figure(
            name="stability",
            notebook="stability.ipynb",
            description="max-update growth against the stability region (seed 004 Fig. 1a-c)",
            inputs={"aggregate_path": "aggregate.nc"},
        ),
        Figure(
            name="beta_grid",
            notebook="beta_grid.ipynb",
            description="min. val. perplexity over the (beta1, beta2) grid and against "
            "|log(1 - beta1) - log(1 - beta2)| (seed 003 Fig. 3: is beta1 = beta2 near-optimal?)",
            inputs={"aggregate_path": "aggregate.nc"},
        ),
        Figure(
            name="optimizer_gap",
            notebook="optimizer_gap.ipynb",
            description="tuned min. val. perplexity per optimiser against batch size and the gap "
            "to the first experiment (seed 002 Fig. 1)",
            inputs={"aggregate_paths": "aggregate.nc"},
            scope="comparison",
        ),
    )
}

EXPERIMENT_FIGURES = tuple(name for name, f in FIGURES.items() if f.scope == "experiment")
COMPARISON_FIGURES = tuple(name for name, f in FIGURES.items() if f.scope == "comparison")
# the figures that read a sweep's analysis, and which axis
SWEEP_AXIS = {
    f"{axis}_{kind}": axis for axis in ("beta2", "beta1") for kind in ("sweep", "predictions")
}


def input_files(name: str, experiment_dir: str) -> dict[str, str]:
    """papermill parameter -> path of one experiment figure's inputs."""
    return {param: f"{experiment_dir}/{file}" for param, file in FIGURES[name].inputs.items()}


def comparison_input_files(name: str, experiment_dirs: list[str]) -> dict[str, list[str]]:
    """papermill parameter -> paths (one per experiment, in order) of a comparison figure."""
    return {
        param: [f"{directory}/{file}" for directory in experiment_dirs]
        for param, file in FIGURES[name].inputs.items()
    }
