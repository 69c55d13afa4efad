"""Evaluation splits kept on disk, so that a fresh process or app server reads a large split back
instead of drawing it again (ML-25M's leave-one-out: seconds to draw, about one to read back).

One folder per split under cache_dir()/splits: a `.npy` file per array (read back memory-mapped,
copy-on-write, with `allow_pickle=False`) and a `meta.json`. The key hashes the dataset's content
(`Dataset.fingerprint`) with every setting of the request, so different data or settings never
share an entry. An entry is written into a temporary folder and renamed into place; one that cannot
be read back whole (a truncated file, a missing array, shapes that disagree) is removed and drawn
again. The least recently used entries go when the kept splits outgrow NCF_SPLIT_CACHE_GB (one
ML-25M leave-one-out split with validation takes 0.9 GiB). Splits of small datasets are not kept:
drawing them is quicker than keeping them tidy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ncf.data import cache
from ncf.data.dataset import Dataset
from ncf.data.split import Split, make_split
from ncf.errors import ConfigError

FORMAT = 1  # bump when a split function draws differently, so that no old entry is read back
# Below this many interactions a split is drawn rather than kept (ML-1M's leave-one-out: 0.2 s).
MIN_ROWS = 2_000_000
ARRAYS = ("train_user", "train_item", "train_rating", "train_time", "test_user", "test_item", "test_rating",
          "test_negatives", "valid_user", "valid_item", "valid_rating", "valid_time", "valid_negatives")
# Arrays whose first dimension is the split's train / test / validation length.
_GROUPS = {"train": ARRAYS[:4], "test": ARRAYS[4:8], "valid": ARRAYS[8:]}


def splits_dir() -> Path:
    return cache.cache_dir() / "splits"


def budget_bytes() -> int:
    """The most the kept splits may take on disk (env NCF_SPLIT_CACHE_GB, default 8 GiB: about eight
    ML-25M leave-one-out splits); the least recently used go first."""
    text = os.environ.get("NCF_SPLIT_CACHE_GB", "8")
    try:
        return int(float(text) * 2**30)
    except ValueError:
        raise ConfigError(f"NCF_SPLIT_CACHE_GB must be a number of GiB, got {text!r}.") from None


def split_request(kind: str, seed: int, n_negatives: int, test_fraction: float, validation: bool) -> dict:
    """Every setting a split is drawn with, as the key and the entry record them."""
    return {"kind": kind, "seed": int(seed), "n_negatives": int(n_negatives), "test_fraction": float(test_fraction),
            "validation": bool(validation)}


def split_key(data_fingerprint: str, request: dict) -> str:
    text = json.dumps({"format": FORMAT, "data": data_fingerprint, **request}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_split(ds: Dataset, kind: str = "leave_one_out", seed: int = 0, n_negatives: int = 99,
                 test_fraction: float = 0.2, validation: bool = False, min_rows: int = MIN_ROWS) -> Split:
    """`make_split`'s split, read back from the cache when this data and these settings were split
    before, drawn and kept otherwise. Datasets under `min_rows` interactions and published splits
    (the dataset holds them already) are not kept."""
    if kind == "published" or ds.published_test is not None or ds.n_interactions < min_rows:
        return make_split(ds, kind, seed=seed, n_negatives=n_negatives, test_fraction=test_fraction,
                          validation=validation)
    request = split_request(kind, seed, n_negatives, test_fraction, validation)
    fingerprint = ds.fingerprint()
    key = split_key(fingerprint, request)
    split = load_entry(ds, key, fingerprint, request)
    if split is None:
        split = make_split(ds, kind, seed=seed, n_negatives=n_negatives, test_fraction=test_fraction,
                           validation=validation)
        # A full or read-only disk costs the next process the drawing again, not this one its split.
        with contextlib.suppress(OSError):
            save_entry(split, ds, key, fingerprint, request)
            trim(keep=key)
    return split


def trim(keep: str | None = None) -> list[str]:
    """Removes the least recently used entries (by meta.json's time, which a read-back renews) until
    the rest fit in `budget_bytes()`; never `keep`, the entry just written. Returns the removed keys."""
    sized = []
    for entry in splits_dir().iterdir():
        meta = entry / "meta.json"
        if entry.name.startswith(".") or not meta.is_file():
            continue  # a folder being written (or left by a crash), not an entry
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        sized.append((meta.stat().st_mtime_ns, entry, size))
    total, removed = sum(size for _, _, size in sized), []
    for _, entry, size in sorted(sized, key=lambda t: t[0]):
        if total <= budget_bytes():
            break
        if entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
            removed.append(entry.name)
    return removed


def save_entry(split: Split, ds: Dataset, key: str, fingerprint: str, request: dict) -> Path:
    """Writes the split into a temporary folder and renames it into place (atomic); returns it."""
    folder = splits_dir()
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(split, name) for name in ARRAYS if getattr(split, name) is not None}
    meta = {
        "format": FORMAT,
        "data": fingerprint,
        "request": request,
        "kind": split.kind,
        "seed": split.seed,
        "settings": [list(pair) for pair in split.settings],
        # leave-one-out drops users with fewer than two interactions: the split's dataset is then the
        # filtered one, kept in the entry's dataset/ (filtering 32M rows again takes seconds)
        "filtered": split.dataset is not ds,
        "shape": [split.dataset.n_users, split.dataset.n_items, split.dataset.n_interactions],
        "arrays": {name: [a.dtype.str, list(a.shape)] for name, a in arrays.items()},
    }
    filtered = None if split.dataset is ds else (lambda tmp: cache.save(split.dataset, "dataset", folder=tmp))
    return cache.write_entry(folder, key, arrays, meta, extra=filtered)


def load_entry(ds: Dataset, key: str, fingerprint: str, request: dict) -> Split | None:
    """The kept split, or None when there is none or it cannot be read back whole (it is then removed)."""
    entry = splits_dir() / key
    if not (entry / "meta.json").is_file():
        return None
    try:
        split = _read(entry, ds, fingerprint, request)
        os.utime(entry / "meta.json")  # used now: the last to go when the budget is trimmed
        return split
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _read(entry: Path, ds: Dataset, fingerprint: str, request: dict) -> Split:
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    if meta["format"] != FORMAT or meta["data"] != fingerprint or meta["request"] != request:
        raise ValueError("an entry for other data or settings")
    arrays = {}
    for name, (dtype, shape) in meta["arrays"].items():
        if name not in ARRAYS:
            raise ValueError(f"unknown array {name}")
        # Copy-on-write maps: a truncated file fails here (the map would run past its end).
        values = np.asarray(np.load(entry / f"{name}.npy", mmap_mode="c", allow_pickle=False))
        if values.dtype.str != dtype or list(values.shape) != shape:
            raise ValueError(f"{name}: {values.dtype.str} {values.shape}, recorded {dtype} {shape}")
        arrays[name] = values
    for group, names in _GROUPS.items():
        lengths = {len(arrays[n]) for n in names if n in arrays}
        if len(lengths) > 1:
            raise ValueError(f"{group} arrays of different lengths {sorted(lengths)}")
    for name in ("train_user", "train_item", "test_user", "test_item"):
        if name not in arrays:
            raise ValueError(f"{name} missing")
    dataset = ds
    if meta["filtered"]:
        dataset = cache.load("dataset", folder=entry)
        if dataset is None:
            raise ValueError("the filtered dataset is missing")
    if [dataset.n_users, dataset.n_items, dataset.n_interactions] != meta["shape"]:
        raise ValueError("the dataset is not of the recorded shape")
    n_held = len(arrays["test_user"]) + (len(arrays["valid_user"]) if "valid_user" in arrays else 0)
    if len(arrays["train_user"]) + n_held != dataset.n_interactions:
        raise ValueError("train and held-out rows do not add up to the dataset's")
    for name in ("test_user", "valid_user"):  # short arrays: their range is checked in full
        if name in arrays and len(arrays[name]) and not 0 <= arrays[name].min() <= arrays[name].max() < dataset.n_users:
            raise ValueError(f"{name} outside the dataset's users")
    for name in ("test_negatives", "valid_negatives", "test_item", "valid_item"):
        if name in arrays and arrays[name].size and not 0 <= arrays[name].min() <= arrays[name].max() < dataset.n_items:
            raise ValueError(f"{name} outside the dataset's items")
    return Split(kind=meta["kind"], dataset=dataset, seed=meta["seed"],
                 settings=tuple(tuple(pair) for pair in meta["settings"]),
                 **{name: arrays.get(name) for name in ARRAYS})
