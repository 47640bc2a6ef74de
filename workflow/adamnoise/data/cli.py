"""``adamnoise data``: list, download and prepare corpora.

    adamnoise data list
    adamnoise data download NAME --out FILE [--mirror URL ...]
    adamnoise data prepare NAME --out DIR [--archive FILE]

Each command returns an exit code; a failure prints one message on stderr and returns 1.
"""

from __future__ import annotations

import argparse
import logging

from adamnoise.cli import add_command, add_command_family, fail


def register(subparsers) -> None:
    """Add the ``data`` command family to the main parser's subparsers."""
    commands = add_command_family(
        subparsers, "data", help="list, download and prepare corpora", metavar="SUBCOMMAND"
    )

    add_command(commands, "list", run_list)

    download = add_command(commands, "download", run_download)
    download.add_argument("name", metavar="NAME", help="dataset name (see `adamnoise data list`)")
    download.add_argument("--out", required=True, metavar="FILE", help="where the file goes")
    download.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="URL to fetch from instead of the built-in mirrors (repeatable, tried in order)",
    )
    download.add_argument("--retries", type=int, default=3, help="attempts per mirror")
    download.add_argument("--timeout", type=float, default=60.0, help="socket time-out, seconds")

    prepare = add_command(commands, "prepare", run_prepare)
    prepare.add_argument("name", metavar="NAME", help="corpus name (see `adamnoise data list`)")
    prepare.add_argument("--out", required=True, metavar="DIR", help="prepared corpus directory")
    prepare.add_argument(
        "--archive", metavar="FILE", help="downloaded archive (corpora that need one)"
    )


def _setup_logging() -> None:
    # one line per mirror / step on stderr; the progress bar, if any, is tqdm's own
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def run_list(args: argparse.Namespace) -> int:
    """list downloadable files and known corpora"""
    from adamnoise.data.corpus import CORPORA
    from adamnoise.data.download import REMOTE_FILES

    print("downloadable files (adamnoise data download NAME --out FILE):")
    for name, remote in REMOTE_FILES.items():
        print(f"  {name:<12} {remote.filename} ({remote.size:,} bytes) - {remote.description}")
        print(f"  {'':<12} sha256 {remote.sha256}")
    print("corpora (adamnoise data prepare NAME --out DIR):")
    for name, (_, _, description) in CORPORA.items():
        print(f"  {name:<12} {description}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """download a dataset archive, verified by sha256"""
    from adamnoise.data.download import DownloadError, download_remote

    _setup_logging()
    try:
        path = download_remote(
            args.name, args.out, mirrors=args.mirror, retries=args.retries, timeout=args.timeout
        )
    except (DownloadError, OSError, ValueError) as err:
        return fail(f"error: {err}")
    print(path)
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """prepare a corpus into a directory"""
    from adamnoise.data.corpus import CorpusError, format_stats, prepare_corpus

    _setup_logging()
    try:
        stats = prepare_corpus(args.name, args.out, archive=args.archive)
    except (CorpusError, OSError, ValueError) as err:
        return fail(f"error: {err}")
    print(format_stats(stats))
    return 0
