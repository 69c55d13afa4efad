"""Rows -> `Dataset`: the one builder every source goes through (a user's file, a MovieLens folder,
a zip). Ids are encoded to contiguous indices, timestamps parsed, a pair rated twice keeps its latest
rating, and item and user metadata are aligned to the vocabularies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ncf.data.dataset import Dataset, Vocab
from ncf.data.extra import EXTRA, by_side, merge_info
from ncf.errors import DataError

EXPECTED = "Expected a table of user, item[, rating[, timestamp]] rows."


def _ids(values: pd.Series) -> np.ndarray:
    """Ids as int64 where every id is an integer, else as strings."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(np.int64)
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(np.float64)
        if np.all(arr == np.floor(arr)):
            return arr.astype(np.int64)
    return values.astype(str).str.strip().to_numpy(dtype=object)


def _timestamps(values: pd.Series, label: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 seconds and a mask of the values that could be read."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        if pd.api.types.is_integer_dtype(values.dtype):
            seconds, ok = values.to_numpy(np.int64), np.ones(len(values), dtype=bool)
        else:
            arr = values.to_numpy(np.float64)
            ok = np.isfinite(arr)
            seconds = np.where(ok, arr, 0).astype(np.int64)
        sample = seconds[ok][:: max(1, len(seconds) // 10_000)]
        if len(sample) and np.median(sample) > 100_000_000_000:  # milliseconds since 1970
            seconds = seconds // 1000
        return seconds, ok
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    ok = parsed.notna().to_numpy()
    if not ok.any():
        raise DataError(
            f"{label}: the timestamp column holds values such as {values.iloc[0]!r} that are neither numbers nor "
            "dates. Expected Unix seconds or dates like 2020-01-31, or no timestamp column (columns={'timestamp': None})."
        )
    seconds = ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).fillna(0).to_numpy(np.int64)
    return seconds, ok


def latest_per_pair(user: np.ndarray, item: np.ndarray, timestamp: np.ndarray | None, n_items: int) -> np.ndarray | None:
    """Row numbers that keep one row per (user, item), the latest (by timestamp, then file order);
    None when there are no duplicates.

    A sort finds duplicated keys (much faster than hashing 25M keys); only the rows that share a
    key are then ordered by time to pick each pair's latest.
    """
    key = user * n_items + item
    ordered = np.sort(key)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated) == 0:
        return None
    dup_keys = np.unique(repeated)
    pos = np.minimum(np.searchsorted(dup_keys, key), len(dup_keys) - 1)
    involved = np.flatnonzero(dup_keys[pos] == key)  # rows whose pair occurs more than once
    time = timestamp[involved] if timestamp is not None else np.zeros(len(involved), dtype=np.int64)
    order = involved[np.lexsort((involved, time, key[involved]))]  # by pair, then time, then row
    sorted_key = key[order]
    is_last = np.ones(len(order), dtype=bool)
    is_last[:-1] = sorted_key[1:] != sorted_key[:-1]
    keep = np.ones(len(key), dtype=bool)
    keep[involved] = False
    keep[order[is_last]] = True
    return np.flatnonzero(keep)


def encode_ids(values: np.ndarray, kind: str) -> tuple[Vocab, np.ndarray]:
    """`Vocab.encode`, with a fast path for the usual case of non-negative integer ids in a modest
    range: a presence table and a cumulative sum instead of hashing every row (seconds at 25M rows)."""
    if values.dtype.kind in "iu" and len(values) and values.min() >= 0 and values.max() < 50_000_000:
        present = np.zeros(int(values.max()) + 1, dtype=bool)
        present[values] = True
        code_of = np.cumsum(present, dtype=np.int64) - 1  # raw id -> its rank among the ids present
        return Vocab(np.flatnonzero(present).astype(np.int64), kind), code_of[values]
    return Vocab.encode(values, kind)


def align_info(info: pd.DataFrame | None, vocab: Vocab) -> pd.DataFrame | None:
    """`info` (indexed by raw id) as one row per vocabulary index, in order."""
    if info is None:
        return None
    info = info[~info.index.duplicated(keep="first")]
    if not vocab.is_numeric:
        info = info.set_axis(info.index.astype(str))
    elif not pd.api.types.is_numeric_dtype(info.index.dtype):
        numeric = pd.to_numeric(info.index, errors="coerce")
        info = info[~np.isnan(numeric)].set_axis(numeric[~np.isnan(numeric)].astype(np.int64))
    out = info.reindex(pd.Index(vocab.raw_ids)).reset_index(drop=True)
    if "title" in out:  # an item the metadata doesn't know is called by its id
        fallback = pd.Series(vocab.raw_ids, dtype=object).astype(str)
        out["title"] = out["title"].astype(object).where(out["title"].notna(), fallback).astype(str)
    if "genres" in out:
        out["genres"] = out["genres"].fillna("").astype(str)
    return out


def to_dataset(
    frame: pd.DataFrame,
    *,
    name: str,
    source: str,
    label: str = "",
    item_info: pd.DataFrame | None = None,
    user_info: pd.DataFrame | None = None,
    dropped: dict[str, int] | None = None,
) -> Dataset:
    """Raw rows (user, item[, rating][, timestamp]) -> an indexed Dataset, all vectorised."""
    label = label or name
    dropped = dict(dropped or {})
    if frame.attrs.get("repeated_headers"):
        dropped["repeated header rows"] = frame.attrs["repeated_headers"]
    missing = frame["user"].isna().to_numpy() | frame["item"].isna().to_numpy()
    if "rating" in frame:
        missing |= ~np.isfinite(frame["rating"].to_numpy(np.float32))  # empty cells are NaN; '1e400' is inf
    if missing.any():
        dropped["missing user, item or rating"] = int(missing.sum())
        frame = frame[~missing]
    if len(frame) == 0:
        raise DataError(f"{label}: no complete rows (every row lacks a user, item or rating). {EXPECTED}")
    timestamp = None
    if "timestamp" in frame:
        timestamp, ok = _timestamps(frame["timestamp"], label)
        if not ok.all():
            dropped["unreadable timestamp"] = int((~ok).sum())
            frame, timestamp = frame[ok], timestamp[ok]
    users, user = encode_ids(_ids(frame["user"]), "user")
    items, item = encode_ids(_ids(frame["item"]), "item")
    rating = frame["rating"].to_numpy(np.float32) if "rating" in frame else None
    keep = latest_per_pair(user, item, timestamp, len(items))
    if keep is not None:
        dropped["duplicate (user, item) pairs, kept the latest"] = len(user) - len(keep)
        user, item = user[keep], item[keep]
        rating = None if rating is None else rating[keep]
        timestamp = None if timestamp is None else timestamp[keep]
    item_info, user_info = align_info(item_info, items), align_info(user_info, users)
    notes: list[str] = []
    extras = {c: frame[c].reset_index(drop=True) for c in frame.columns if str(c).startswith(EXTRA)}
    if extras:  # a table's extra columns: features of the users or of the items, where constant
        if keep is not None:
            extras = {c: v.iloc[keep].reset_index(drop=True) for c, v in extras.items()}
        by_user, by_item, notes = by_side(user, item, len(users), len(items), extras)
        user_info, item_info = merge_info(user_info, by_user), merge_info(item_info, by_item)
    return Dataset(
        name=name,
        user=user,
        item=item,
        rating=rating,
        timestamp=timestamp,
        users=users,
        items=items,
        item_info=item_info,
        user_info=user_info,
        dropped=dropped,
        source=source,
        notes=tuple(notes),
    )
