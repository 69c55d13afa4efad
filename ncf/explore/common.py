"""What every query of `ncf.explore` shares: raw ids to indices and back (with titles and genres), the
top k of a score vector, the model's scores for one user, its embedding tables, and running a query
on one thread."""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from ncf import registry
from ncf.errors import RunError


def item_frame(run, idx: np.ndarray) -> pd.DataFrame:
    """item (raw id), title, genres of item indices, in order."""
    idx = np.asarray(idx, dtype=np.int64)
    info = run.item_info
    titles = (info["title"].astype(str).to_numpy()[idx] if info is not None and "title" in info
              else np.asarray([str(x) for x in run.items.raw(idx)], dtype=object))
    genres = (info["genres"].fillna("").astype(str).to_numpy()[idx] if info is not None and "genres" in info
              else np.full(len(idx), "", dtype=object))
    return pd.DataFrame({"item": run.items.raw(idx), "title": titles, "genres": genres})


def user_index(run, user) -> int:
    return int(run.users.index(user)[0])


def item_index(run, item) -> int:
    return int(run.items.index(item)[0])


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, best first (argpartition, then a sort of k)."""
    valid = np.flatnonzero(np.isfinite(scores))
    k = min(max(int(k), 0), len(valid))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    part = valid[np.argpartition(-scores[valid], k - 1)[:k]]
    return part[np.argsort(-scores[part], kind="stable")]


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextmanager
def _one_thread():
    """Runs the small numeric work of one query on one thread (PyTorch's and the BLAS library's).

    Each query here is a few hundred thousand numbers: splitting it across threads adds only
    hand-offs, and on a busy machine (a server that also trains) every hand-off waits for a core.
    Measured on this 2-core machine under load: fold-in 1.5-4.7 s with 2 threads, 0.06 s with one;
    PCA of ML-1M-sized user embeddings 2-9 s against 0.04 s. PyTorch's setting is per calling
    thread; the BLAS limit is process-wide, so it is reference-counted across concurrent queries
    and restored when the last one ends."""
    global _blas_users, _blas_limiter
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = threadpool_limits(limits=1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
        torch.set_num_threads(previous)


def single_threaded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return fn(*args, **kwargs)

    return wrapper


@torch.no_grad()
def user_scores(model, user_index: int) -> np.ndarray:
    """(n_items,) the model's scores of every item for one user, as float64 numpy."""
    return model.score_users(torch.tensor([user_index], dtype=torch.long))[0].double().cpu().numpy()


def embedding_tables(run) -> dict:
    tables = run.model.embedding_tables()
    if not tables:
        with_vectors = [n for n, s in registry.REGISTRY.items() if s.item_vectors]
        raise RunError(f"This model ({run.config.model.model}) has no item embeddings: it learns no vectors "
                       f"to compare or project. Choose a run of {', '.join(with_vectors)}.")
    return tables


def classical(run):
    """The run's model when it is fitted by its own `fit` (a `ncf.classical.base.Classical`, which scores
    a new user in closed form and may compare items by its own weights), else None. The registry says
    which models those are, so a neural run never imports ncf.classical."""
    if registry.get(run.config.model.model).gradient:
        return None
    from ncf.classical.base import Classical

    return run.model if isinstance(run.model, Classical) else None
