"""Every ``adamnoise`` command and subcommand renders its --help (a help text that argparse cannot
format — a stray ``%`` — breaks only when someone asks for help)."""

from __future__ import annotations

import argparse

import pytest

from adamnoise.cli import add_command, build_parser


def all_parsers(parser: argparse.ArgumentParser, path: str = "adamnoise"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from all_parsers(child, f"{path} {name}")


def test_every_command_renders_its_help():
    parsers = dict(all_parsers(build_parser()))
    assert {"adamnoise train", "adamnoise plan", "adamnoise check-stopping"} <= set(parsers)
    for path, parser in parsers.items():
        text = parser.format_help()
        assert text.startswith(f"usage: {path}"), path


def test_a_command_is_its_function_and_the_docstring_is_its_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width

    def run_example(args: argparse.Namespace) -> int:
        """count the runs of 100 % of a sweep

        First paragraph of the details, long enough that argparse has to wrap it onto a second
        line of the terminal.

        Second paragraph: kept apart from the first.
        """
        return 0

    parser = argparse.ArgumentParser(prog="adamnoise")
    subparsers = parser.add_subparsers(dest="command", required=True)
    command = add_command(subparsers, "example", run_example)
    assert parser.parse_args(["example"]).func is run_example
    assert "example   count the runs of 100 % of a sweep" in parser.format_help()
    description = command.format_help().split("\n\n")
    assert description[1] == "count the runs of 100 % of a sweep"
    assert description[2].startswith("First paragraph") and description[2].count("\n") >= 1
    assert description[3] == "Second paragraph: kept apart from the first."


def test_a_command_without_docstring_is_refused_when_registered():
    def undocumented(args):
        return 0

    subparsers = argparse.ArgumentParser().add_subparsers()
    with pytest.raises(TypeError, match="'bare'.*no docstring"):
        add_command(subparsers, "bare", undocumented)
