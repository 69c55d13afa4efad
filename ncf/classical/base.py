"""What every classical model shares: the `Classical` contract (its own `fit`, scoring from each
user's known items), the sparse user x item matrix, pairs scored through `score_users` a bounded
number of users at a time, and the history buffers that a saved state resizes on load.

Each is a `ncf.models.Recommender` like the neural ones (same forward and `score_users`, tensors
only, saved as a state dict) with its own `fit(split, tcfg, progress=, stop=)`, which
`ncf.train.train` calls in place of the gradient loop. What a model needs at scoring time is held
as tensors (EASE's B, the factors, the neighbour lists, each user's known items), so a saved run
scores without scipy or `implicit`.

`fit` reports each of its `fit_steps` steps through `progress(step, info)` and checks `stop`
between steps; it returns True when stopped.

A new classical model is one file in this package (a `Classical` subclass) plus its entry in
`ncf.registry`, which names the class by its module path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ncf import registry
from ncf.config import ModelConfig, TrainConfig
from ncf.data import Split
from ncf.models import Recommender

Progress = Callable[[int, dict], None]
SCORE_CELLS = 1 << 22  # users x items scored at once inside `forward` (16 MB of float32)


def is_set(stop) -> bool:
    return stop is not None and stop.is_set()


def interaction_matrix(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """(n_users, n_items) binary CSR; a pair seen twice counts once."""
    x = sp.csr_matrix((np.ones(len(user), dtype=np.float32), (user, item)), shape=(n_users, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


class Classical(Recommender):
    """A model with its own `fit`. Those that score from each user's known items (`uses_history`)
    keep them as a CSR pair of buffers whose sizes come from the data; `_load_from_state_dict`
    resizes them to what a saved state holds, so a run rebuilds from `build_model` alone."""

    uses_history = True
    _variable_buffers = ("history_indptr", "history_indices")

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        if self.uses_history:
            self.register_buffer("history_indptr", torch.zeros(n_users + 1, dtype=torch.long))
            self.register_buffer("history_indices", torch.zeros(0, dtype=torch.long))

    # -- the contract -------------------------------------------------------------------------------
    fit_steps = 1  # progress steps of `fit`, for the start event

    def fit(self, split: Split, tcfg: TrainConfig, *, progress: Progress | None = None, stop=None) -> bool:
        raise NotImplementedError

    def score_new_user(self, items: torch.Tensor) -> torch.Tensor:
        """(n,) item indices a new user has -> (n_items,) scores, without refitting the model."""
        x = torch.zeros(1, self.n_items, device=items.device)
        x[0, items] = 1.0
        return self._score_rows(x)[0]

    def item_similarity(self, item: int) -> torch.Tensor | None:
        """(n_items,) how alike each item is to `item` in this model's own terms; None: compare item vectors."""
        return None

    def _score_rows(self, x: torch.Tensor) -> torch.Tensor:  # (B, n_items) known items -> (B, n_items) scores
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------------
    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:  # (P,), (P,) -> (P,)
        """Pairs scored through `score_users`, a bounded number of users at a time."""
        uniq, inverse = torch.unique(user, return_inverse=True)
        out = torch.empty(len(user), device=user.device)
        chunk = max(1, SCORE_CELLS // max(1, self.n_items))
        for start in range(0, len(uniq), chunk):
            scores = self.score_users(uniq[start:start + chunk])  # (C, n_items)
            mask = (inverse >= start) & (inverse < start + chunk)
            out[mask] = scores[inverse[mask] - start, item[mask]].float()
        return out

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self._score_rows(self.history_rows(users))

    def train_matrix(self, split: Split) -> sp.csr_matrix:
        """(n_users, n_items) binary CSR of the split's training pairs. Validation pairs stay out of
        every fit, as for the neural models: choices are made on them."""
        return interaction_matrix(split.train_user, split.train_item, self.n_users, self.n_items)

    def set_history(self, user: np.ndarray, item: np.ndarray) -> None:
        x = interaction_matrix(user, item, self.n_users, self.n_items)
        device = self.history_indptr.device
        self.history_indptr = torch.as_tensor(x.indptr.astype(np.int64), device=device)
        self.history_indices = torch.as_tensor(x.indices.astype(np.int64), device=device)

    def history_rows(self, users: torch.Tensor) -> torch.Tensor:
        """(B,) users -> (B, n_items) float 0/1 rows of their known items."""
        users = users.to(self.history_indptr.device)
        starts, ends = self.history_indptr[users], self.history_indptr[users + 1]
        counts = ends - starts
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
        offsets = torch.arange(int(counts.sum()), device=users.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        cols = self.history_indices[torch.repeat_interleave(starts, counts) + offsets]
        x = torch.zeros(len(users), self.n_items, device=users.device)
        x[rows, cols] = 1.0
        return x

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self._variable_buffers:
            key = prefix + name
            if key in state_dict and name in self._buffers:
                current = self._buffers[name]
                self._buffers[name] = torch.empty_like(state_dict[key], device=current.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def describe(cfg: ModelConfig, n_users: int, n_items: int) -> list[dict]:
        spec = registry.get(cfg.model)
        return [{"name": spec.label, "shape": "(B, n_items)", "params": 0, "note": spec.description}]


class FrozenEmbedding(nn.Embedding):
    """A factor table: an nn.Embedding (so explore's vectors and PCA work on it) that nothing trains."""

    def __init__(self, n: int, dim: int):
        super().__init__(n, dim)
        self.weight.requires_grad_(False)
        nn.init.zeros_(self.weight)



class FactorModel(Classical):
    """A model that scores by the dot product of a user's and an item's factors (iALS, PureSVD): two
    frozen tables of `resolved_factors` columns, shown under the model's name in `embedding_tables`.
    Subclasses name their tables and score for the architecture view, and fill the tables in `fit`."""

    uses_history = False
    user_table = ("user factors", "")  # (row name, what follows "<n> users × k" in its note)
    item_table = ("item factors", "")
    score_note = "score = p_u · q_i"

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.user_emb = FrozenEmbedding(n_users, config.resolved_factors)
        self.item_emb = FrozenEmbedding(n_items, config.resolved_factors)

    def score_users(self, users):
        return self.user_emb(users) @ self.item_emb.weight.T

    def embedding_tables(self):
        return {self.config.model: (self.user_emb, self.item_emb)}

    @classmethod
    def describe(cls, cfg, n_users, n_items):
        k = cfg.resolved_factors
        (user_name, user_note), (item_name, item_note) = cls.user_table, cls.item_table
        return [{"name": user_name, "shape": f"(B, {k})", "params": n_users * k,
                 "note": f"{n_users:,} users × {k}{user_note}"},
                {"name": item_name, "shape": f"(B, {k})", "params": n_items * k,
                 "note": f"{n_items:,} items × {k}{item_note}"},
                {"name": "dot product", "shape": "(B, 1)", "params": 0, "note": cls.score_note}]
