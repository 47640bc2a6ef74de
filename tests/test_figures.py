"""The figure registry is the one owner of figure facts: the notebooks it names, the config
schema's enums, the report rule's inputs, outputs and papermill parameters, the named targets and
the report index all follow it; adding a figure is a notebook and one entry."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import nbformat
import pytest
import yaml

from adamnoise import figures
from adamnoise.figures import FIGURES, Figure

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SMALLEST = REPO / "tests" / "config" / "smallest.yaml"


def tagged_parameters(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, path
    return tagged[0].source


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_has_its_notebook_with_the_parameters_it_receives(name):
    figure = FIGURES[name]
    path = REPO / "notebooks" / figure.notebook
    assert path.exists(), path
    source = tagged_parameters(path)
    for parameter in [*figure.inputs, *figure.experiment_inputs, *figure.parameters]:
        assert re.search(rf"^{parameter} =", source, re.M), (name, parameter)


def test_every_notebook_is_registered():
    registered = {figure.notebook for figure in FIGURES.values()}
    assert {path.name for path in (REPO / "notebooks").glob("*.ipynb")} == registered


@pytest.mark.parametrize("name", list(FIGURES))
def test_notebooks_only_load_and_plot(name):
    """No analysis function is called in a notebook: what it shows was written by a rule."""
    notebook = nbformat.read(REPO / "notebooks" / FIGURES[name].notebook, as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    imports = re.findall(r"^\s*(?:from\s+(\S+)\s+import\s+(.+)|import\s+(\S+))", code, re.M)
    for module, names, plain in imports:
        if (module or plain).startswith("adamnoise"):
            # the package's plotting modules only (status codes are names, not computation)
            assert module in ("adamnoise", "adamnoise.toy", "adamnoise.status"), (name, module)
            if module != "adamnoise.status":
                assert names.strip() == "plots", (name, names)


def test_the_schema_enums_are_injected_from_the_registry():
    raw = yaml.safe_load(SCHEMA.read_text())
    schema = figures.config_schema(raw)
    experiment = schema["$defs"]["experiment"]["properties"]["figures"]["items"]["enum"]
    assert experiment == list(figures.EXPERIMENT_FIGURES)
    comparison = schema["properties"]["comparisons"]["additionalProperties"]["properties"]
    assert comparison["figure"]["enum"] == list(figures.COMPARISON_FIGURES)
    # the file itself names no figure: the registry is the only list
    for name in FIGURES:
        assert name not in SCHEMA.read_text(), name
    assert raw == yaml.safe_load(SCHEMA.read_text())  # not modified in place
    with figures.config_schema_file(SCHEMA) as path:
        assert yaml.safe_load(Path(path).read_text()) == schema
    assert not Path(path).exists()


def test_the_schema_rejects_a_figure_of_another_scope_or_none():
    schema = figures.config_schema(yaml.safe_load(SCHEMA.read_text()))
    config = yaml.safe_load(SMALLEST.read_text())
    jsonschema.validate(config, schema)
    for wrong in ("optimizer_gap", "theory_figures", "quadratic_gap", "nope"):
        bad = json.loads(json.dumps(config))
        bad["experiments"]["smallest"]["figures"] = [wrong]
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    bad = json.loads(json.dumps(config))
    bad["comparisons"]["smallest-gap"]["figure"] = "beta2_sweep"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_derived_facts_follow_the_entries():
    assert {n: f.axis for n, f in FIGURES.items() if f.axis is not None} == figures.SWEEP_AXIS
    assert tuple(n for n, f in FIGURES.items() if f.curves) == figures.CURVE_FIGURES
    assert set(figures.EXPERIMENT_FIGURES) | set(figures.COMPARISON_FIGURES) | set(
        figures.names("theory")
    ) | set(figures.names("toy")) == set(FIGURES)
    for name, figure in FIGURES.items():
        assert figure.name == name
        if figure.needs_sweep:
            assert figure.axis is not None


@pytest.mark.parametrize("name", list(FIGURES))
def test_pages_and_their_inverse(name):
    scope = FIGURES[name].scope
    owner = {"experiment": "exp", "comparison": "cmp"}.get(scope)
    path = figures.page_path("results", name, owner)
    expected = {
        "experiment": f"results/exp/report/{name}.html",
        "comparison": f"results/comparisons/cmp/{name}.html",
        "theory": f"results/theory/report/{name}.html",
        "toy": f"results/toy/report/{name}.html",
    }[scope]
    assert path == expected
    group, folder = figures.page(name, owner)
    assert figures.locate(group, folder, name) == owner
    wrong = ("theory", "report") if scope != "theory" else ("exp", "report")
    with pytest.raises(ValueError, match="does not render to"):
        figures.locate(*wrong, name)


def test_input_paths_and_papermill_arguments():
    assert figures.input_files("beta2_sweep", "results/x") == {
        "aggregate_path": "results/x/aggregate.nc",
        "flips_path": "results/x/theory_flips.nc",
        "optima_path": "results/x/optima_beta2.nc",
        "table_path": "results/x/optima_beta2.csv",
    }
    assert figures.report_inputs("r", "stability", "s") == {
        "aggregate_path": "r/s/aggregate.nc",
        "growth_path": "r/s/growth.nc",
    }
    gap = figures.report_inputs("r", "optimizer_gap", "g", ("a", "b"))
    assert gap == {
        "gap_path": "r/comparisons/g/optimizer_gap.nc",
        "aggregate_paths": ["r/a/aggregate.nc", "r/b/aggregate.nc"],
    }
    assert figures.papermill_arguments("optimizer_gap", gap) == [
        "-p",
        "gap_path",
        "r/comparisons/g/optimizer_gap.nc",
        "-y",
        "aggregate_paths: ['r/a/aggregate.nc', 'r/b/aggregate.nc']",
    ]
    assert figures.papermill_arguments("beta1_sweep", {"aggregate_path": "a.nc"}) == [
        "-p",
        "aggregate_path",
        "a.nc",
        "-p",
        "axis",
        "beta1",
    ]
    assert figures.report_inputs("r", "theory_figures") == {
        "theory_grid": "r/theory/theory_grid.nc"
    }


def test_adamnoise_figures_lists_the_registry(capsys):
    from adamnoise.cli import main

    assert main(["figures"]) == 0
    out = capsys.readouterr().out
    for name, figure in FIGURES.items():
        assert f"{name}  [{figure.scope}]  notebooks/{figure.notebook}" in out
    assert main(["figures", "--scope", "toy"]) == 0
    assert capsys.readouterr().out.count("[toy]") == len(figures.names("toy"))


def test_a_bad_entry_is_refused():
    with pytest.raises(ValueError, match="scope"):
        Figure("x", "x.ipynb", "x", scope="paper")
    with pytest.raises(ValueError, match="comparisons only"):
        Figure("x", "x.ipynb", "x", experiment_inputs={"a": "aggregate.nc"})
    with pytest.raises(ValueError, match="needs_sweep"):
        Figure("x", "x.ipynb", "x", needs_sweep=True)


# Adding a figure: one notebook + one registry entry

NEW = Figure(
    name="final_ppl",
    notebook="final_ppl.ipynb",
    description="final validation perplexity per run",
    inputs={"aggregate_path": "aggregate.nc"},
)
NEW_ENTRY = """        Figure(
            name="final_ppl",
            notebook="final_ppl.ipynb",
            description="final validation perplexity per run",
            inputs={"aggregate_path": "aggregate.nc"},
        ),
"""


def write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('aggregate_path = ""')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Final validation perplexity"),
        parameters,
        nbformat.v4.new_code_cell(
            "import xarray as xr\n\nxr.load_dataset(aggregate_path)['min_val_ppl'].plot()"
        ),
    ]
    nbformat.write(notebook, path)


def test_a_registered_figure_is_accepted_and_derived_everywhere(monkeypatch):
    """The registry entry alone makes the schema accept the figure and gives its page, inputs
    and papermill arguments (the workflow drill below runs Snakemake on it)."""
    monkeypatch.setitem(FIGURES, NEW.name, NEW)
    schema = figures.config_schema(yaml.safe_load(SCHEMA.read_text()))
    config = yaml.safe_load(SMALLEST.read_text())
    config["experiments"]["smallest"]["figures"].append(NEW.name)
    jsonschema.validate(config, schema)
    assert NEW.name in figures.names("experiment")
    assert figures.page_path("results", NEW.name, "smallest") == (
        "results/smallest/report/final_ppl.html"
    )
    inputs = figures.report_inputs("results", NEW.name, "smallest")
    assert figures.papermill_arguments(NEW.name, inputs) == [
        "-p",
        "aggregate_path",
        "results/smallest/aggregate.nc",
    ]
    monkeypatch.delitem(FIGURES, NEW.name)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, figures.config_schema(yaml.safe_load(SCHEMA.read_text())))


@pytest.mark.slow
def test_drill_adding_a_figure_is_a_notebook_and_one_entry(tmp_path, monkeypatch):
    """In a copy of the workflow: write a notebook, add one entry to FIGURES, list the figure in
    a config; Snakemake then plans its page (report rule, named target, index, rule all)."""
    from test_workflow import copy_workflow, planned_jobs, snakemake

    workdir = copy_workflow(tmp_path / "copy")
    write_notebook(workdir / "notebooks" / NEW.notebook)
    registry = workdir / "workflow" / "adamnoise" / "figures.py"
    source = registry.read_text()
    anchor = "FIGURES: dict[str, Figure] = {\n    figure.name: figure\n    for figure in (\n"
    assert source.count(anchor) == 1
    registry.write_text(source.replace(anchor, anchor + NEW_ENTRY))
    config = yaml.safe_load(SMALLEST.read_text())
    config["experiments"]["smallest"]["figures"].append(NEW.name)
    (workdir / "config" / "drill.yaml").write_text(yaml.safe_dump(config))
    args = ("--configfile", "config/config.yaml", "config/drill.yaml")

    # the copy's package first: the workflow and papermill's kernel import it
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(workdir / "workflow"), path or ""]))
    jobs = planned_jobs(workdir, *args)
    assert jobs["report_figure"] == 7  # 4 of smallest, final_ppl, the comparison, theory
    alone = planned_jobs(workdir, f"figure_{NEW.name}", *args)
    assert alone["report_figure"] == 1 and alone[f"figure_{NEW.name}"] == 1
    dry = snakemake(workdir, "--dry-run", *args).stdout
    index = re.search(r"rule report_index:\n\s+input: ([^\n]*)", dry)
    assert index and "results/smallest/report/final_ppl.html" in index.group(1)
