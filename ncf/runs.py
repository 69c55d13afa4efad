"""Saved runs: one folder per trained model, written atomically, loaded without pickle.

A run folder holds everything needed to use the model without the original data:

    config.json               what produced it (RunConfig, data and split fingerprints, versions, name, device)
    weights.safetensors       the model's state_dict
    vocab.json                raw user and item ids, in index order
    items.json                item titles / genres per item index (when the data has them)
    users.json                user attributes per user index (when the data has them)
    features.json             the side features' encoders (when the model takes features; their tables are weights)
    interactions.safetensors  train and test interactions as indices (to exclude seen items, mark the held-out one)
    history.jsonl             the training events, one JSON object per line
    metrics.json              the final metrics
    manifest.json             written last: format marker, sha256 and size of every other file

Writing builds the folder under `models_dir/.tmp-<id>-<random>/`, fsyncs every file, then renames it
into place. A rename within one filesystem is atomic, so a crash (even kill -9) leaves either a
complete run or a `.tmp-*` leftover that `list_runs` skips and `clean_incomplete` removes.
Loading checks the manifest's checksums before anything is parsed, and parses only JSON and
safetensors: a foreign, truncated or tampered folder is refused with a `RunError` that says why.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncf.config import RunConfig
from ncf.data.dataset import Dataset, Vocab
from ncf.data.split import Split
from ncf.errors import ConfigError, RunError

FORMAT = "ncf-run"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_FILES = ("config.json", "weights.safetensors", "vocab.json", "interactions.safetensors",
                  "history.jsonl", "metrics.json")
OPTIONAL_FILES = ("items.json", "users.json", "features.json")
TMP_PREFIX = ".tmp-"
MAX_NAME_CHARS = 80
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # names inside a run folder: no paths

_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file size limit was reached",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


# ---------------------------------------------------------------------------------------------
# Where runs live, and which names are allowed


def models_dir() -> Path:
    """The folder of saved runs: $NCF_MODELS_DIR, else `models/` next to the `ncf` package."""
    env = os.environ.get("NCF_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def _root(folder: str | os.PathLike | None) -> Path:
    return Path(folder) if folder is not None else models_dir()


def validate_run_id(run_id: str) -> str:
    """`run_id` if it can only name a folder directly inside the models folder, else `RunError`.

    Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters, and
    no '..': no separators, no absolute paths, no hidden or temporary folders."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        shown = run_id if isinstance(run_id, str) else type(run_id).__name__
        raise RunError(f"{shown[:120]!r} is not a run id: expected letters, digits, '.', '_' or '-' "
                       f"(starting with a letter or digit, at most 100 characters, no '..').")
    return run_id


def _run_path(run_id: str, folder: str | os.PathLike | None) -> Path:
    """The folder of a validated run id; its resolved path must stay inside the models folder
    (a symlink planted in models/ pointing elsewhere is refused too)."""
    root = _root(folder)
    path = root / validate_run_id(run_id)
    resolved, root_resolved = path.resolve(), root.resolve()
    if resolved.parent != root_resolved:
        raise RunError(f"Run {run_id!r} points outside the models folder {root}; refusing to use it.")
    return path


def clean_name(name: str) -> str:
    """A display name as stored: any text, control characters turned into spaces, at most 80 characters.
    It is shown as text, never as HTML or a path, so nothing else needs escaping here."""
    text = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in str(name or ""))
    return " ".join(text.split())[:MAX_NAME_CHARS]


def validate_run_name(name: str) -> str:
    """For forms: the cleaned name, or `RunError` when it is longer than allowed (save_run truncates)."""
    cleaned = clean_name(name)
    if len(" ".join(str(name or "").split())) > MAX_NAME_CHARS:
        raise RunError(f"A run name has at most {MAX_NAME_CHARS} characters; this one has {len(str(name))}.")
    return cleaned


def run_ref(text: str) -> str | Path:
    """For command lines: a run id as is, or a `Path` when the text names an existing folder by path
    ('models/abc', '/tmp/run'). `load_run` treats a `str` as an id only (so a value from a URL can
    never become a path); callers that accept paths convert with this first."""
    if isinstance(text, str) and RUN_ID_RE.fullmatch(text) and ".." not in text:
        return text
    return Path(text)


def _slug(text: str, limit: int = 24) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:limit].strip("-") or "data"


def new_run_id(model: str, dataset: str, when: datetime | None = None) -> str:
    """A readable, sortable id such as '20261125-141502-neumf-synthetic-ab12'."""
    when = when or datetime.now(UTC)
    return validate_run_id(f"{when:%Y%m%d-%H%M%S}-{_slug(model, 12)}-{_slug(dataset)}-{secrets.token_hex(2)}")


# ---------------------------------------------------------------------------------------------
# What a loaded run offers


# From this many training rows, a run whose rows are not grouped by user finds one user's rows by a
# scan (0.03-0.2 s for 25M rows, on a quiet or a loaded 2-core box) instead of grouping them all by a
# stable sort first (10 s for 25M rows under load, paid by the first query of a Recommendations page).
SCAN_MIN_ROWS = 2_000_000


@dataclass(frozen=True, eq=False)
class Run:
    """A saved run, rebuilt from its folder alone.

    Loaded runs are cached and shared read-only by every session of the app: never modify the model
    or the arrays; code that needs a changed model copies it (`model_copy`, fold-in).
    """

    id: str
    path: Path
    config: RunConfig
    model: Any  # ncf.models.Recommender, eval mode, on the CPU
    users: Vocab
    items: Vocab
    item_info: pd.DataFrame | None
    user_info: pd.DataFrame | None
    metrics: dict
    history: list[dict]
    train_user: np.ndarray  # (n_train,) int64 indices
    train_item: np.ndarray
    train_rating: np.ndarray | None  # (n_train,) float32; None for implicit data
    train_timestamp: np.ndarray | None  # (n_train,) int64 seconds; None when the data has none
    test_user: np.ndarray  # (n_test,) int64
    test_item: np.ndarray
    test_rating: np.ndarray | None
    test_timestamp: np.ndarray | None
    test_negatives: np.ndarray | None  # (n_test, n_neg) int64
    created: str  # ISO 8601, UTC
    name: str
    device: str
    train_seconds: float
    info: dict = field(default_factory=dict)  # config.json as stored (fingerprints, versions, ...)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def implicit_data(self) -> bool:
        return self.train_rating is None

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """(n_items,) training interactions per item."""
        return np.bincount(self.train_item, minlength=self.n_items)

    @cached_property
    def _train_sorted_by_user(self) -> bool:
        users = self.train_user
        return bool(len(users) < 2 or (users[1:] >= users[:-1]).all())

    @cached_property
    def _train_by_user(self) -> tuple[np.ndarray, np.ndarray]:
        """Training rows grouped by user: (order, offsets) so user u's rows are order[offsets[u]:offsets[u+1]]."""
        order = np.argsort(self.train_user, kind="stable")
        offsets = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.train_user, minlength=self.n_users), out=offsets[1:])
        return order, offsets

    def train_rows(self, user_index: int) -> np.ndarray:
        """Indices into the train arrays of one user's training interactions (in their stored order)."""
        users = self.train_user
        if self._train_sorted_by_user:  # a binary search
            return np.arange(np.searchsorted(users, user_index, "left"), np.searchsorted(users, user_index, "right"))
        if len(users) >= SCAN_MIN_ROWS:  # one pass per query rather than a stable sort of every row once
            return np.flatnonzero(users == user_index)
        order, offsets = self._train_by_user
        return order[offsets[user_index]:offsets[user_index + 1]]

    def test_rows(self, user_index: int) -> np.ndarray:
        return np.flatnonzero(self.test_user == user_index)

    def model_copy(self):
        """A private, trainable copy of the model (to continue training it): the cached one is shared."""
        import copy

        model = copy.deepcopy(self.model)
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def split(self) -> Split:
        """The evaluation split rebuilt from the folder (no original data needed), for `evaluate`."""
        user = np.concatenate([self.train_user, self.test_user])
        item = np.concatenate([self.train_item, self.test_item])
        rating = None
        if self.train_rating is not None and self.test_rating is not None:
            rating = np.concatenate([self.train_rating, self.test_rating])
        ds = Dataset(name=self.info.get("dataset", {}).get("name", self.id), user=user, item=item, rating=rating,
                     timestamp=None, users=self.users, items=self.items, item_info=self.item_info,
                     user_info=self.user_info, source=self.config.data.source)
        split_info = self.info.get("split", {})
        return Split(kind=split_info.get("kind", self.config.data.split), dataset=ds,
                     train_user=self.train_user, train_item=self.train_item, train_rating=self.train_rating,
                     test_user=self.test_user, test_item=self.test_item, test_rating=self.test_rating,
                     test_negatives=self.test_negatives, seed=int(split_info.get("seed", self.config.data.seed)),
                     settings=tuple(tuple(p) for p in split_info.get("settings", ())))


@dataclass(frozen=True)
class RunInfo:
    """One row of the runs list. A folder that cannot be loaded is listed with `error` set."""

    id: str
    name: str
    path: str
    created: str
    config: dict | None
    metrics: dict
    train_seconds: float | None
    device: str
    error: str | None = None
    dataset: str = ""
    model: str = ""
    epochs: int | None = None
    stopped: bool = False


# ---------------------------------------------------------------------------------------------
# Writing


def _jsonable(value):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _json_bytes(obj) -> bytes:
    return json.dumps(_jsonable(obj), ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")


def _write_file(folder: Path, name: str, data: bytes) -> dict:
    """Writes and fsyncs one file; returns its manifest entry."""
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


def _frame_to_json(df: pd.DataFrame | None) -> dict | None:
    if df is None or len(df.columns) == 0:
        return None
    columns = {}
    for col in df.columns:
        values = df[col]
        values = values.astype(object).where(values.notna(), None)
        columns[str(col)] = [_jsonable(v) for v in values.tolist()]
    return {"n": len(df), "columns": columns}


def _frame_from_json(obj: dict | None, n: int, what: str) -> pd.DataFrame | None:
    if obj is None:
        return None
    columns = obj.get("columns") if isinstance(obj, dict) else None
    if not isinstance(columns, dict) or any(not isinstance(v, list) or len(v) != n for v in columns.values()):
        raise RunError(f"{what} does not hold one row per id ({n:,} expected); the run folder is damaged.")
    return pd.DataFrame(columns)


def _timestamps_for(split: Split) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Timestamps of the split's train and test rows, looked up by (user, item) in the dataset
    (splits keep indices, not row numbers). Where a pair occurs more than once, its latest time."""
    ds = split.dataset
    if ds.timestamp is None or ds.n_interactions == 0:
        return None, None
    keys = ds.user * ds.n_items + ds.item
    order = np.lexsort((ds.timestamp, keys))
    keys_sorted, times_sorted = keys[order], ds.timestamp[order]
    last = np.r_[keys_sorted[1:] != keys_sorted[:-1], True]  # the latest time of each distinct pair
    keys_sorted, times_sorted = keys_sorted[last], times_sorted[last]

    def lookup(user: np.ndarray, item: np.ndarray) -> np.ndarray | None:
        k = user.astype(np.int64) * ds.n_items + item
        pos = np.minimum(np.searchsorted(keys_sorted, k), len(keys_sorted) - 1)
        if len(k) and not (keys_sorted[pos] == k).all():
            return None  # the split holds pairs the dataset does not (a published test set): no times
        return times_sorted[pos]

    return lookup(split.train_user, split.train_item), lookup(split.test_user, split.test_item)


def _interactions_bytes(split: Split) -> bytes:
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {
        "train_user": split.train_user.astype(np.int32), "train_item": split.train_item.astype(np.int32),
        "test_user": split.test_user.astype(np.int32), "test_item": split.test_item.astype(np.int32),
    }
    if split.train_rating is not None:
        tensors["train_rating"] = split.train_rating.astype(np.float32)
    if split.test_rating is not None:
        tensors["test_rating"] = split.test_rating.astype(np.float32)
    if split.test_negatives is not None:
        tensors["test_negatives"] = split.test_negatives.astype(np.int32)
    train_time, test_time = _timestamps_for(split)
    if train_time is not None and test_time is not None:
        # Seconds as int32 offsets from the earliest time where they fit (4 bytes a row instead of 8).
        base = int(min(train_time.min(initial=0), test_time.min(initial=0))) if len(train_time) else 0
        span = int(max(train_time.max(initial=base), test_time.max(initial=base))) - base
        offset_type = np.int32 if span < 2**31 else np.int64
        tensors["timestamp_base"] = np.asarray([base], dtype=np.int64)
        tensors["train_timestamp"] = (train_time - base).astype(offset_type)
        tensors["test_timestamp"] = (test_time - base).astype(offset_type)
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"format": FORMAT})


def _weights_bytes(model) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return save(state, metadata={"format": FORMAT, "model": model.config.model})


def _versions() -> dict:
    import platform

    import safetensors
    import torch

    import ncf

    return {"ncf": ncf.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _config_dict(result, cfg: RunConfig, split: Split, name: str, created: datetime) -> dict:
    """config.json. The run id is not stored: it is the folder's name, whatever the folder is renamed to."""
    ds = split.dataset
    return {
        "name": name,
        "created": created.isoformat(timespec="seconds"),
        # The factors actually used, not "the model's default": a later change of a registry default
        # must not change what this run's weights fit.
        "config": {**cfg.replace(model=cfg.model.replace(factors=cfg.model.resolved_factors)).to_dict(), "name": name},
        "dataset": {"name": ds.name, "source": ds.source, "fingerprint": ds.fingerprint(), "n_users": ds.n_users,
                    "n_items": ds.n_items, "n_interactions": ds.n_interactions, "implicit": ds.implicit,
                    "rating_scale": ds.rating_scale},
        "split": {"kind": split.kind, "fingerprint": split.fingerprint(), "seed": split.seed,
                  "settings": [list(p) for p in split.settings], "describe": split.describe(),
                  "n_train": split.n_train, "n_test": len(split.test_user)},
        "device": str(getattr(result, "device", "")),
        "train_seconds": float(getattr(result, "train_seconds", 0.0) or 0.0),
        "samples_per_second": float(getattr(result, "samples_per_second", 0.0) or 0.0),
        "epochs": int(getattr(result, "epochs", 0) or 0),
        "stopped": bool(getattr(result, "stopped", False)),
        "versions": _versions(),
    }


def _disk_error(exc: OSError, root: Path) -> RunError:
    reason = _DISK_ERRORS.get(exc.errno, exc.strerror or type(exc).__name__)
    return RunError(f"Could not save the run in {root}: {reason} ({exc.filename or root}). "
                    f"Nothing was written; earlier runs are untouched. Free some space or choose a writable "
                    f"models folder (NCF_MODELS_DIR).")


def save_run(result, cfg: RunConfig, split: Split, *, name: str = "",
             models_dir: str | os.PathLike | None = None) -> Run:
    """Saves a trained model (a `ncf.train.TrainResult`) with what produced it; returns the loaded run.

    Atomic: everything is written and fsynced in a temporary folder that is renamed into place last.
    An unwritable models folder or a full disk raises `RunError` (the temporary folder is removed)."""
    root = _root(models_dir)
    if getattr(result, "train_config", None) is not None:  # the settings actually used, defaults resolved
        cfg = cfg.replace(train=result.train_config)
    model_cfg = getattr(result.model, "config", None)
    if model_cfg is not None and tuple(model_cfg.features) != tuple(cfg.model.features):  # "all" resolved
        cfg = cfg.replace(model=cfg.model.replace(features=tuple(model_cfg.features)))
    name = clean_name(name or cfg.name)
    created = datetime.now(UTC)
    run_id = new_run_id(cfg.model.model, split.dataset.name or cfg.data.source, created)
    ds = split.dataset
    files: dict[str, bytes] = {
        "config.json": _json_bytes(_config_dict(result, cfg, split, name, created)),
        "weights.safetensors": _weights_bytes(result.model),
        "vocab.json": _json_bytes({"users": ds.users.to_list(), "items": ds.items.to_list()}),
        # A validation pair is one of the user's known interactions: their history, left out of
        # recommendations and of full ranking, as during training.
        "interactions.safetensors": _interactions_bytes(split.without_validation()),
        "history.jsonl": "".join(json.dumps(_jsonable(e), ensure_ascii=False, allow_nan=False) + "\n"
                                 for e in (result.history or [])).encode("utf-8"),
        "metrics.json": _json_bytes(dict(result.metrics or {})),
    }
    if (items := _frame_to_json(ds.item_info)) is not None:
        files["items.json"] = _json_bytes(items)
    if (users := _frame_to_json(ds.user_info)) is not None:
        files["users.json"] = _json_bytes(users)
    if specs := getattr(result.model, "feature_specs", ()):
        files["features.json"] = _json_bytes({"specs": [s.to_dict() for s in specs]})

    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id}-", dir=root))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a run is shared like any other saved file
        entries = {fname: _write_file(tmp, fname, data) for fname, data in files.items()}
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "files": entries}
        _write_file(tmp, MANIFEST, _json_bytes(manifest))  # last: a folder without it is not a run
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


# ---------------------------------------------------------------------------------------------
# Reading and checking


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file inside a run folder; symlinks are refused (they could point anywhere)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise RunError(f"{path.name} is missing from the run folder {path.parent.name!r}; it was not saved "
                       f"completely or was changed afterwards.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{path.name} in {path.parent.name!r} is a symbolic link; run folders hold "
                           f"plain files only.") from None
        raise RunError(f"Cannot read {path.name} in {path.parent.name!r}: {exc.strerror}.") from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _read_manifest(folder: Path) -> dict:
    if not folder.is_dir():
        raise RunError(f"No run folder at {folder}.")
    if not (folder / MANIFEST).is_file():
        raise RunError(f"{folder.name!r} is not an ncf run folder: it has no {MANIFEST} (it was not written by "
                       f"NCF Lab, or its save did not finish).")
    try:
        manifest = json.loads(_read_regular(folder / MANIFEST))
    except (ValueError, UnicodeDecodeError):
        raise RunError(f"{folder.name!r} has a {MANIFEST} that is not valid JSON; the folder is damaged.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RunError(f"{folder.name!r} is not an ncf run folder: its {MANIFEST} does not say "
                       f"format {FORMAT!r}.")
    if manifest.get("version") != FORMAT_VERSION:
        raise RunError(f"{folder.name!r} was saved in run format version {manifest.get('version')!r}; this "
                       f"version of NCF Lab reads version {FORMAT_VERSION}.")
    entries = manifest.get("files")
    if not isinstance(entries, dict):
        raise RunError(f"{folder.name!r} has a {MANIFEST} without a file list; the folder is damaged.")
    for fname, entry in entries.items():
        if (not isinstance(fname, str) or not _FILE_NAME_RE.fullmatch(fname) or ".." in fname
                or fname == MANIFEST or not isinstance(entry, dict)
                or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("size"), int)):
            raise RunError(f"{folder.name!r} has a {MANIFEST} with an invalid entry {str(fname)[:80]!r}.")
    missing = [f for f in REQUIRED_FILES if f not in entries]
    if missing:
        raise RunError(f"{folder.name!r} is incomplete: its {MANIFEST} lists no {', '.join(missing)}.")
    return manifest


def _checked_bytes(folder: Path, fname: str, entry: dict) -> bytes:
    data = _read_regular(folder / fname)
    if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise RunError(f"{fname} was modified or truncated after the run was saved "
                       f"({len(data):,} bytes, {entry['size']:,} expected, checksum "
                       f"{'differs' if len(data) == entry['size'] else 'not checked'}); refusing to load "
                       f"{folder.name!r}.")
    return data


def _verify_all(folder: Path) -> dict[str, bytes]:
    """Every file the manifest lists, checked against its size and sha256."""
    manifest = _read_manifest(folder)
    return {fname: _checked_bytes(folder, fname, entry) for fname, entry in manifest["files"].items()}


def _parse_json(data: bytes, fname: str, folder: Path):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RunError(f"{fname} in {folder.name!r} is not valid JSON.") from None


def _parse_config(info, folder: Path) -> RunConfig:
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise RunError(f"config.json in {folder.name!r} does not hold a run configuration.")
    try:
        cfg = RunConfig.from_dict(info["config"])
        cfg.model.validate()
        cfg.train.validate()
    except ConfigError as exc:
        raise RunError(f"config.json in {folder.name!r} does not validate: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RunError(f"config.json in {folder.name!r} does not validate: {type(exc).__name__}: {exc}") from None
    return cfg


def _read_safetensors_numpy(data: bytes, fname: str, folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    try:
        return load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for malformed headers
        raise RunError(f"{fname} in {folder.name!r} cannot be read as safetensors: {exc}") from None


def _build(folder: Path, files: dict[str, bytes]) -> Run:
    from safetensors.torch import load as load_tensors

    from ncf.models import build_model

    info = _parse_json(files["config.json"], "config.json", folder)
    cfg = _parse_config(info, folder)
    vocab = _parse_json(files["vocab.json"], "vocab.json", folder)
    if not isinstance(vocab, dict) or not isinstance(vocab.get("users"), list) or not isinstance(vocab.get("items"), list):
        raise RunError(f"vocab.json in {folder.name!r} does not hold user and item id lists.")
    users, items = Vocab.from_list(vocab["users"], "user"), Vocab.from_list(vocab["items"], "item")
    for what, v in (("a user", users), ("an item", items)):
        if not pd.Index(v.raw_ids).is_unique:
            raise RunError(f"vocab.json in {folder.name!r} lists {what} id twice; the folder is damaged.")
    n_users, n_items = len(users), len(items)

    try:
        state = load_tensors(files["weights.safetensors"])
    except Exception as exc:  # noqa: BLE001 - safetensors' own error types for malformed files
        raise RunError(f"weights.safetensors in {folder.name!r} cannot be read: {exc}") from None
    try:
        features = None
        if cfg.model.features:
            from ncf.data.features import FeatureSet

            if "features.json" not in files:
                raise ConfigError("it takes side features but the folder has no features.json")
            features = FeatureSet.empty_like(_parse_json(files["features.json"], "features.json", folder),
                                             n_users, n_items)
        model = build_model(cfg.model, n_users, n_items, features)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ConfigError, ValueError, TypeError) as exc:  # TypeError: a malformed features.json
        first = str(exc).strip().splitlines()
        raise RunError(f"The weights in {folder.name!r} do not fit its configuration ({cfg.model.model}, "
                       f"{n_users:,} users, {n_items:,} items): {' '.join(first[:3])[:400]}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)  # shared read-only; fold-in works on its own copy

    arrays = _read_safetensors_numpy(files["interactions.safetensors"], "interactions.safetensors", folder)
    for key in ("train_user", "train_item", "test_user", "test_item"):
        if key not in arrays:
            raise RunError(f"interactions.safetensors in {folder.name!r} has no {key}.")

    def arr(key: str, dtype) -> np.ndarray | None:
        if key not in arrays:
            return None
        return np.ascontiguousarray(arrays[key], dtype=dtype)

    stored_base = arrays.get("timestamp_base")
    base = int(stored_base.reshape(-1)[0]) if stored_base is not None and stored_base.size else 0
    train_time, test_time = arr("train_timestamp", np.int64), arr("test_timestamp", np.int64)
    train_time = None if train_time is None else train_time + base
    test_time = None if test_time is None else test_time + base
    train_user, train_item = arr("train_user", np.int64), arr("train_item", np.int64)
    test_user, test_item = arr("test_user", np.int64), arr("test_item", np.int64)
    negatives = arr("test_negatives", np.int64)
    for key, a, n in (("train_user", train_user, n_users), ("train_item", train_item, n_items),
                      ("test_user", test_user, n_users), ("test_item", test_item, n_items),
                      ("test_negatives", negatives, n_items)):
        if a is not None and a.size and (a.min() < 0 or a.max() >= n):
            raise RunError(f"interactions.safetensors in {folder.name!r}: {key} holds indices outside 0..{n - 1}.")
    if len(train_user) != len(train_item) or len(test_user) != len(test_item):
        raise RunError(f"interactions.safetensors in {folder.name!r}: user and item columns differ in length.")

    item_info = user_info = None
    if "items.json" in files:
        item_info = _frame_from_json(_parse_json(files["items.json"], "items.json", folder), n_items, "items.json")
    if "users.json" in files:
        user_info = _frame_from_json(_parse_json(files["users.json"], "users.json", folder), n_users, "users.json")
    metrics = _parse_json(files["metrics.json"], "metrics.json", folder)
    history = []
    for line in files["history.jsonl"].decode("utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                history.append(json.loads(line))
            except ValueError:
                raise RunError(f"history.jsonl in {folder.name!r} holds a line that is not JSON.") from None
    return Run(
        id=folder.name, path=folder, config=cfg, model=model, users=users, items=items, item_info=item_info,
        user_info=user_info, metrics=metrics if isinstance(metrics, dict) else {}, history=history,
        train_user=train_user, train_item=train_item, train_rating=arr("train_rating", np.float32),
        train_timestamp=train_time, test_user=test_user, test_item=test_item,
        test_rating=arr("test_rating", np.float32), test_timestamp=test_time,
        test_negatives=negatives, created=str(info.get("created", "")), name=clean_name(info.get("name", "")),
        device=str(info.get("device", "")), train_seconds=float(info.get("train_seconds") or 0.0), info=info,
    )


_CACHE_SIZE = 8
_cache: OrderedDict[tuple, Run] = OrderedDict()
_cache_lock = threading.Lock()


def _manifest_key(folder: Path) -> tuple | None:
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
    folder = Path(run) if isinstance(run, os.PathLike) else _run_path(run, models_dir)
    key = _manifest_key(folder)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    loaded = _build(folder, _verify_all(folder))
    if key is not None and key == _manifest_key(folder):
        with _cache_lock:
            _cache[key] = loaded
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return loaded


def _forget(folder: Path) -> None:
    resolved = str(folder.resolve())
    with _cache_lock:
        for key in [k for k in _cache if k[0] == resolved]:
            del _cache[key]
    with _info_lock:
        for key in [k for k in _info_cache if k[0] == resolved]:
            del _info_cache[key]


# ---------------------------------------------------------------------------------------------
# Listing, cleaning, deleting, zipping

_info_cache: dict[tuple, RunInfo] = {}
_info_lock = threading.Lock()


def _info(folder: Path) -> RunInfo:
    """A run's list row; every listed file's checksum is verified (cached while no file changes)."""
    try:
        if not RUN_ID_RE.fullmatch(folder.name) or ".." in folder.name:
            raise RunError(f"{folder.name[:80]!r} is not a valid run id, so it cannot be opened.")
        if folder.is_symlink():
            raise RunError(f"{folder.name!r} is a symbolic link; run folders are plain folders.")
        manifest = _read_manifest(folder)
        key = _manifest_key(folder)
        with _info_lock:
            if key in _info_cache:
                return _info_cache[key]
        files = {fname: _checked_bytes(folder, fname, entry) for fname, entry in manifest["files"].items()}
        info = _parse_json(files["config.json"], "config.json", folder)
        cfg = _parse_config(info, folder)
        metrics = _parse_json(files["metrics.json"], "metrics.json", folder)
        row = RunInfo(id=folder.name, name=clean_name(info.get("name", "")), path=str(folder),
                      created=str(info.get("created", "")), config=cfg.to_dict(),
                      metrics=metrics if isinstance(metrics, dict) else {},
                      train_seconds=float(info.get("train_seconds") or 0.0), device=str(info.get("device", "")),
                      dataset=str((info.get("dataset") or {}).get("name", "")), model=cfg.model.model,
                      epochs=info.get("epochs"), stopped=bool(info.get("stopped", False)))
        with _info_lock:
            _info_cache[key] = row
            if len(_info_cache) > 1024:
                _info_cache.pop(next(iter(_info_cache)))
        return row
    except RunError as exc:
        return _refused(folder, str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        return _refused(folder, f"cannot be read: {exc}")


def _refused(folder: Path, error: str) -> RunInfo:
    return RunInfo(id=folder.name, name="", path=str(folder), created="", config=None, metrics={},
                   train_seconds=None, device="", error=error)


def list_runs(models_dir: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every folder in the models folder, newest first. Never raises for a bad folder: it is listed
    with `error` saying why it cannot be loaded. Temporary `.tmp-*` folders (saves in progress or
    interrupted) and other hidden entries are skipped; see `incomplete_runs` / `clean_incomplete`."""
    root = _root(models_dir)
    try:
        entries = [p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunError(f"Cannot read the models folder {root}: {exc.strerror}.") from None
    rows = [_info(p) for p in entries]
    good = sorted((r for r in rows if r.error is None), key=lambda r: (r.created, r.id), reverse=True)
    bad = sorted((r for r in rows if r.error is not None), key=lambda r: r.id)
    return good + bad


def incomplete_runs(models_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of temporary folders left by saves (or deletes) in progress or interrupted."""
    root = _root(models_dir)
    try:
        return sorted(p.name for p in root.iterdir() if p.name.startswith(TMP_PREFIX))
    except OSError:
        return []


def clean_incomplete(models_dir: str | os.PathLike | None = None, *, force: bool = False,
                     min_age_seconds: float = 60.0) -> list[str]:
    """Removes `.tmp-*` leftovers older than a minute (a save in progress is younger), or all of them
    with `force=True`; returns the names removed."""
    root = _root(models_dir)
    removed = []
    now = time.time()
    for name in incomplete_runs(root):
        path = root / name
        try:
            age = now - os.stat(path, follow_symlinks=False).st_mtime
        except OSError:
            continue
        if force or age >= min_age_seconds:
            if path.is_symlink() or not path.is_dir():
                path.unlink(missing_ok=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(name)
    return removed


def delete_run(run_id: str, *, models_dir: str | os.PathLike | None = None) -> None:
    """Deletes a run. The folder is first renamed to a `.tmp-*` name (atomic), so an interrupted
    delete never leaves a half-deleted folder that looks like a run."""
    folder = _run_path(run_id, models_dir)
    if not folder.is_dir():
        raise RunError(f"No run {run_id!r} in {folder.parent}.")
    _forget(folder)
    doomed = folder.parent / f"{TMP_PREFIX}deleted-{run_id}-{secrets.token_hex(3)}"
    try:
        os.rename(folder, doomed)
    except OSError as exc:
        raise RunError(f"Could not delete run {run_id!r}: {exc.strerror}.") from None
    shutil.rmtree(doomed, ignore_errors=True)


def zip_run(run_id: str, *, models_dir: str | os.PathLike | None = None) -> bytes:
    """The run folder as a zip archive in memory (files under '<run id>/'), checked first."""
    folder = _run_path(run_id, models_dir)
    files = _verify_all(folder)
    buffer = io.BytesIO()
    # Level 1: a third of the size for a fifth of level 6's time (ML-1M run: 28 -> 12 MB in 0.8 s).
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for fname in sorted(files):
            zf.writestr(f"{run_id}/{fname}", files[fname])
        zf.writestr(f"{run_id}/{MANIFEST}", _read_regular(folder / MANIFEST))
    return buffer.getvalue()


__all__ = ["FORMAT", "FORMAT_VERSION", "Run", "RunInfo", "clean_incomplete", "clean_name", "delete_run",
           "incomplete_runs", "list_runs", "load_run", "models_dir", "new_run_id", "run_ref", "save_run",
           "validate_run_id", "validate_run_name", "zip_run"]
