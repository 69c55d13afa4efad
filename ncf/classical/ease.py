"""EASE (Steck 2019): a closed-form item x item weight matrix, its λ chosen on held-out interactions
unless given, refused up front when the dense matrices would not fit in memory."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
import torch

from ncf import registry
from ncf.classical.base import SCORE_CELLS, Classical, interaction_matrix, is_set
from ncf.config import ModelConfig, TrainConfig
from ncf.data import Split
from ncf.data.split import pair_times
from ncf.errors import ConfigError
from ncf.evaluate import hit_and_ndcg, rank_against

# Fraction of the free memory EASE may plan to use for its dense item x item matrices.
EASE_MEMORY_SHARE = 0.5
HOLDOUT_NEGATIVES = 99  # candidates per held-out interaction when choosing EASE's λ


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
    times = train_times(split)
    user = split.train_user
    order = np.lexsort((np.arange(len(user)), times, user))  # by user, then time, then row
    sorted_users = user[order]
    last = np.r_[sorted_users[1:] != sorted_users[:-1], True]
    first = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    keep = last & ~first  # the latest of users with two or more
    return order[keep]


def train_times(split: Split) -> np.ndarray:
    """Timestamps of the training rows (`pair_times`); the row order where the data has none."""
    lookup = pair_times(split.dataset)
    times = None if lookup is None else lookup(split.train_user, split.train_item)
    return np.arange(split.n_train) if times is None else times


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
        reg = self.config.reg
        step = 0
        if reg is None:
            reg, stopped, step = self.choose_reg(split, tcfg, progress=progress, stop=stop)
            if stopped:
                return True
        x = self.train_matrix(split)
        self.weights.copy_(ease_weights(self._gram(x, reg), reg).float())
        self.reg_used.fill_(reg)
        self.set_history(split.train_user, split.train_item)
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
            full = self.train_matrix(split)
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
            if is_set(stop):
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

