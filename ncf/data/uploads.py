"""An uploaded file's bytes, named by content and kept on disk.

A training job is another process and loads its data by path, so an upload that is to be
trained on is written into the cache folder. It is named by the same content hash as its parsed
form in the cache (`cache.bytes_key`: file name, column choice and bytes): one recipe for "the
same upload", whether the question is "is it parsed already" or "where are its bytes".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ncf.data import cache

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def upload_name(filename: str) -> str:
    """The name an upload is known by: the last part of what the browser sent."""
    return Path(filename).name or "upload"


def upload_key(filename: str, data: bytes, columns: dict | None = None) -> str:
    """The content hash of an upload with its column choice: the key of its parsed form in the cache."""
    return cache.bytes_key(upload_name(filename), data, json.dumps(columns, sort_keys=True, default=str))


def keep_upload(filename: str, data: bytes, columns: dict | None = None) -> Path:
    """Writes the bytes to cache_dir()/uploads/<key>/<file name> (once; atomically) and returns the
    path. The file name is reduced to safe characters: it comes from a browser."""
    safe = _UNSAFE.sub("_", upload_name(filename))[:80].lstrip(".") or "upload.csv"
    folder = cache.cache_dir() / "uploads" / upload_key(filename, data, columns)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if not path.exists():
        tmp = folder / f".{safe}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
