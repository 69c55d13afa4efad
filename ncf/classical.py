"""The models not fitted by gradient descent: most-popular, EASE, iALS, item-kNN and PureSVD.

Each is a `ncf.models.Recommender` like the neural ones (same forward and `score_users`, tensors
only, saved as a state dict) with its own `fit(split, tcfg, progress=, stop=)`, which
`ncf.train.train` calls in place of the gradient loop. What a model needs at scoring time is held
as tensors (EASE's B, the factors, the neighbour lists, each user's known items), so a saved run
scores without scipy or `implicit`.

`fit` reports each of its `fit_steps` steps through `progress(step, info)` and checks `stop`
between steps; it returns True when stopped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ncf import registry
from ncf.config import ModelConfig, TrainConfig
from ncf.data import Split
from ncf.errors import ConfigError
from ncf.evaluate import hit_and_ndcg, rank_against
from ncf.models import Recommender

Progress = Callable[[int, dict], None]
SCORE_CELLS = 1 << 22  # users x items scored at once inside `forward` (16 MB of float32)
# Fraction of the free memory EASE may plan to use for its dense item x item matrices.
EASE_MEMORY_SHARE = 0.5
HOLDOUT_NEGATIVES = 99  # candidates per held-out interaction when choosing EASE's λ


def _is_set(stop) -> bool:
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


class _Frozen(nn.Embedding):
    """A factor table: an nn.Embedding (so explore's vectors and PCA work on it) that nothing trains."""

    def __init__(self, n: int, dim: int):
        super().__init__(n, dim)
        self.weight.requires_grad_(False)
        nn.init.zeros_(self.weight)


# ---------------------------------------------------------------------------------------------
# Most popular


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


# ---------------------------------------------------------------------------------------------
# EASE


def free_memory_bytes(device: torch.device) -> int:
    """Memory free for new tensors on `device`: the GPU's free memory, or the machine's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


# Above this bound on the condition number of XᵀX + λI, EASE inverts in float64.
EASE_FLOAT32_MAX_CONDITION = 1e5


def ease_dtype(gram: sp.spmatrix | np.ndarray, reg: float) -> torch.dtype:
    """float32 while XᵀX + λI is well conditioned: its largest eigenvalue is at most the largest row
    sum (Gershgorin), its smallest at least λ. On ML-1M (users 1-2999) the bound is about 1e3 at
    λ = 300, and float32's B differs from float64's by at most 1e-6 (entries up to 0.24) at half
    the time (2.0 s against 4.1 s on this 2-core machine); a GPU's float64 rate is often a fraction
    of its float32 one."""
    bound = float(np.abs(gram).sum(axis=1).max()) + reg if gram.shape[0] else reg
    return torch.float32 if bound / reg <= EASE_FLOAT32_MAX_CONDITION else torch.float64


def check_ease_size(n_items: int, device: torch.device, itemsize: int = 4) -> None:
    """Refuses, before any allocation, a catalogue whose dense item x item matrices would not fit."""
    need = 3 * n_items * n_items * itemsize  # the Gram matrix, its inverse, B
    limit = int(free_memory_bytes(device) * EASE_MEMORY_SHARE)
    if need > limit:
        raise ConfigError(
            f"EASE needs dense {n_items:,} x {n_items:,} item-item matrices: {need / 1e9:.1f} GB on "
            f"{device.type}, over the limit of {limit / 1e9:.1f} GB (half the free memory). Use ials or "
            f"itemknn for a catalogue this large, or keep only items with more interactions.")


def ease_weights(gram: torch.Tensor, reg: float) -> torch.Tensor:
    """Steck's closed form: B = I - P diag(1 / diag P), P = (G + λI)^-1; diag(B) = 0."""
    g = gram.clone()
    g.diagonal().add_(reg)
    p = torch.cholesky_inverse(torch.linalg.cholesky(g))
    b = p / (-p.diagonal())[None, :]
    b.diagonal().zero_()
    return b


def latest_per_user(split: Split) -> np.ndarray:
    """Row numbers (into split.train_*) of each user's latest training interaction, for users with at
    least two: by timestamp where the data has them, else the last row. Reads only training rows."""
    times = _train_times(split)
    user = split.train_user
    order = np.lexsort((np.arange(len(user)), times, user))  # by user, then time, then row
    sorted_users = user[order]
    last = np.r_[sorted_users[1:] != sorted_users[:-1], True]
    first = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    keep = last & ~first  # the latest of users with two or more
    return order[keep]


def _train_times(split: Split) -> np.ndarray:
    """Timestamps of the training rows, looked up by (user, item) in the dataset; the row order
    where the data has none."""
    ds = split.dataset
    if ds.timestamp is None or ds.n_interactions == 0:
        return np.arange(split.n_train)
    keys = ds.user.astype(np.int64) * ds.n_items + ds.item
    order = np.lexsort((ds.timestamp, keys))
    keys_sorted, times_sorted = keys[order], ds.timestamp[order]
    distinct = np.r_[keys_sorted[1:] != keys_sorted[:-1], True]
    keys_sorted, times_sorted = keys_sorted[distinct], times_sorted[distinct]
    k = split.train_user.astype(np.int64) * ds.n_items + split.train_item
    pos = np.minimum(np.searchsorted(keys_sorted, k), len(keys_sorted) - 1)
    if len(k) and not (keys_sorted[pos] == k).all():
        return np.arange(split.n_train)
    return times_sorted[pos]


def holdout_negatives(train: sp.csr_matrix, users: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(len(users), n) items drawn uniformly among those each user has no training interaction with
    (a user's held-out item is in neither; nothing but training rows is read)."""
    rng = np.random.default_rng(seed)
    n_items = train.shape[1]
    out = rng.integers(0, n_items, size=(len(users), n))
    for _ in range(100):
        seen = np.asarray(train[np.repeat(users, n), out.ravel()]).reshape(out.shape) > 0
        if not seen.any():
            break
        out[seen] = rng.integers(0, n_items, size=int(seen.sum()))
    return out


class EASE(Classical):
    """Steck (2019), "Embarrassingly Shallow Autoencoders for Sparse Data": scores x_u B."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.register_buffer("weights", torch.zeros(n_items, n_items))  # B
        self.register_buffer("reg_used", torch.zeros(()))  # the λ fitted (chosen or given)

    @property
    def fit_steps(self) -> int:
        return 1 if self.config.reg is not None else len(registry.EASE_LAMBDAS) + 1

    def _score_rows(self, x):
        return x @ self.weights

    def item_similarity(self, item):
        return self.weights[item].clone()  # how much having `item` adds to each other item's score

    @torch.no_grad()
    def fit(self, split, tcfg, *, progress=None, stop=None) -> bool:
        device = self.weights.device
        check_ease_size(self.n_items, device)
        known = split  # validation pairs stay out of the fit, as for the neural models: choices are made on them
        reg = self.config.reg
        step = 0
        if reg is None:
            reg, stopped, step = self.choose_reg(split, tcfg, progress=progress, stop=stop)
            if stopped:
                return True
        x = interaction_matrix(known.train_user, known.train_item, self.n_users, self.n_items)
        self.weights.copy_(ease_weights(self._gram(x, reg), reg).float())
        self.reg_used.fill_(reg)
        self.set_history(known.train_user, known.train_item)
        if progress is not None:
            progress(step + 1, {"reg": reg})
        return False

    @torch.no_grad()
    def choose_reg(self, split: Split, tcfg: TrainConfig, *, progress=None, stop=None,
                   grid=registry.EASE_LAMBDAS) -> tuple[float, bool, int]:
        """λ from `grid` that ranks held-out interactions best (sampled HR@k, then NDCG@k): the split's
        validation pairs where it has them, else each user's latest training interaction, held out of
        the fit. Reads no test item. Returns (λ, stopped, steps reported)."""
        device = self.weights.device
        if split.has_validation:
            fit_user, fit_item = split.train_user, split.train_item
            held_user, held_item = split.valid_user, split.valid_item
            negatives = split.valid_negatives
        else:
            rows = latest_per_user(split)
            mask = np.ones(split.n_train, dtype=bool)
            mask[rows] = False
            fit_user, fit_item = split.train_user[mask], split.train_item[mask]
            held_user, held_item = split.train_user[rows], split.train_item[rows]
            full = interaction_matrix(split.train_user, split.train_item, self.n_users, self.n_items)
            negatives = holdout_negatives(full, held_user, HOLDOUT_NEGATIVES, seed=tcfg.seed)
        x = interaction_matrix(fit_user, fit_item, self.n_users, self.n_items)
        x_held = torch.as_tensor(x[held_user].toarray(), dtype=torch.float32, device=device)  # (n_held, n_items)
        cand = torch.as_tensor(np.concatenate([held_item[:, None], negatives], axis=1), device=device)
        best: tuple[tuple[float, float], float] | None = None
        gram = self._gram(x, min(grid))  # the precision the smallest λ needs serves them all
        for i, lam in enumerate(grid, start=1):
            b = ease_weights(gram, lam).float()
            # One dense product per chunk of users, then the candidates' columns. On ML-1M a λ takes
            # 1.7 s so; torch's sparse product took 13 s, a gather per (known item, candidate) 2.5 s.
            step = max(1, SCORE_CELLS // self.n_items)
            scores = torch.cat([(x_held[i:i + step] @ b).gather(1, cand[i:i + step])
                                for i in range(0, len(x_held), step)])  # (n_held, 1 + n_neg)
            hit, ndcg = hit_and_ndcg(rank_against(scores[:, 0], scores[:, 1:]), tcfg.k)
            hr, nd = float(hit.mean()), float(ndcg.mean())
            if best is None or (hr, nd) > best[0]:
                best = ((hr, nd), lam)
            if progress is not None:
                progress(i, {"reg": lam, f"holdout_hr@{tcfg.k}": hr, f"holdout_ndcg@{tcfg.k}": nd})
            if _is_set(stop):
                return lam, True, i
        return best[1], False, len(grid)

    def _gram(self, x: sp.csr_matrix, reg: float) -> torch.Tensor:
        """XᵀX as a dense tensor on the model's device, in the precision λ = `reg` needs."""
        gram = (x.T @ x).toarray()
        dtype = ease_dtype(gram, reg)
        if dtype == torch.float64:
            check_ease_size(self.n_items, self.weights.device, itemsize=8)
        return torch.as_tensor(gram, dtype=dtype, device=self.weights.device)

    @staticmethod
    def describe(cfg, n_users, n_items):
        reg = "chosen on held-out interactions" if cfg.reg is None else f"λ = {cfg.reg:g}"
        return [{"name": "item-item weights B", "shape": f"(B, {n_items})", "params": n_items * n_items,
                 "note": f"{n_items:,} x {n_items:,}, zero diagonal, closed form ({reg})"}]


# ---------------------------------------------------------------------------------------------
# iALS


class IALS(Classical):
    """Hu, Koren & Volinsky's implicit ALS, fitted by the `implicit` library (its GPU build where
    there is one); the factors are copied into tensors, so scoring and loading need no `implicit`."""

    uses_history = False

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.user_emb = _Frozen(n_users, config.resolved_factors)
        self.item_emb = _Frozen(n_items, config.resolved_factors)

    @property
    def fit_steps(self) -> int:
        return registry.setting(self.config, "iterations")

    def score_users(self, users):
        return self.user_emb(users) @ self.item_emb.weight.T

    def embedding_tables(self):
        return {"ials": (self.user_emb, self.item_emb)}

    def fit(self, split, tcfg, *, progress=None, stop=None) -> bool:
        import implicit.gpu
        from implicit.als import AlternatingLeastSquares

        cfg = self.config
        known = split  # validation pairs stay out of the fit (see EASE.fit)
        x = interaction_matrix(known.train_user, known.train_item, self.n_users, self.n_items)
        use_gpu = bool(implicit.gpu.HAS_CUDA) and self.item_emb.weight.device.type == "cuda"
        # One iteration per call: `fit` continues from the factors it holds, so each sweep can be
        # reported and a stop honoured between sweeps.
        from threadpoolctl import threadpool_limits

        kwargs = {} if use_gpu else {"num_threads": torch.get_num_threads()}
        blas_one_thread = threadpool_limits(1, "blas")  # implicit's advice: its own threads, BLAS on one
        try:
            als = AlternatingLeastSquares(factors=cfg.resolved_factors, regularization=registry.setting(cfg, "reg"),
                                          alpha=registry.setting(cfg, "confidence"), iterations=1,
                                          random_state=tcfg.seed, use_gpu=use_gpu, **kwargs)
            stopped = False
            for it in range(1, self.fit_steps + 1):
                als.fit(x, show_progress=False)
                if progress is not None:
                    progress(it, {})
                if _is_set(stop) and it < self.fit_steps:
                    stopped = True
                    break
        finally:
            blas_one_thread.restore_original_limits()
        if use_gpu:
            als = als.to_cpu()
        with torch.no_grad():
            self.user_emb.weight.copy_(torch.as_tensor(np.asarray(als.user_factors)))
            self.item_emb.weight.copy_(torch.as_tensor(np.asarray(als.item_factors)))
        return stopped

    @torch.no_grad()
    def score_new_user(self, items):
        """The user's least-squares factors given the fixed item factors Y (implicit's own update):
        (YᵀY + λI + (α - 1) Y_Iᵀ Y_I) p = α Y_Iᵀ 1, in implicit 0.7's convention c = α for an observed pair."""
        cfg = self.config
        y = self.item_emb.weight.double()
        alpha, reg = registry.setting(cfg, "confidence"), registry.setting(cfg, "reg")
        y_i = y[items]
        a = y.T @ y + reg * torch.eye(y.shape[1], dtype=y.dtype) + (alpha - 1) * y_i.T @ y_i
        p = torch.linalg.solve(a, alpha * y_i.sum(0))
        return (y @ p).float()

    @staticmethod
    def describe(cfg, n_users, n_items):
        k = cfg.resolved_factors
        return [{"name": "user factors", "shape": f"(B, {k})", "params": n_users * k,
                 "note": f"{n_users:,} users × {k}, solved by least squares"},
                {"name": "item factors", "shape": f"(B, {k})", "params": n_items * k,
                 "note": f"{n_items:,} items × {k}, solved by least squares"},
                {"name": "dot product", "shape": "(B, 1)", "params": 0, "note": "score = p_u · q_i"}]


# ---------------------------------------------------------------------------------------------
# Item-kNN


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
        known = split  # validation pairs stay out of the fit (see EASE.fit)
        x = interaction_matrix(known.train_user, known.train_item, self.n_users, self.n_items)
        index, value = top_neighbours(item_weights(x, registry.setting(self.config, "similarity")), self.k)
        device = self.neighbour_sim.device
        self.neighbour_index.copy_(torch.as_tensor(index, device=device))
        self.neighbour_sim.copy_(torch.as_tensor(value, device=device))
        self._dense = None
        self.set_history(known.train_user, known.train_item)
        if progress is not None:
            progress(1, {})
        return False

    @staticmethod
    def describe(cfg, n_users, n_items):
        k = min(registry.setting(cfg, "neighbours"), n_items - 1)
        return [{"name": "neighbour lists", "shape": f"(B, {n_items})", "params": 2 * n_items * k,
                 "note": f"{n_items:,} items × {k} neighbours ({registry.setting(cfg, 'similarity')})"}]


# ---------------------------------------------------------------------------------------------
# PureSVD


class PureSVD(Classical):
    """Cremonesi, Koren & Turrin (2010): X ≈ U Σ Vᵀ truncated to k factors; scores x_u V Vᵀ. The
    user table holds U Σ (= X V for the training rows), the item table V."""

    uses_history = False

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        self.user_emb = _Frozen(n_users, config.resolved_factors)
        self.item_emb = _Frozen(n_items, config.resolved_factors)

    def score_users(self, users):
        return self.user_emb(users) @ self.item_emb.weight.T

    def embedding_tables(self):
        return {"puresvd": (self.user_emb, self.item_emb)}

    @torch.no_grad()
    def score_new_user(self, items):
        v = self.item_emb.weight
        return v @ v[items].sum(0)  # V Vᵀ x

    @torch.no_grad()
    def item_similarity(self, item):
        # Row `item` of the projection V Vᵀ: what having the item adds to each score. (The cosine of
        # raw rows of V weighs the weak last factors as much as the first: 2.7 of 10 genre-mates on
        # the planted data, against 5.5 here.)
        v = self.item_emb.weight
        return v @ v[item]

    @torch.no_grad()
    def fit(self, split, tcfg, *, progress=None, stop=None) -> bool:
        from scipy.sparse.linalg import svds

        k = self.config.resolved_factors
        if k >= min(self.n_users, self.n_items):
            raise ConfigError(f"PureSVD keeps fewer factors than min(users, items) = "
                              f"{min(self.n_users, self.n_items)}; got --factors {k}.")
        known = split  # validation pairs stay out of the fit (see EASE.fit)
        x = interaction_matrix(known.train_user, known.train_item, self.n_users, self.n_items).astype(np.float64)
        v0 = np.random.default_rng(tcfg.seed).standard_normal(min(x.shape))
        u, s, vt = svds(x, k=k, v0=v0)
        order = np.argsort(-s)  # svds returns ascending singular values
        u, s, vt = u[:, order], s[order], vt[order]
        signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])  # a fixed sign per factor
        u, vt = u * signs, vt * signs[:, None]
        self.user_emb.weight.copy_(torch.as_tensor(u * s, dtype=torch.float32))
        self.item_emb.weight.copy_(torch.as_tensor(vt.T, dtype=torch.float32))
        if progress is not None:
            progress(1, {})
        return False

    @staticmethod
    def describe(cfg, n_users, n_items):
        k = cfg.resolved_factors
        return [{"name": "user factors UΣ", "shape": f"(B, {k})", "params": n_users * k,
                 "note": f"{n_users:,} users × {k}"},
                {"name": "item factors V", "shape": f"(B, {k})", "params": n_items * k,
                 "note": f"{n_items:,} items × {k}, the top right singular vectors"},
                {"name": "dot product", "shape": "(B, 1)", "params": 0, "note": "score = (x_u V) · v_i"}]
