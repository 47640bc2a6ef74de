"""The ``adamnoise`` command line: one subcommand family per concern, registered lazily.

Each concern module exposes ``register(subparsers)``, which adds its commands with ``add_command``:
a command is a function of the parsed arguments whose docstring is its help. Heavy imports
(torch, xarray) happen inside those functions so that ``adamnoise --help`` and the theory commands
start fast.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Callable

# module path of each concern that contributes subcommands
CONCERNS = (
    "adamnoise.data.cli",
    "adamnoise.training.cli",
    "adamnoise.aggregate_cli",
    "adamnoise.analysis_cli",
    "adamnoise.theory.cli",
    "adamnoise.toy.cli",
    "adamnoise.figures",
    "adamnoise.report_index",
    "adamnoise.verify",
    "adamnoise.check_stopping",
    "adamnoise.power",
    "adamnoise.plan",
)


def fail(message: str, status: int = 1) -> int:
    """Print ``message`` on stderr and return ``status``: how a command stops with an error."""
    print(message, file=sys.stderr)
    return status


class ParagraphHelpFormatter(argparse.HelpFormatter):
    """Fills each paragraph of a description on its own (argparse would run them together)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n\n".join(fill(paragraph, width, indent) for paragraph in text.split("\n\n"))


def add_command(
    subparsers: argparse._SubParsersAction, name: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """Command ``name``, run by ``func(args)``. The first paragraph of ``func``'s docstring is the
    command's line in the list of commands; the whole docstring is its ``--help`` description."""
    doc = inspect.cleandoc(func.__doc__ or "")
    if not doc and sys.flags.optimize < 2:  # python -OO strips every docstring: no help then
        raise TypeError(f"command {name!r}: {func.__qualname__} has no docstring to show as help")
    summary = " ".join(doc.split("\n\n")[0].split())
    # argparse %-formats help strings (not descriptions): a literal % must be doubled there
    parser = subparsers.add_parser(
        name,
        help=summary.replace("%", "%%") or None,
        description=doc or None,
        formatter_class=ParagraphHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser


def add_command_family(
    subparsers: argparse._SubParsersAction,
    name: str,
    help: str,
    description: str | None = None,
    metavar: str = "WHAT",
) -> argparse._SubParsersAction:
    """Command ``name`` with subcommands of its own (``adamnoise theory lemmas``): add them to the
    returned action; the one given is ``args.<name>_command``."""
    family = subparsers.add_parser(name, help=help, description=description)
    return family.add_subparsers(dest=f"{name}_command", required=True, metavar=metavar)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adamnoise",
        description="Measure how Adam's (beta1, beta2) interact with batch size, against theory.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in CONCERNS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
