"""Downloads that are verified before they are used: mirrors, retries, sha256, atomic placement.

A dataset archive is described once in :data:`REMOTE_FILES` (file name, size, sha256, mirrors in
the order they are tried). :func:`download` streams a URL into a temporary file next to the
destination, checks size and sha256, and only then renames it into place, so the destination is
either absent or a verified copy. A file that is already there with the right hash is not fetched
again.

Failures raise :class:`DownloadError`, whose message lists every mirror tried and why it failed,
names both hashes on a checksum mismatch, and says how to place the file by hand (the pipeline then
finds it and skips the download).

Retries: transient failures (connection refused or reset, time-outs, truncated bodies, HTTP
5xx/429) are retried on the same mirror with exponential back-off ``backoff * 2**(attempt - 1)``
seconds; permanent ones (other HTTP 4xx such as 403/404, a checksum or size mismatch) move on to
the next mirror at once, since asking the same server again would give the same answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from adamnoise.io import atomic_path

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
USER_AGENT = "adamnoise-data/0.1 (python urllib)"


@dataclass(frozen=True)
class RemoteFile:
    """A file published on the web, identified by its content (sha256 and size), not by its URL."""

    name: str
    filename: str
    sha256: str
    size: int
    urls: tuple[str, ...]
    description: str


# The wikitext-2-v1.zip of Merity et al. (2016), as served by both locations below (size and sha256
# of that archive). The smerity.com mirror comes first because the original S3 location is
# reported to answer 403 now.
REMOTE_FILES: dict[str, RemoteFile] = {
    "wikitext2": RemoteFile(
        name="wikitext2",
        filename="wikitext-2-v1.zip",
        sha256="92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
        size=4_475_746,
        urls=(
            "https://wikitext.smerity.com/wikitext-2-v1.zip",
            "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
        ),
        description="WikiText-2 (Merity et al. 2016), tokenised word-level version, zip archive",
    ),
}


class DownloadError(RuntimeError):
    """A download that could not be completed; the message says what was tried and what to do."""


class _PermanentFailure(Exception):
    """This mirror will not give the right file: do not retry it, try the next one."""


class _TransientFailure(Exception):
    """This attempt failed in a way that a retry may fix."""


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_valid_copy(path: str | os.PathLike, sha256: str, size: int | None = None) -> bool:
    """Whether ``path`` is a regular file with the expected size (if given) and sha256."""
    path = Path(path)
    if not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    return sha256_of(path) == sha256.lower()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _fetch_once(
    url: str, tmp: Path, label: str, sha256: str, size: int | None, timeout: float
) -> None:
    """One attempt: stream ``url`` into ``tmp`` and verify it, or raise a _*Failure."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code} {err.reason}"
        # 429 (too many requests) and 5xx are the server's momentary trouble; other 4xx are final
        if err.code == 429 or err.code >= 500:
            raise _TransientFailure(reason) from err
        raise _PermanentFailure(reason) from err
    except urllib.error.URLError as err:
        raise _TransientFailure(f"cannot connect: {err.reason}") from err
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise _TransientFailure(f"cannot connect: {err!r}") from err

    with contextlib.closing(response):
        length_header = response.headers.get("Content-Length")
        expected_length = int(length_header) if length_header is not None else None
        digest = hashlib.sha256()
        received = 0
        progress = tqdm(
            total=expected_length,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not _stderr_is_terminal(),
            leave=False,
        )
        try:
            with progress, open(tmp, "wb") as out:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
        except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise _TransientFailure(
                f"transfer interrupted after {received} bytes: {err!r}"
            ) from err

    # http.client returns a short body without complaint when the peer closes early, so the
    # announced length is checked here.
    if expected_length is not None and received < expected_length:
        raise _TransientFailure(f"transfer interrupted: got {received} of {expected_length} bytes")
    got_sha256 = digest.hexdigest()
    if got_sha256 != sha256.lower() or (size is not None and received != size):
        expected_size = f" ({size} bytes)" if size is not None else ""
        raise _PermanentFailure(
            f"checksum mismatch: expected sha256 {sha256.lower()}{expected_size}, "
            f"got {got_sha256} ({received} bytes)"
        )


def download(
    url_list: Sequence[str],
    dest: str | os.PathLike,
    sha256: str,
    size: int | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Fetch the file with the given sha256 to ``dest`` from the first mirror that serves it.

    Args:
        url_list: mirrors, tried in order (http, https, or file URLs).
        dest: where the verified file ends up.
        sha256: expected hex digest of the content.
        size: expected size in bytes, checked when given.
        retries: attempts per mirror for transient failures (>= 1).
        backoff: seconds before the first retry; doubled after each further failure.
        timeout: socket time-out in seconds for connecting and for each read.

    Returns:
        ``dest`` as a Path. A file already at ``dest`` with the right hash is returned untouched;
        one with a wrong hash is removed and fetched again.

    Raises:
        DownloadError: no mirror gave the right file. ``dest`` does not exist afterwards, and no
            temporary file is left behind.
    """
    if retries < 1:
        raise ValueError(f"retries must be at least 1, got {retries}")
    dest = Path(dest)
    sha256 = sha256.lower()
    if dest.exists():
        if is_valid_copy(dest, sha256, size):
            log.info("%s already present with the expected sha256; not downloading", dest)
            return dest
        log.warning(
            "%s exists but its sha256 is %s, not %s; fetching it again",
            dest,
            sha256_of(dest),
            sha256,
        )
        dest.unlink()
    if not url_list:
        raise DownloadError(
            f"no URL to download {dest} from.\n" + _manual_help(dest, sha256, size, [])
        )

    failures: list[str] = []
    for url in url_list:
        for attempt in range(1, retries + 1):
            log.info("downloading %s -> %s (attempt %d/%d)", url, dest, attempt, retries)
            try:
                with atomic_path(dest) as tmp:
                    _fetch_once(url, tmp, dest.name, sha256, size, timeout)
            except _PermanentFailure as err:
                failures.append(f"{url}: {err} (attempt {attempt}/{retries}; not retried)")
                log.warning("%s: %s", url, err)
                break
            except _TransientFailure as err:
                failures.append(f"{url}: {err} (attempt {attempt}/{retries})")
                log.warning("%s: %s", url, err)
                if attempt < retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                continue
            log.info("%s: verified sha256 %s", dest, sha256)
            return dest
    raise DownloadError(
        f"could not download to {dest}; every mirror failed:\n"
        + "".join(f"  - {line}\n" for line in failures)
        + _manual_help(dest, sha256, size, url_list)
    )


def _manual_help(dest: Path, sha256: str, size: int | None, url_list: Sequence[str]) -> str:
    where = f" (e.g. from {url_list[0]})" if url_list else ""
    size_text = f", {size} bytes" if size is not None else ""
    return (
        f"To place the file by hand: obtain it{where}, save it as {dest}, and check that "
        f"`sha256sum {dest}` prints {sha256}{size_text}. A file with that hash is used as it is."
    )


def download_remote(
    name: str, dest: str | os.PathLike, mirrors: Sequence[str] | None = None, **kwargs
) -> Path:
    """Download a file of :data:`REMOTE_FILES` by name; ``mirrors`` replaces its URL list."""
    try:
        remote = REMOTE_FILES[name]
    except KeyError:
        known = ", ".join(sorted(REMOTE_FILES))
        raise DownloadError(f"unknown dataset {name!r}; downloadable datasets: {known}") from None
    urls = tuple(mirrors) if mirrors else remote.urls
    try:
        return download(urls, dest, remote.sha256, size=remote.size, **kwargs)
    except DownloadError as err:
        raise DownloadError(f"{name} ({remote.filename}): {err}") from None
