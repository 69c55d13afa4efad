"""The one clean, indexed form every ratings source is turned into.

Raw ids live only in the two `Vocab`s; everything else holds contiguous int64 indices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ncf.errors import UnknownIdError


class Vocab:
    """Maps raw ids (ints or strings) to contiguous indices 0..n-1 and back."""

    def __init__(self, raw_ids, kind: str = "id"):
        raw = np.asarray(raw_ids)
        if raw.dtype.kind in "OUS":
            raw = raw.astype(str).astype(object)
        self._raw = raw
        self.kind = kind  # "user" or "item": names the id in error messages
        self._lookup: pd.Index | None = None

    @classmethod
    def encode(cls, values, kind: str = "id") -> tuple[Vocab, np.ndarray]:
        """Builds the vocabulary of `values` (sorted) and returns it with their codes."""
        codes, uniques = pd.factorize(pd.Series(values), sort=True)
        return cls(np.asarray(uniques), kind), codes.astype(np.int64)

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def raw_ids(self) -> np.ndarray:
        return self._raw

    @property
    def is_numeric(self) -> bool:
        return self._raw.dtype.kind in "iuf"

    def _index(self) -> pd.Index:
        if self._lookup is None:
            self._lookup = pd.Index(self._raw)
        return self._lookup

    def coerce(self, raw_id):
        """A raw id as typed by a person ('42') in the vocabulary's own type (42)."""
        if self.is_numeric and isinstance(raw_id, str):
            try:
                return int(raw_id)
            except ValueError:
                return raw_id
        if not self.is_numeric and not isinstance(raw_id, str):
            return str(raw_id)
        return raw_id

    def index(self, raw_ids) -> np.ndarray:
        """Indices of raw ids; an unknown id raises `UnknownIdError` naming it."""
        scalar = np.isscalar(raw_ids) or isinstance(raw_ids, str)
        values = [self.coerce(raw_ids)] if scalar else [self.coerce(r) for r in raw_ids]
        idx = self._index().get_indexer(values)
        if (idx < 0).any():
            missing = values[int(np.flatnonzero(idx < 0)[0])]
            raise UnknownIdError(
                f"Unknown {self.kind} id {missing!r}: the dataset has {len(self):,} {self.kind}s"
                f" (for example {_plain(self._raw[0])!r} … {_plain(self._raw[-1])!r})."
            )
        return idx.astype(np.int64)

    def raw(self, indices) -> np.ndarray:
        return self._raw[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list:
        return [_plain(x) for x in self._raw]

    @classmethod
    def from_list(cls, values: list, kind: str = "id") -> Vocab:
        return cls(np.asarray(values, dtype=object if values and isinstance(values[0], str) else None), kind)


def _plain(x):
    """A numpy scalar as the Python value it holds, so messages read 42, not np.int64(42)."""
    return x.item() if hasattr(x, "item") else x


@dataclass(frozen=True, eq=False)
class PublishedTest:
    """The fixed test set of He et al.'s `Data/` files: one held-out item and 99 negatives per user."""

    user: np.ndarray  # (n_test,) int64 indices
    item: np.ndarray  # (n_test,) int64 indices
    negatives: np.ndarray  # (n_test, n_neg) int64 indices


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions as parallel arrays of indices, plus what is known about users and items.

    `item_info` / `user_info`, when present, have one row per index (0..n-1) in order:
    items carry `title` and `genres` ("Action|Comedy"), users whatever the source has.
    """

    name: str
    user: np.ndarray  # (n,) int64
    item: np.ndarray  # (n,) int64
    rating: np.ndarray | None  # (n,) float32; None for implicit feedback
    timestamp: np.ndarray | None  # (n,) int64 seconds; None when the source has none
    users: Vocab
    items: Vocab
    item_info: pd.DataFrame | None = None
    user_info: pd.DataFrame | None = None
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped
    source: str = ""  # how to load it again ("synthetic", "ml-100k", a path)
    published_test: PublishedTest | None = None
    notes: tuple[str, ...] = ()  # what reading it found worth saying (a file's column not used as a feature)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.user)

    @property
    def implicit(self) -> bool:
        return self.rating is None

    @property
    def density(self) -> float:
        return self.n_interactions / max(1, self.n_users * self.n_items)

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        if self.rating is None or len(self.rating) == 0:
            return None
        return float(self.rating.min()), float(self.rating.max())

    def titles(self, item_indices) -> list[str]:
        """Readable names of items: the title where known, else the raw id."""
        idx = np.asarray(item_indices, dtype=np.int64)
        if self.item_info is not None and "title" in self.item_info:
            return self.item_info["title"].to_numpy()[idx].tolist()
        return [str(x) for x in self.items.raw(idx)]

    def per_user_counts(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    def per_item_counts(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    def fingerprint(self) -> str:
        """A short hash of the interactions: the same data gives the same fingerprint anywhere."""
        h = hashlib.sha256()
        for arr in (self.user, self.item, self.rating, self.timestamp):
            if arr is not None:
                # The little-endian bytes, hashed in place (no copy where they are already): 0.4 s for
                # 25M rows, where copying each array first took three times as long.
                arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
                h.update(memoryview(arr).cast("B"))
        h.update(repr((self.n_users, self.n_items)).encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        counts = self.per_user_counts()
        s = {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "ratings": "implicit" if self.implicit else "{:g}–{:g}".format(*self.rating_scale),
            "density": self.density,
            "per_user_min": int(counts.min()) if len(counts) else 0,
            "per_user_median": float(np.median(counts)) if len(counts) else 0.0,
            "per_user_max": int(counts.max()) if len(counts) else 0,
            "timestamps": self.timestamp is not None,
            "titles": self.item_info is not None and "title" in self.item_info,
            "genres": self.item_info is not None and "genres" in self.item_info,
            "user_info": self.user_info is not None,
            "dropped": dict(self.dropped),
        }
        if self.notes:
            s["notes"] = list(self.notes)
        if self.published_test is not None:
            s["test_users"] = len(self.published_test.user)
            s["negatives_per_test_user"] = int(self.published_test.negatives.shape[1])
        return s
