"""The report's figures, registered once: the one place that knows what a figure is.

Each entry names its notebook (under ``notebooks/``), its scope, the files it reads, the beta
axis it sweeps and whether it reads betas along a curve. The workflow derives from this registry
the report rule's inputs, papermill parameters and output paths, the named targets (``snakemake
figure_<name>``), the tables ``rule all`` builds (a figure's CSV inputs), the figure names a
config may list (the config schema's enums are injected from here, ``config_schema``) and the rows
of the report index. Adding a figure = a notebook + one entry here (and a rule, if it reads a file
no rule writes yet); tests/test_figures.py proves it.

Four scopes, each with its own directory under the results directory (``directory``):

* ``experiment`` figures read files of one experiment, ``<experiment>/<file>``, are listed under
  that experiment's ``figures:`` and render to ``<experiment>/report/<name>.html``;
* ``comparison`` figures read files of a comparison, ``comparisons/<comparison>/<file>``, and the
  same file of each of its experiments (a list parameter, in the order of the config's
  ``experiments:``); they are declared under the config's ``comparisons:`` and render to
  ``comparisons/<comparison>/<name>.html``;
* ``theory`` figures read ``theory/<file>`` (no runs) and render to ``theory/report/<name>.html``;
* ``toy`` figures read ``toy/<file>`` (the toy quadratics, built with ``rule all`` unless
  ``toy_quadratics: false``) and render to ``toy/report/<name>.html``.

Notebooks only load and plot: whatever a figure shows that is computed comes from a file an
analysis rule wrote (``inputs``).

Torch-free: the workflow imports this when it parses.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamnoise.cli import add_command

SCOPES = ("experiment", "comparison", "theory", "toy")
# the report rule's output is <results>/<group>/<folder>/<figure>.html: group is the experiment,
# "comparisons", "theory" or "toy"; folder is "report", or the comparison's name
REPORT_FOLDER = "report"


@dataclass(frozen=True)
class Figure:
    name: str
    notebook: str  # file under notebooks/
    description: str
    scope: str = "experiment"
    # papermill parameter -> file in the scope's directory that it receives
    inputs: dict[str, str] = field(default_factory=dict)
    # comparison scope: papermill parameter -> file of each compared experiment (a list)
    experiment_inputs: dict[str, str] = field(default_factory=dict)
    # papermill parameters with fixed values (one notebook serving several figures)
    parameters: dict[str, str] = field(default_factory=dict)
    # the beta the figure sweeps (the experiment must grid it): one value is a degenerate
    # figure (a warning), or, where ``needs_sweep``, no figure at all (a config error)
    axis: str | None = None
    needs_sweep: bool = False
    # reads an aggregate with a point dimension: allowed for betas along a curve
    curves: bool = False

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"figure {self.name}: scope {self.scope!r} is not one of {SCOPES}")
        if self.experiment_inputs and self.scope != "comparison":
            raise ValueError(f"figure {self.name}: experiment_inputs are for comparisons only")
        if self.needs_sweep and self.axis is None:
            raise ValueError(f"figure {self.name}: needs_sweep without an axis")


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
            "table_path": f"optima_{axis}.csv",
        },
        parameters={"axis": axis},
        axis=axis,
    )


def _predictions(axis: str) -> Figure:
    return Figure(
        name=f"{axis}_predictions",
        notebook="predictions.ipynb",
        description=f"the {axis} each competing rule predicts per batch size and its regret "
        "against the empirical best, with seed uncertainty",
        inputs={
            "predictions_path": f"predictions_{axis}.nc",
            "table_path": f"predictions_{axis}.csv",
            "summary_path": f"regret_summary_{axis}.csv",
        },
        parameters={"axis": axis},
        axis=axis,
        needs_sweep=True,
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
            description="B_simple over training per batch size and the predicted flip batch "
            "sizes (seed 000 Fig. 4)",
            inputs={"aggregate_path": "aggregate.nc", "flips_path": "theory_flips.nc"},
            curves=True,
        ),
        Figure(
            name="stability",
            notebook="stability.ipynb",
            description="max-update growth against the stability region (seed 004 Fig. 1a-c)",
            inputs={"aggregate_path": "aggregate.nc", "growth_path": "growth.nc"},
            curves=True,
        ),
        Figure(
            name="beta_grid",
            notebook="beta_grid.ipynb",
            description="min. val. perplexity over the (beta1, beta2) grid and against "
            "|log(1 - beta1) - log(1 - beta2)| (seed 003 Fig. 3: is beta1 = beta2 near-optimal?)",
            inputs={"aggregate_path": "aggregate.nc", "diagonal_gap_path": "diagonal_gap.csv"},
        ),
        Figure(
            name="optimizer_gap",
            notebook="optimizer_gap.ipynb",
            description="tuned min. val. perplexity per optimiser against batch size and the gap "
            "to the first experiment (seed 002 Fig. 1)",
            scope="comparison",
            inputs={"gap_path": "optimizer_gap.nc"},
            experiment_inputs={"aggregate_paths": "aggregate.nc"},
        ),
        Figure(
            name="theory_figures",
            notebook="theory_figures.ipynb",
            description="seed 000's C_total against beta2 and beta1 across lambda (the reversals "
            "of Lemmas 3.4-3.6) and seed 004's stability regions with level and normal curves "
            "(Fig. 1c)",
            scope="theory",
            inputs={"theory_grid": "theory_grid.nc"},
        ),
        Figure(
            name="quadratic_gap",
            notebook="quadratic_gap.ipynb",
            description="toy quadratic: SGD with momentum against Adam per batch size, "
            "heterogeneous and homogeneous Hessian (seed 002 Fig. 17)",
            scope="toy",
            inputs={"dataset_path": "quadratic_gap.nc", "table_path": "quadratic_gap.csv"},
        ),
        Figure(
            name="quadratic_sign_descent",
            notebook="quadratic_sign_descent.ipynb",
            description="toy quadratic: SGD with momentum, Signum and Adam with beta1 = beta2 "
            "(seed 003 Fig. 6)",
            scope="toy",
            inputs={"dataset_path": "quadratic_sign.nc", "table_path": "quadratic_sign.csv"},
        ),
    )
}


def names(scope: str) -> tuple[str, ...]:
    """The registered figures of one scope, in registry order."""
    return tuple(name for name, f in FIGURES.items() if f.scope == scope)


EXPERIMENT_FIGURES = names("experiment")
COMPARISON_FIGURES = names("comparison")
# the figures that read a sweep's analysis, and which axis
SWEEP_AXIS = {name: f.axis for name, f in FIGURES.items() if f.axis is not None}
# the figures that read an aggregate with a point dimension (the others take a beta1/beta2 axis)
CURVE_FIGURES = tuple(name for name, f in FIGURES.items() if f.curves)


def directory(scope: str, name: str | None = None) -> str:
    """The directory (relative to the results directory) a figure of ``scope`` reads from."""
    if scope == "experiment":
        return str(name)
    if scope == "comparison":
        return f"comparisons/{name}"
    return scope


def page(figure: str, name: str | None = None) -> tuple[str, str]:
    """(group, folder) of a figure's rendered page: <results>/<group>/<folder>/<figure>.html.

    ``name`` is the experiment or comparison (None for theory and toy figures)."""
    scope = FIGURES[figure].scope
    if scope == "experiment":
        return str(name), REPORT_FOLDER
    if scope == "comparison":
        return "comparisons", str(name)
    return scope, REPORT_FOLDER


def page_path(results: str, figure: str, name: str | None = None) -> str:
    """The HTML a figure renders to (the notebook papermill executed lies beside it)."""
    group, folder = page(figure, name)
    return f"{results}/{group}/{folder}/{figure}.html"


def locate(group: str, folder: str, figure: str) -> str | None:
    """Inverse of ``page``: the experiment or comparison a page belongs to (None for theory and
    toy figures); ValueError if the figure renders elsewhere."""
    scope = FIGURES[figure].scope
    if scope == "comparison" and group == "comparisons":
        return folder
    if scope in ("theory", "toy") and (group, folder) == (scope, REPORT_FOLDER):
        return None
    if scope == "experiment" and folder == REPORT_FOLDER and group not in ("comparisons", *SCOPES):
        return group
    raise ValueError(
        f"figure {figure!r} (scope {scope}) does not render to {group}/{folder}/; see "
        "adamnoise.figures.page"
    )


def input_files(name: str, experiment_dir: str) -> dict[str, str]:
    """papermill parameter -> path of one figure's inputs in its scope's directory."""
    return {param: f"{experiment_dir}/{file}" for param, file in FIGURES[name].inputs.items()}


def comparison_input_files(name: str, experiment_dirs: list[str]) -> dict[str, list[str]]:
    """papermill parameter -> paths (one per experiment, in order) of a comparison figure."""
    return {
        param: [f"{directory}/{file}" for directory in experiment_dirs]
        for param, file in FIGURES[name].experiment_inputs.items()
    }


def report_inputs(
    results: str, figure: str, name: str | None = None, experiments: tuple[str, ...] = ()
) -> dict[str, str | list[str]]:
    """Every input of one rendered figure: papermill parameter -> path (or list of paths).

    ``name`` is the experiment or comparison; ``experiments`` a comparison's experiments."""
    spec = FIGURES[figure]
    files: dict[str, str | list[str]] = dict(
        input_files(figure, f"{results}/{directory(spec.scope, name)}")
    )
    files.update(comparison_input_files(figure, [f"{results}/{e}" for e in experiments]))
    return files


def papermill_arguments(figure: str, inputs: dict[str, Any]) -> list[str]:
    """The papermill command line words passing a figure its inputs and fixed parameters: ``-p
    NAME VALUE`` for a path or a value, ``-y 'NAME: [...]'`` for a list of paths."""
    words: list[str] = []
    for name, value in inputs.items():
        if isinstance(value, str):
            words += ["-p", name, value]
        else:
            words += ["-y", f"{name}: [{', '.join(repr(str(v)) for v in value)}]"]
    for name, value in FIGURES[figure].parameters.items():
        words += ["-p", name, str(value)]
    return words


def config_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The config schema with the figure names a config may list injected from the registry:
    an experiment's ``figures`` items and a comparison's ``figure``."""
    schema = copy.deepcopy(schema)
    experiment = schema["$defs"]["experiment"]["properties"]["figures"]["items"]
    experiment["enum"] = list(names("experiment"))
    comparison = schema["properties"]["comparisons"]["additionalProperties"]["properties"]
    comparison["figure"]["enum"] = list(names("comparison"))
    return schema


@contextmanager
def config_schema_file(source: str | os.PathLike) -> Iterator[str]:
    """The schema file ``source`` with the figure enums injected (``config_schema``), written to
    a temporary file for Snakemake's ``validate`` (which takes a path) and removed after."""
    import yaml

    schema = config_schema(yaml.safe_load(Path(source).read_text()))
    with tempfile.TemporaryDirectory(prefix="adamnoise-schema-") as directory:
        path = Path(directory) / Path(source).name
        path.write_text(yaml.safe_dump(schema, sort_keys=False))
        yield str(path)


def register(subparsers) -> None:
    """``adamnoise figures``: the registry as a table (what a config may list, and where)."""
    command = add_command(subparsers, "figures", _list_figures)
    command.add_argument("--scope", choices=SCOPES, default=None, help="only this scope")


def _list_figures(args) -> int:
    """the registered report figures: name, scope, notebook, inputs, what it shows"""
    for scope in SCOPES if args.scope is None else (args.scope,):
        for name in names(scope):
            figure = FIGURES[name]
            files = [
                *figure.inputs.values(),
                *(f"each {f}" for f in figure.experiment_inputs.values()),
            ]
            print(f"{name}  [{scope}]  notebooks/{figure.notebook}  reads: {', '.join(files)}")
            print(f"    {figure.description}")
    return 0
