"""Every ``adamnoise`` command and subcommand renders its --help (a help text that argparse cannot
format — a stray ``%`` — breaks only when someone asks for help)."""

from __future__ import annotations

import argparse

from adamnoise.cli import build_parser


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
