"""The on-disk format of a run folder: what each file holds, how it is encoded (JSON and safetensors,
never pickle), how a folder is checked against its manifest and rebuilt into a `Run`.

`FORMAT_VERSION` is written into every manifest; a folder of another version is refused with a
message naming both versions (`read_manifest`). Bump it when a file's meaning changes, and teach
`build_run` to read the old version or say why it cannot.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ncf.config import RunConfig
from ncf.data.dataset import Vocab
from ncf.data.split import Split, pair_times
from ncf.errors import ConfigError, RunError
from ncf.runs.paths import clean_name
from ncf.runs.run import Run

if TYPE_CHECKING:  # torch and the trainer load only when a run is saved
    from ncf.train import TrainResult

FORMAT = "ncf-run"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_FILES = ("config.json", "weights.safetensors", "vocab.json", "interactions.safetensors",
                  "history.jsonl", "metrics.json")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # names inside a run folder: no paths


# ---------------------------------------------------------------------------------------------
# Writing


def jsonable(value):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def json_bytes(obj) -> bytes:
    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")


def frame_to_json(df: pd.DataFrame | None) -> dict | None:
    if df is None or len(df.columns) == 0:
        return None
    columns = {}
    for col in df.columns:
        values = df[col]
        values = values.astype(object).where(values.notna(), None)
        columns[str(col)] = [jsonable(v) for v in values.tolist()]
    return {"n": len(df), "columns": columns}


def _frame_from_json(obj: dict | None, n: int, what: str) -> pd.DataFrame | None:
    if obj is None:
        return None
    columns = obj.get("columns") if isinstance(obj, dict) else None
    if not isinstance(columns, dict) or any(not isinstance(v, list) or len(v) != n for v in columns.values()):
        raise RunError(f"{what} does not hold one row per id ({n:,} expected); the run folder is damaged.")
    return pd.DataFrame(columns)


def interactions_bytes(split: Split) -> bytes:
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
    lookup = pair_times(split.dataset)
    train_time = test_time = None
    if lookup is not None:
        train_time, test_time = lookup(split.train_user, split.train_item), lookup(split.test_user, split.test_item)
    if train_time is not None and test_time is not None:
        # Seconds as int32 offsets from the earliest time where they fit (4 bytes a row instead of 8).
        base = int(min(train_time.min(initial=0), test_time.min(initial=0))) if len(train_time) else 0
        span = int(max(train_time.max(initial=base), test_time.max(initial=base))) - base
        offset_type = np.int32 if span < 2**31 else np.int64
        tensors["timestamp_base"] = np.asarray([base], dtype=np.int64)
        tensors["train_timestamp"] = (train_time - base).astype(offset_type)
        tensors["test_timestamp"] = (test_time - base).astype(offset_type)
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata={"format": FORMAT})


def weights_bytes(model) -> bytes:
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


def config_dict(result: TrainResult, cfg: RunConfig, split: Split, name: str, created: datetime) -> dict:
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
        "device": str(result.device),
        "train_seconds": float(result.train_seconds),
        "samples_per_second": float(result.samples_per_second),
        "epochs": int(result.epochs),
        "stopped": bool(result.stopped),
        "versions": _versions(),
    }


# ---------------------------------------------------------------------------------------------
# Reading and checking


def read_regular(path: Path) -> bytes:
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


def read_manifest(folder: Path) -> dict:
    if not folder.is_dir():
        raise RunError(f"No run folder at {folder}.")
    if not (folder / MANIFEST).is_file():
        raise RunError(f"{folder.name!r} is not an ncf run folder: it has no {MANIFEST} (it was not written by "
                       f"NCF Lab, or its save did not finish).")
    try:
        manifest = json.loads(read_regular(folder / MANIFEST))
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


def checked_bytes(folder: Path, fname: str, entry: dict) -> bytes:
    data = read_regular(folder / fname)
    if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise RunError(f"{fname} was modified or truncated after the run was saved "
                       f"({len(data):,} bytes, {entry['size']:,} expected, checksum "
                       f"{'differs' if len(data) == entry['size'] else 'not checked'}); refusing to load "
                       f"{folder.name!r}.")
    return data


def verify_all(folder: Path) -> dict[str, bytes]:
    """Every file the manifest lists, checked against its size and sha256."""
    manifest = read_manifest(folder)
    return {fname: checked_bytes(folder, fname, entry) for fname, entry in manifest["files"].items()}


def parse_json(data: bytes, fname: str, folder: Path):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RunError(f"{fname} in {folder.name!r} is not valid JSON.") from None


def parse_config(info, folder: Path) -> RunConfig:
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


def build_run(folder: Path, files: dict[str, bytes]) -> Run:
    from safetensors.torch import load as load_tensors

    from ncf.models import build_model

    info = parse_json(files["config.json"], "config.json", folder)
    cfg = parse_config(info, folder)
    vocab = parse_json(files["vocab.json"], "vocab.json", folder)
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
            features = FeatureSet.empty_like(parse_json(files["features.json"], "features.json", folder),
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
        item_info = _frame_from_json(parse_json(files["items.json"], "items.json", folder), n_items, "items.json")
    if "users.json" in files:
        user_info = _frame_from_json(parse_json(files["users.json"], "users.json", folder), n_users, "users.json")
    metrics = parse_json(files["metrics.json"], "metrics.json", folder)
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

