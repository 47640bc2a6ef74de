"""``adamnoise report-index``: one HTML page listing every rendered figure with its provenance.

For each figure HTML the executed notebook beside it (``<figure>.ipynb``, written by papermill)
says which files it read (``metadata.papermill.parameters``); every experiment directory among
them holds an ``aggregate.nc`` whose attributes give the run counts (completed, diverged,
missing), the commits the runs were trained with, and the experiment's config, hashed here
(sha256 of its canonical JSON, first 12 hex digits) so two reports can be matched at a glance.
What each figure shows, and the scope of a figure without runs (theory, toy), come from the
figure registry (``adamnoise.figures``).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from adamnoise.cli import add_command, fail


@dataclass
class ExperimentSummary:
    name: str
    runs: int
    completed: int
    diverged: int
    missing: int
    config_hash: str
    run_commits: list[str]
    report_commit: str
    dirty: bool  # the aggregate was written from a checkout with uncommitted changes


@dataclass
class FigureEntry:
    figure: str
    html_path: Path
    experiments: list[ExperimentSummary] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    # for a figure without runs (theory, toy): the commits its input files were written by
    input_commits: list[str] = field(default_factory=list)

    @property
    def registered(self):
        """The figure's registry entry (None for a page the registry does not know)."""
        from adamnoise.figures import FIGURES

        return FIGURES.get(self.figure)


def config_hash(config_json: str) -> str:
    """sha256 of the config's canonical JSON (sorted keys), first 12 hex digits."""
    canonical = json.dumps(json.loads(config_json), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def summarise_experiment(aggregate_path: Path) -> ExperimentSummary:
    import xarray as xr

    from adamnoise.status import COMPLETED, DIVERGED, STATUS_CODES

    with xr.open_dataset(aggregate_path) as aggregate:
        status = aggregate["status"].values
        attrs = dict(aggregate.attrs)
    completed = int((status == STATUS_CODES[COMPLETED]).sum())
    diverged = int((status == STATUS_CODES[DIVERGED]).sum())
    runs = int(attrs.get("n_runs", status.size))
    return ExperimentSummary(
        name=str(attrs.get("experiment", aggregate_path.parent.name)),
        runs=runs,
        completed=completed,
        diverged=diverged,
        missing=int(attrs.get("n_missing", max(runs - completed - diverged, 0))),
        config_hash=config_hash(attrs.get("experiment_config", "{}")),
        run_commits=list(json.loads(attrs.get("run_git_commits", "[]"))),
        report_commit=str(attrs.get("provenance_git_commit", "unknown")),
        dirty=str(attrs.get("provenance_git_dirty", "false")).lower() == "true",
    )


def figure_entry(html_path: Path) -> FigureEntry:
    """The figure's inputs from its executed notebook, and the experiments they belong to."""
    notebook = html_path.with_suffix(".ipynb")
    entry = FigureEntry(figure=html_path.stem, html_path=html_path)
    if not notebook.exists():
        return entry
    parameters = json.loads(notebook.read_text()).get("metadata", {}).get("papermill", {})
    parameters = parameters.get("parameters", {})
    paths: list[str] = []
    for value in parameters.values():
        if isinstance(value, str) and value.endswith(".nc"):
            paths.append(value)
        elif isinstance(value, list):
            paths += [v for v in value if isinstance(v, str) and v.endswith(".nc")]
    entry.inputs = paths
    seen = []
    for path in paths:
        directory = Path(path).parent
        aggregate = directory / "aggregate.nc"
        if aggregate.exists() and directory not in seen:
            seen.append(directory)
            entry.experiments.append(summarise_experiment(aggregate))
    if not entry.experiments:
        entry.input_commits = sorted({_written_by(Path(path)) for path in paths})
    return entry


def _written_by(path: Path) -> str:
    """The commit in a netCDF file's provenance (``unknown`` if it has none or is missing)."""
    import xarray as xr

    if not path.exists():
        return "unknown"
    with xr.open_dataset(path) as dataset:
        commit = str(dataset.attrs.get("provenance_git_commit", "unknown"))
        dirty = str(dataset.attrs.get("provenance_git_dirty", "false")).lower() == "true"
    return commit[:10] + (" (uncommitted changes)" if dirty else "")


def render(entries: list[FigureEntry], out: Path) -> str:
    """The index page: one row per figure, linked relative to ``out``."""
    from adamnoise import provenance

    record = provenance.collect(command="adamnoise report-index")
    rows = []
    for entry in sorted(entries, key=lambda e: (str(e.html_path.parent), e.figure)):
        link = os.path.relpath(entry.html_path, out.parent)
        if entry.experiments:
            experiments = "<br>".join(html.escape(e.name) for e in entry.experiments)
            counts = "<br>".join(
                f"{e.completed}/{e.runs} completed, {e.diverged} diverged, {e.missing} missing"
                for e in entry.experiments
            )
            hashes = "<br>".join(f"<code>{e.config_hash}</code>" for e in entry.experiments)
            commits = "<br>".join(
                html.escape(", ".join(c[:10] for c in e.run_commits) or "-")
                + (" <em>(uncommitted changes)</em>" if e.dirty else "")
                for e in entry.experiments
            )
        else:
            spec = entry.registered
            scope = spec.scope if spec is not None else entry.html_path.parent.parent.name
            experiments = html.escape(scope)
            counts = hashes = "-"
            commits = html.escape(", ".join(entry.input_commits) or "-")
        shows = entry.registered.description if entry.registered is not None else ""
        flag = any(e.missing or e.diverged for e in entry.experiments)
        rows.append(
            f'<tr{" class=flag" if flag else ""}><td><a href="{html.escape(link)}">'
            f"{html.escape(entry.figure)}</a></td><td>{experiments}</td><td>{counts}</td>"
            f"<td>{hashes}</td><td>{commits}</td><td>{html.escape(shows)}</td></tr>"
        )
    commit = html.escape(str(record.get("git_commit", "unknown")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>adamnoise report index</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }}
tr.flag td {{ background: #fff4e0; }}
</style></head><body>
<h1>adamnoise: rendered figures</h1>
<p>{len(entries)} figures. Rows shaded: an experiment with missing or diverged runs.
Config hash: sha256 of the experiment's config (canonical JSON), first 12 hex digits.
Index written by commit <code>{commit}</code>.</p>
<table><thead><tr><th>figure</th><th>experiment</th><th>runs</th><th>config hash</th>
<th>commits of the runs (or of the figure's inputs)</th><th>shows</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    index = add_command(subparsers, "report-index", _report_index)
    index.add_argument("figures", nargs="+", type=Path, help="rendered figure HTML files")
    index.add_argument("--out", type=Path, required=True, help="HTML file to write")


def _report_index(args: argparse.Namespace) -> int:
    """an HTML page listing rendered figures with run counts and provenance

    Reads each figure's executed notebook (same name, .ipynb) for its inputs.
    """
    from adamnoise.io import write_text

    missing = [str(p) for p in args.figures if not p.exists()]
    if missing:
        return fail(f"adamnoise report-index: no such file: {', '.join(missing)}", 2)
    entries = [figure_entry(path) for path in args.figures]
    write_text(args.out, render(entries, args.out))
    print(f"wrote {args.out}: {len(entries)} figures", file=sys.stderr)
    return 0
