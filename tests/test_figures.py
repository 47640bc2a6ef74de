"""The figure registry is the one source of the workflow's figures and the config schema's enum."""

from __future__ import annotations

from pathlib import Path

import yaml

from adamnoise import figures

REPO = Path(__file__).resolve().parents[1]


def test_every_registered_figure_has_its_notebook_with_the_parameters_it_receives():
    import nbformat

    for figure in figures.FIGURES.values():
        path = REPO / "notebooks" / figure.notebook
        assert path.exists(), path
        notebook = nbformat.read(path, as_version=4)
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, figure.name
        for parameter in [*figure.inputs, *figure.parameters]:
            assert f"{parameter} =" in tagged[0].source, (figure.name, parameter)


def test_the_schema_enums_are_the_registry():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    experiment = schema["$defs"]["experiment"]["properties"]["figures"]["items"]["enum"]
    assert set(experiment) == set(figures.EXPERIMENT_FIGURES)
    comparison = schema["properties"]["comparisons"]["additionalProperties"]["properties"]
    assert set(comparison["figure"]["enum"]) == set(figures.COMPARISON_FIGURES)


def test_input_paths():
    assert figures.input_files("beta2_sweep", "results/x") == {
        "aggregate_path": "results/x/aggregate.nc",
        "flips_path": "results/x/theory_flips.nc",
        "optima_path": "results/x/optima_beta2.nc",
    }
    assert figures.input_files("stability", "r/s") == {"aggregate_path": "r/s/aggregate.nc"}
    assert figures.comparison_input_files("optimizer_gap", ["r/a", "r/b"]) == {
        "aggregate_paths": ["r/a/aggregate.nc", "r/b/aggregate.nc"]
    }
