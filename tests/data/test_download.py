"""Downloads from a real HTTP server on loopback: verified, cached, never used half-done."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ncf.data import RELEASES, load, release_status
from ncf.data.movielens import downloads_dir
from ncf.errors import DataError

from .conftest import write_ml100k, zip_folder


class Server:
    """Serves `files` (name -> bytes); `truncate` names are cut in half after a full Content-Length."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                name = self.path.rsplit("/", 1)[-1]
                owner.requests.append(name)
                body = owner.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if name in owner.truncate else body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/movielens/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    with Server() as s:
        monkeypatch.setenv("NCF_MOVIELENS_URL", s.url)
        yield s


@pytest.fixture
def release_zip(tmp_path):
    return zip_folder(write_ml100k(tmp_path / "src"))


def _pin(monkeypatch, name, data, md5=True):
    """Points the catalog entry at our test zip (its checksum or size), as GroupLens' sums pin theirs."""
    entry = dataclasses.replace(RELEASES[name], md5=hashlib.md5(data).hexdigest() if md5 else None,
                                size_bytes=len(data))
    monkeypatch.setitem(RELEASES, name, entry)


def _leftovers():
    folder = downloads_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_reports_progress_and_is_never_repeated(server, release_zip, monkeypatch):
    _pin(monkeypatch, "ml-100k", release_zip)
    server.files["ml-100k.zip"] = release_zip
    seen = []
    ds = load("ml-100k", progress=lambda done, total: seen.append((done, total)))
    assert ds.name == "ml-100k" and ds.n_interactions == 10 and ds.titles([0])[0] == "Toy Story (1995)"
    assert seen and seen[-1] == (len(release_zip), len(release_zip))
    assert all(done <= total for done, total in seen)
    assert _leftovers() == ["ml-100k.zip"] and release_status("ml-100k")["cached"]
    load("ml-100k", use_cache=False)  # parses again from the cached zip...
    assert server.requests == ["ml-100k.zip"]  # ...without a second download


def test_checksum_mismatch_is_an_error_and_nothing_is_kept(server, release_zip, monkeypatch):
    _pin(monkeypatch, "ml-100k", release_zip)
    server.files["ml-100k.zip"] = release_zip[:-10] + b"0123456789"  # same size, corrupt
    with pytest.raises(DataError, match="does not match GroupLens' checksum.*was deleted"):
        load("ml-100k")
    assert _leftovers() == []


def test_truncated_download_is_an_error_and_nothing_is_kept(server, release_zip, monkeypatch):
    _pin(monkeypatch, "ml-100k", release_zip)
    server.files["ml-100k.zip"] = release_zip
    server.truncate.add("ml-100k.zip")
    with pytest.raises(DataError, match="ml-100k"):
        load("ml-100k")
    assert _leftovers() == []
    server.truncate.clear()  # the next attempt starts afresh and succeeds
    assert load("ml-100k").n_interactions == 10


def test_release_without_checksum_is_checked_by_size(server, release_zip, monkeypatch):
    _pin(monkeypatch, "ml-latest-small", release_zip, md5=False)
    server.files["ml-latest-small.zip"] = release_zip + b"\0" * len(release_zip)  # twice the recorded size
    with pytest.raises(DataError, match="expected about .* bytes.*was deleted"):
        load("ml-latest-small")
    assert _leftovers() == []
    server.files["ml-latest-small.zip"] = release_zip
    assert load("ml-latest-small").n_items == 5
    assert server.requests == ["ml-latest-small.zip", "ml-latest-small.zip"]


def test_unreachable_server_is_a_data_error(monkeypatch):
    monkeypatch.setenv("NCF_MOVIELENS_URL", "http://127.0.0.1:9/")  # the discard port: refused
    with pytest.raises(DataError, match="could not download .*NCF_DATA_DIR"):
        load("ml-1m")


def test_missing_file_on_the_server_is_a_data_error(server):
    with pytest.raises(DataError, match="could not download"):
        load("ml-20m")


def test_a_damaged_cached_zip_is_fetched_again(server, release_zip, monkeypatch):
    _pin(monkeypatch, "ml-100k", release_zip)
    server.files["ml-100k.zip"] = release_zip
    load("ml-100k")
    cached = downloads_dir() / "ml-100k.zip"
    cached.write_bytes(cached.read_bytes()[:100])  # cut short after the fact (a full disk, a crash)
    assert load("ml-100k").n_interactions == 10
    assert server.requests == ["ml-100k.zip", "ml-100k.zip"] and cached.stat().st_size == len(release_zip)
