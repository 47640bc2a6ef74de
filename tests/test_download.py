"""adamnoise.data.download against a real HTTP server on 127.0.0.1 (no mocks of our code)."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import socket
import sys
import threading
from pathlib import Path

import pytest
from data_fixtures import wikitext_like_zip

from adamnoise.data import cli as data_cli
from adamnoise.data.download import REMOTE_FILES, DownloadError, download

FAST = {"backoff": 0.001, "timeout": 5.0}


class FileServer:
    """Serves byte strings at paths, with scripted misbehaviour, and counts requests per path.

    ``routes[path] = (kind, body)`` with kind ``"ok"``, ``"404"``, ``"drop_once"`` (the first
    request gets the full Content-Length but only half the body, then the connection is closed).
    """

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.hits: dict[str, int] = {}
        lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                with lock:
                    server.hits[self.path] = server.hits.get(self.path, 0) + 1
                    hit = server.hits[self.path]
                kind, body = server.routes.get(self.path, ("404", b""))
                if kind == "404":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if kind == "drop_once" and hit == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = FileServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


@pytest.fixture
def refused_url():
    """A URL on a port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/wikitext-2-v1.zip"


@pytest.fixture
def archive():
    body = wikitext_like_zip()
    return body, hashlib.sha256(body).hexdigest()


def test_download_success_places_verified_file(server, archive, tmp_path):
    body, sha = archive
    server.routes["/w.zip"] = ("ok", body)
    dest = tmp_path / "sub" / "wikitext-2-v1.zip"

    result = download([server.url("/w.zip")], dest, sha, size=len(body), **FAST)

    assert result == dest
    assert dest.read_bytes() == body
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no temp files


def test_checksum_mismatch_names_both_hashes_and_leaves_nothing(server, archive, tmp_path):
    body, sha = archive
    other = wikitext_like_zip({"train": "x\n", "valid": "y\n", "test": "z\n"})
    server.routes["/w.zip"] = ("ok", other)
    dest = tmp_path / "w.zip"

    with pytest.raises(DownloadError) as caught:
        download([server.url("/w.zip")], dest, sha, retries=3, **FAST)

    message = str(caught.value)
    assert sha in message
    assert hashlib.sha256(other).hexdigest() in message
    assert server.url("/w.zip") in message
    assert "sha256sum" in message and str(dest) in message  # how to place it by hand
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []
    assert server.hits["/w.zip"] == 1  # the same server would send the same bytes: no retry


def test_size_mismatch_is_refused(server, archive, tmp_path):
    body, sha = archive
    server.routes["/w.zip"] = ("ok", body)
    dest = tmp_path / "w.zip"
    with pytest.raises(DownloadError, match=rf"\({len(body) + 1} bytes\), got {sha} \({len(body)}"):
        download([server.url("/w.zip")], dest, sha, size=len(body) + 1, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_404_mirror_is_skipped_without_retry(server, archive, tmp_path):
    body, sha = archive
    server.routes["/good.zip"] = ("ok", body)
    dest = tmp_path / "w.zip"

    download([server.url("/missing.zip"), server.url("/good.zip")], dest, sha, retries=3, **FAST)

    assert dest.read_bytes() == body
    assert server.hits == {"/missing.zip": 1, "/good.zip": 1}


def test_refused_mirror_is_retried_then_next_mirror_works(server, archive, refused_url, tmp_path):
    body, sha = archive
    server.routes["/good.zip"] = ("ok", body)
    dest = tmp_path / "w.zip"

    download([refused_url, server.url("/good.zip")], dest, sha, retries=2, **FAST)

    assert dest.read_bytes() == body
    assert server.hits == {"/good.zip": 1}


def test_dropped_connection_is_retried(server, archive, tmp_path):
    body, sha = archive
    server.routes["/flaky.zip"] = ("drop_once", body)
    dest = tmp_path / "w.zip"

    download([server.url("/flaky.zip")], dest, sha, size=len(body), retries=3, **FAST)

    assert dest.read_bytes() == body
    assert server.hits["/flaky.zip"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["w.zip"]


def test_dropped_connection_without_retries_fails_cleanly(server, archive, tmp_path):
    body, sha = archive
    server.routes["/flaky.zip"] = ("drop_once", body)
    dest = tmp_path / "w.zip"

    with pytest.raises(DownloadError, match=f"got {len(body) // 2} of {len(body)} bytes"):
        download([server.url("/flaky.zip")], dest, sha, retries=1, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_every_mirror_failing_lists_each_reason(server, archive, refused_url, tmp_path):
    _, sha = archive
    urls = [refused_url, server.url("/missing.zip")]
    with pytest.raises(DownloadError) as caught:
        download(urls, tmp_path / "w.zip", sha, retries=2, **FAST)
    message = str(caught.value)
    assert message.count(refused_url) == 2 + 1  # two attempts, plus the by-hand hint
    assert "attempt 1/2" in message and "attempt 2/2" in message
    assert "HTTP 404" in message
    assert list(tmp_path.iterdir()) == []


def test_existing_valid_file_is_not_downloaded_again(server, archive, tmp_path):
    body, sha = archive
    server.routes["/w.zip"] = ("ok", b"something else entirely")
    dest = tmp_path / "w.zip"
    dest.write_bytes(body)
    mtime = dest.stat().st_mtime_ns

    download([server.url("/w.zip")], dest, sha, size=len(body), **FAST)

    assert server.hits == {}
    assert dest.stat().st_mtime_ns == mtime and dest.read_bytes() == body


def test_existing_corrupt_file_is_replaced(server, archive, tmp_path):
    body, sha = archive
    server.routes["/w.zip"] = ("ok", body)
    dest = tmp_path / "w.zip"
    dest.write_bytes(body[:100])

    download([server.url("/w.zip")], dest, sha, **FAST)

    assert server.hits == {"/w.zip": 1}
    assert dest.read_bytes() == body


def test_progress_bar_path_on_a_terminal(server, archive, tmp_path, monkeypatch):
    body, sha = archive
    server.routes["/w.zip"] = ("ok", body)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    download([server.url("/w.zip")], tmp_path / "w.zip", sha, **FAST)
    assert (tmp_path / "w.zip").read_bytes() == body


# ---- command line -------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="adamnoise")
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_download_mismatch_is_one_clear_error(server, archive, tmp_path, capsys):
    body, _ = archive
    server.routes["/w.zip"] = ("ok", body)  # not the published WikiText-2 archive
    out = tmp_path / "wikitext-2-v1.zip"

    code = run_cli(["data", "download", "wikitext2", "--out", str(out),
                    "--mirror", server.url("/w.zip")])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 1
    assert "error: wikitext2 (wikitext-2-v1.zip)" in err
    assert REMOTE_FILES["wikitext2"].sha256 in err
    assert hashlib.sha256(body).hexdigest() in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_download_existing_published_file_path(tmp_path, capsys, monkeypatch):
    # A file at --out whose hash is the registry's is accepted without network; checking that
    # needs the registry entry to be the one the file has, so use a throwaway registry entry.
    body = b"published bytes"
    entry = REMOTE_FILES["wikitext2"]
    test_entry = type(entry)(
        name="tiny", filename="tiny.bin", sha256=hashlib.sha256(body).hexdigest(),
        size=len(body), urls=("http://127.0.0.1:9/never",), description="test entry",
    )  # fmt: skip
    monkeypatch.setitem(REMOTE_FILES, "tiny", test_entry)
    out = tmp_path / "tiny.bin"
    out.write_bytes(body)

    assert run_cli(["data", "download", "tiny", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)


def test_cli_unknown_dataset_and_list(tmp_path, capsys):
    assert run_cli(["data", "download", "nope", "--out", str(tmp_path / "x")]) == 1
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert run_cli(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "wikitext2" in listing and "pydoc-char" in listing and "pydoc-word" in listing
    assert REMOTE_FILES["wikitext2"].sha256 in listing
    assert not Path(tmp_path / "x").exists()
