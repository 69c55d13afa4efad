"""The parsed form of any source, kept on disk so the second load takes a fraction of a second.

One `.npz` (arrays only, read back with `allow_pickle=False`) plus one `.json` (names, drop
counts, column lists) per source. The key hashes the source with the size and modification time
of every file it was read from, so an edited file is parsed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ncf.data.dataset import Dataset, PublishedTest, Vocab

FORMAT = 1  # bump when the parsers change what they produce


def cache_dir() -> Path:
    """Downloads and parsed datasets live here (env NCF_CACHE_DIR, default ~/.cache/ncf)."""
    return Path(os.environ.get("NCF_CACHE_DIR") or Path.home() / ".cache" / "ncf").expanduser()


def parsed_dir() -> Path:
    return cache_dir() / "parsed"


def source_key(source: str, paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(f"{FORMAT}|{source}|{extra}".encode())
    for p in sorted(paths):
        st = p.stat() if p.exists() else None  # a missing file is the parser's error to report
        h.update(f"|{p.resolve()}|{st and st.st_size}|{st and st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def bytes_key(name: str, data: bytes, extra: str = "") -> str:
    h = hashlib.sha256(f"{FORMAT}|{name}|{extra}|".encode())
    h.update(data)
    return h.hexdigest()[:24]


def _frame_arrays(prefix: str, frame: pd.DataFrame | None, arrays: dict) -> list[str] | None:
    if frame is None:
        return None
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            arrays[f"{prefix}.{col}"] = values.to_numpy()
        else:  # text as fixed-width unicode: no object arrays, so no pickle
            arrays[f"{prefix}.{col}"] = np.asarray(values.astype(str).tolist(), dtype=str)
    return [str(c) for c in frame.columns]


def _raw_ids(vocab: Vocab) -> np.ndarray:
    raw = vocab.raw_ids
    return raw if vocab.is_numeric else np.asarray(raw.astype(str).tolist(), dtype=str)


def save(ds: Dataset, key: str) -> Path:
    """Writes the dataset atomically (temporary names, then rename); returns the .npz path."""
    folder = parsed_dir()
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "user": ds.user,  # int64 as used: narrower on disk would cost a slow widening copy on reload
        "item": ds.item,
        "users_raw": _raw_ids(ds.users),
        "items_raw": _raw_ids(ds.items),
    }
    if ds.rating is not None:
        arrays["rating"] = ds.rating
    if ds.timestamp is not None:
        arrays["timestamp"] = ds.timestamp
    if ds.published_test is not None:
        arrays["test_user"] = ds.published_test.user
        arrays["test_item"] = ds.published_test.item
        arrays["test_negatives"] = ds.published_test.negatives
    meta = {
        "format": FORMAT,
        "name": ds.name,
        "source": ds.source,
        "dropped": ds.dropped,
        "item_info": _frame_arrays("item_info", ds.item_info, arrays),
        "user_info": _frame_arrays("user_info", ds.user_info, arrays),
    }
    npz_path, json_path = folder / f"{key}.npz", folder / f"{key}.json"
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz.tmp", delete=False) as f:
        np.savez(f, **arrays)
    os.replace(f.name, npz_path)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".json.tmp", delete=False, encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(f.name, json_path)  # written last: its presence marks a complete entry
    return npz_path


def _frame(prefix: str, columns: list[str] | None, npz) -> pd.DataFrame | None:
    if columns is None:
        return None
    return pd.DataFrame({c: npz[f"{prefix}.{c}"] for c in columns})


def load(key: str) -> Dataset | None:
    """The cached dataset, or None when there is none (or it cannot be read: it is then removed)."""
    npz_path, json_path = parsed_dir() / f"{key}.npz", parsed_dir() / f"{key}.json"
    if not (npz_path.is_file() and json_path.is_file()):
        return None
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError("old format")
        with np.load(npz_path, allow_pickle=False) as npz:
            published = None
            if "test_user" in npz:
                published = PublishedTest(npz["test_user"], npz["test_item"], npz["test_negatives"])
            return Dataset(
                name=meta["name"],
                user=npz["user"].astype(np.int64, copy=False),
                item=npz["item"].astype(np.int64, copy=False),
                rating=npz.get("rating"),
                timestamp=npz.get("timestamp"),
                users=Vocab(npz["users_raw"], "user"),
                items=Vocab(npz["items_raw"], "item"),
                item_info=_frame("item_info", meta["item_info"], npz),
                user_info=_frame("user_info", meta["user_info"], npz),
                dropped=meta["dropped"],
                source=meta["source"],
                published_test=published,
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        npz_path.unlink(missing_ok=True)
        json_path.unlink(missing_ok=True)
        return None
