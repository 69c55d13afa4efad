"""The most-popular baseline."""

from __future__ import annotations

import numpy as np
import torch

from ncf.classical.base import Classical
from ncf.config import ModelConfig, TrainConfig
from ncf.data import Split


class ItemPop(Classical):
    """The most-popular baseline: an item's score is how often it occurs in training (for the
    explicit objective, its mean training rating shrunk toward the global mean)."""

    PRIOR_COUNT = 10.0  # ratings' worth of global mean mixed into each item's mean
    uses_history = False

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.register_buffer("popularity", torch.zeros(n_items))

    @torch.no_grad()
    def fit(self, split: Split, tcfg: TrainConfig | None = None, *, progress=None, stop=None) -> bool:
        self.fit_counts(split.train_item, split.train_rating)
        if progress is not None:
            progress(1, {})
        return False

    @torch.no_grad()
    def fit_counts(self, train_item: np.ndarray, train_rating: np.ndarray | None = None) -> ItemPop:
        counts = np.bincount(train_item, minlength=self.n_items).astype(np.float64)
        if self.explicit and train_rating is not None and len(train_rating):
            sums = np.bincount(train_item, weights=train_rating, minlength=self.n_items)
            mean = float(train_rating.mean())
            values = (sums + self.PRIOR_COUNT * mean) / (counts + self.PRIOR_COUNT)
        else:
            values = counts
        self.popularity.copy_(torch.as_tensor(values, dtype=torch.float32))
        return self

    def forward(self, user, item):
        return self.popularity[item]

    def score_users(self, users):
        return self.popularity.expand(len(users), -1).clone()

    def score_new_user(self, items):
        return self.popularity.clone()

    @staticmethod
    def describe(cfg, n_users, n_items):
        return [{"name": "item popularity", "shape": "(B, 1)", "params": 0,
                 "note": "score = number of training interactions of the item (nothing learned)"}]

