"""What a loaded run offers (`Run`) and what the runs list shows of one (`RunInfo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncf.config import RunConfig
from ncf.data.dataset import Dataset, Vocab
from ncf.data.split import Split

# From this many training rows, a run whose rows are not grouped by user finds one user's rows by a
# scan (0.03-0.2 s for 25M rows) instead of grouping them all by a stable sort first (10 s under load).
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
