"""Saving a run atomically and loading it back, through one cache of loaded runs."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ncf.config import RunConfig
from ncf.data.split import Split
from ncf.errors import RunError
from ncf.runs.format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    build_run,
    config_dict,
    frame_to_json,
    interactions_bytes,
    json_bytes,
    jsonable,
    verify_all,
    weights_bytes,
)
from ncf.runs.paths import TMP_PREFIX, clean_name, models_root, new_run_id, run_path
from ncf.runs.run import Run

if TYPE_CHECKING:  # torch and the trainer load only when a run is saved
    from ncf.train import TrainResult

_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file size limit was reached",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def write_file(folder: Path, name: str, data: bytes) -> dict:
    """Writes and fsyncs one file; returns its manifest entry. Every file of a save goes through
    here, so a test can make a save fail (or the process die) at a chosen file."""
    with open(folder / name, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error(exc: OSError, root: Path) -> RunError:
    reason = _DISK_ERRORS.get(exc.errno, exc.strerror or type(exc).__name__)
    return RunError(f"Could not save the run in {root}: {reason} ({exc.filename or root}). "
                    f"Nothing was written; earlier runs are untouched. Free some space or choose a writable "
                    f"models folder (NCF_MODELS_DIR).")


def save_run(result: TrainResult, cfg: RunConfig, split: Split, *, name: str = "",
             models_dir: str | os.PathLike | None = None) -> Run:
    """Saves a trained model (a `ncf.train.TrainResult`) with what produced it; returns the loaded run.

    Atomic: everything is written and fsynced in a temporary folder that is renamed into place last.
    An unwritable models folder or a full disk raises `RunError` (the temporary folder is removed)."""
    root = models_root(models_dir)
    if result.train_config is not None:  # the settings actually used, defaults resolved
        cfg = cfg.replace(train=result.train_config)
    if tuple(result.model.config.features) != tuple(cfg.model.features):  # "all" resolved
        cfg = cfg.replace(model=cfg.model.replace(features=tuple(result.model.config.features)))
    name = clean_name(name or cfg.name)
    created = datetime.now(UTC)
    run_id = new_run_id(cfg.model.model, split.dataset.name or cfg.data.source, created)
    ds = split.dataset
    files: dict[str, bytes] = {
        "config.json": json_bytes(config_dict(result, cfg, split, name, created)),
        "weights.safetensors": weights_bytes(result.model),
        "vocab.json": json_bytes({"users": ds.users.to_list(), "items": ds.items.to_list()}),
        # A validation pair is one of the user's known interactions: their history, left out of
        # recommendations and of full ranking, as during training.
        "interactions.safetensors": interactions_bytes(split.without_validation()),
        "history.jsonl": "".join(json.dumps(jsonable(e), ensure_ascii=False, allow_nan=False) + "\n"
                                 for e in (result.history or [])).encode("utf-8"),
        "metrics.json": json_bytes(dict(result.metrics or {})),
    }
    if (items := frame_to_json(ds.item_info)) is not None:
        files["items.json"] = json_bytes(items)
    if (users := frame_to_json(ds.user_info)) is not None:
        files["users.json"] = json_bytes(users)
    if specs := result.model.feature_specs:
        files["features.json"] = json_bytes({"specs": [s.to_dict() for s in specs]})

    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id}-", dir=root))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a run is shared like any other saved file
        entries = {fname: write_file(tmp, fname, data) for fname, data in files.items()}
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "files": entries}
        write_file(tmp, MANIFEST, json_bytes(manifest))  # last: a folder without it is not a run
        _fsync_dir(tmp)
        for _ in range(5):
            try:
                os.rename(tmp, root / run_id)
                break
            except OSError as exc:  # same id in the same second: pick another suffix
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                run_id = new_run_id(cfg.model.model, ds.name or cfg.data.source, created)
        else:
            raise RunError(f"Could not find a free run id in {root}.")
        tmp = None
    except OSError as exc:
        raise _disk_error(exc, root) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    # Makes the rename itself durable; the run is complete either way, so a failure here is no error.
    with contextlib.suppress(OSError):
        _fsync_dir(root)
    return load_run(root / run_id)


_CACHE_SIZE = 8
_cache: OrderedDict[tuple, Run] = OrderedDict()
_cache_lock = threading.Lock()


def manifest_key(folder: Path) -> tuple | None:
    """The cache key of a run folder: its path and the size, mtime and inode of the manifest and of
    every file beside it (a few stat calls), so a file changed after loading is checked again."""
    try:
        with os.scandir(folder) as entries:
            stats = sorted((e.name, e.stat(follow_symlinks=False)) for e in entries)
    except OSError:
        return None
    if MANIFEST not in {name for name, _ in stats}:
        return None
    return (str(folder.resolve()), *((name, st.st_size, st.st_mtime_ns, st.st_ino) for name, st in stats))


def load_run(run: str | os.PathLike, *, models_dir: str | os.PathLike | None = None) -> Run:
    """A saved run rebuilt from its folder alone; `RunError` for anything missing, foreign or tampered.

    `run` is a run id (a `str`, validated: it can only name a folder inside the models folder) or a
    folder path (`pathlib.Path`). Loaded runs are kept in a small LRU cache keyed by the folder and its
    manifest's mtime; they are shared read-only by every caller (the app's sessions included)."""
    folder = Path(run) if isinstance(run, os.PathLike) else run_path(run, models_dir)
    key = manifest_key(folder)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    loaded = build_run(folder, verify_all(folder))
    if key is not None and key == manifest_key(folder):
        with _cache_lock:
            _cache[key] = loaded
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return loaded


def forget(folder: Path) -> None:
    """Drops a folder's loaded run from the cache (before it is deleted or replaced)."""
    resolved = str(folder.resolve())
    with _cache_lock:
        for key in [k for k in _cache if k[0] == resolved]:
            del _cache[key]


def clear_cache() -> None:
    """Empties the cache of loaded runs, so the next `load_run` rebuilds from disk (tests; a server
    operator who changed files by hand need not: a changed file already misses the cache)."""
    with _cache_lock:
        _cache.clear()
