"""Item-based k nearest neighbours: cosine or BM25 similarities, the top K kept per item."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from ncf import registry
from ncf.classical.base import Classical
from ncf.config import ModelConfig

BM25_K1, BM25_B = 1.2, 0.75  # implicit's BM25Recommender defaults


def item_weights(x: sp.csr_matrix, similarity: str) -> sp.csc_matrix:
    """(n_users, n_items) weights whose column dot products are the item similarities: columns scaled
    to unit length (cosine), or implicit's bm25_weight of the item x user matrix (BM25)."""
    x = x.tocsc().astype(np.float64)
    if similarity == "cosine":
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        return (x @ sp.diags(1.0 / np.maximum(norms, 1e-12))).tocsc()
    # BM25 with items as documents and users as terms (implicit.nearest_neighbours.bm25_weight).
    coo = x.T.tocoo()  # (n_items, n_users)
    idf = np.log(coo.shape[0]) - np.log1p(np.bincount(coo.col, minlength=coo.shape[1]))  # N = documents
    lengths = np.asarray(coo.sum(axis=1)).ravel()
    length_norm = (1.0 - BM25_B) + BM25_B * lengths / max(lengths.mean(), 1e-12)
    data = coo.data * (BM25_K1 + 1.0) / (BM25_K1 * length_norm[coo.row] + coo.data) * idf[coo.col]
    return sp.csr_matrix((data, (coo.row, coo.col)), shape=coo.shape).T.tocsc()


def top_neighbours(w: sp.csc_matrix, k: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, k) indices and similarities of each item's k most similar other items (ties: lower
    index first)."""
    n_items = w.shape[1]
    index = np.zeros((n_items, k), dtype=np.int64)
    value = np.zeros((n_items, k), dtype=np.float32)
    wt = w.T.tocsr()
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        sims = torch.as_tensor((wt[start:stop] @ w).toarray())  # (C, n_items)
        sims[torch.arange(stop - start), torch.arange(start, stop)] = -math.inf  # not its own neighbour
        values, order = torch.sort(sims, dim=1, descending=True, stable=True)  # topk breaks ties arbitrarily
        index[start:stop] = order[:, :k].numpy()
        value[start:stop] = values[:, :k].clamp_min(0).numpy()
    return index, value


class ItemKNN(Classical):
    """Item-based k nearest neighbours: score(u, j) = Σ_{i ∈ I_u} s_ij over each i's top-K neighbours j."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        k = self.k = max(1, min(registry.setting(config, "neighbours"), n_items - 1))
        self.register_buffer("neighbour_index", torch.zeros(n_items, k, dtype=torch.long))
        self.register_buffer("neighbour_sim", torch.zeros(n_items, k))
        self._dense: torch.Tensor | None = None

    def similarity_matrix(self) -> torch.Tensor:
        """(n_items, n_items) S with S[i, j] = s_ij for j among i's neighbours, else 0 (built once)."""
        if self._dense is None or self._dense.device != self.neighbour_sim.device:
            s = torch.zeros(self.n_items, self.n_items, device=self.neighbour_sim.device)
            s.scatter_(1, self.neighbour_index, self.neighbour_sim)
            self._dense = s
        return self._dense

    def _score_rows(self, x):
        return x @ self.similarity_matrix()

    def item_similarity(self, item):
        return self.similarity_matrix()[item].clone()

    def _load_from_state_dict(self, *args, **kwargs):
        self._dense = None
        super()._load_from_state_dict(*args, **kwargs)

    @torch.no_grad()
    def fit(self, split, tcfg, *, progress=None, stop=None) -> bool:
        x = self.train_matrix(split)
        index, value = top_neighbours(item_weights(x, registry.setting(self.config, "similarity")), self.k)
        device = self.neighbour_sim.device
        self.neighbour_index.copy_(torch.as_tensor(index, device=device))
        self.neighbour_sim.copy_(torch.as_tensor(value, device=device))
        self._dense = None
        self.set_history(split.train_user, split.train_item)
        if progress is not None:
            progress(1, {})
        return False

    @staticmethod
    def describe(cfg, n_users, n_items):
        k = min(registry.setting(cfg, "neighbours"), n_items - 1)
        return [{"name": "neighbour lists", "shape": f"(B, {n_items})", "params": 2 * n_items * k,
                 "note": f"{n_items:,} items × {k} neighbours ({registry.setting(cfg, 'similarity')})"}]

