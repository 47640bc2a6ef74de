"""Atomic file output: no reader sees a half-written file, and a failure leaves nothing behind."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place atomically.

    The temporary file lives in the same directory so that ``os.replace`` is a rename on one file
    system. If the body raises, the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    # mkstemp creates the file 0600; give it the mode an ordinary open() would (0666 & ~umask)
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_umask() -> int:
    # os.umask can only be read by setting it: do it once, at import, not in every write (the
    # rules' run: blocks write from threads of one process)
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_netcdf(dataset, path: str | os.PathLike) -> None:
    """Write an xarray Dataset to netCDF-4 atomically."""
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="netcdf4")


def move_aside(path: str | os.PathLike) -> Path:
    """Rename an unreadable file to the first free ``<path>.corrupt-<n>`` (n = 1, 2, ...), so that
    the rule that makes it runs again and the bad copy stays for inspection; returns the new
    path."""
    path = Path(path)
    for n in itertools.count(1):
        aside = path.with_name(f"{path.name}.corrupt-{n}")
        if not aside.exists():
            path.rename(aside)
            return aside
    raise AssertionError("unreachable")


def load_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file; a syntax error is a ``ValueError`` naming the file, line and column."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ValueError(f"{where}: invalid YAML: {error.problem or error.context}") from None
