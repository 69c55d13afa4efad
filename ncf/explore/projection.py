"""PCA projections of an embedding table (exact below `RANDOMIZED_MIN_DIMS` dimensions, randomized at
and above), with each point's title, genres, popularity and mean rating."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ncf.errors import NCFError, RunError
from ncf.explore.common import embedding_tables, item_frame, single_threaded


@dataclass(frozen=True, eq=False)
class Projection:
    """PCA of one embedding table: coords has pc1..pcN plus id, title, genres, popularity, mean_rating."""

    coords: pd.DataFrame
    explained_variance_ratio: list[float]
    kind: str  # "item" or "user"
    which: str  # the embedding table used
    solver: str = "covariance_eigh"  # how the components were found (see `pca`)


# Tables wider than this are projected by a randomized SVD (Halko et al.), narrower ones exactly by an
# eigendecomposition of their d x d covariance. The exact path costs rows * d^2 plus d^3, the randomized
# one rows * d * (components + 10) per power iteration (sklearn runs 7): measured with one thread on the
# 2-core box, exact took 0.03 s for 59,047 x 32 (ML-25M's items, NeuMF's GMF table) against 0.18 s
# randomized, 0.19 s against 1.2 s for 87,000 x 64, 1.1 s against 5.0 s for 87,000 x 256, and the two
# met near 1,000 dimensions (20,000 x 1,024: 4.9 s and 5.3 s). Every embedding table of the registry's
# models is far narrower, so at MovieLens sizes the exact solver is both the faster and the exact one.
RANDOMIZED_MIN_DIMS = 1024


def pca(weight: np.ndarray, n: int, randomized_min_dims: int = RANDOMIZED_MIN_DIMS, seed: int = 0):
    """(coords (rows, n), explained variance ratios (n,), solver name) of a PCA of `weight` (rows, d):
    randomized (seeded) for tables of at least `randomized_min_dims` dimensions, exact below."""
    from sklearn.decomposition import PCA  # here, not at the top: importing scikit-learn takes a second

    solver = "randomized" if weight.shape[1] >= randomized_min_dims else "covariance_eigh"
    model = PCA(n_components=n, svd_solver=solver, random_state=seed if solver == "randomized" else None)
    coords = model.fit_transform(weight)
    return coords, [float(x) for x in model.explained_variance_ratio_], solver


def _user_top_genre(run) -> np.ndarray:
    """(n_users,) each user's most frequent (first-listed) genre among their training items, '' if unknown."""
    info = run.item_info
    if info is None or "genres" not in info:
        return np.full(run.n_users, "", dtype=object)
    first = info["genres"].fillna("").astype(str).str.split("|").str[0]
    codes, names = pd.factorize(first)
    if len(names) == 0:
        return np.full(run.n_users, "", dtype=object)
    counts = np.bincount(run.train_user * len(names) + codes[run.train_item],
                         minlength=run.n_users * len(names)).reshape(run.n_users, len(names))
    top = np.asarray(names, dtype=object)[counts.argmax(axis=1)]
    top[counts.max(axis=1) == 0] = ""
    return top


_per_run: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_per_run_lock = threading.Lock()


def _remembered(run, key: str, compute):
    """`compute()` once per (shared, immutable) run: counts over every training row (25M at ML-25M's
    size, 2 s under load) are not redone when the Embeddings page switches table or dimensions."""
    with _per_run_lock:
        if key in _per_run.get(run, {}):
            return _per_run[run][key]
    value = compute()
    with _per_run_lock:
        _per_run.setdefault(run, {})[key] = value
    return value


def _mean_rating(index: np.ndarray, rating: np.ndarray | None, n: int) -> np.ndarray:
    if rating is None:
        return np.full(n, np.nan)
    counts = np.bincount(index, minlength=n)
    sums = np.bincount(index, weights=rating, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


@single_threaded
def project(run, kind: str = "item", which: str | None = None, n: int = 2) -> Projection:
    """PCA coordinates of the item (or user) embeddings of one table (`which`, default the first of
    `embedding_tables()`), with the share of variance each component explains."""
    if kind not in ("item", "user"):
        raise NCFError(f"Project 'item' or 'user' embeddings, not {kind!r}.")
    tables = embedding_tables(run)
    which = which or next(iter(tables))
    if which not in tables:
        raise RunError(f"Unknown embedding table {which!r}; this model has {', '.join(tables)}.")
    weight = tables[which][0 if kind == "user" else 1].weight.detach().double().cpu().numpy()  # (rows, d)
    if not 1 <= n <= min(weight.shape):
        raise NCFError(f"The {which} {kind} embeddings have {weight.shape[1]} dimensions and {weight.shape[0]} rows; "
                       f"ask for 1 to {min(weight.shape)} components, not {n}.")
    values, ratios, solver = pca(weight, n)
    # float32: the scatter sends every point to the browser, and 7 digits are more than a screen shows
    coords = pd.DataFrame(values.astype(np.float32), columns=[f"pc{j + 1}" for j in range(n)])
    if kind == "item":
        meta = item_frame(run, np.arange(run.n_items)).rename(columns={"item": "id"})
        popularity = run.item_popularity
        mean_rating = _remembered(run, "item_mean_rating",
                                  lambda: _mean_rating(run.train_item, run.train_rating, run.n_items))
    else:
        raw = run.users.raw(np.arange(run.n_users))
        meta = pd.DataFrame({"id": raw, "title": [f"user {x}" for x in raw],
                             "genres": _remembered(run, "user_top_genre", lambda: _user_top_genre(run))})
        popularity = _remembered(run, "user_activity", lambda: np.bincount(run.train_user, minlength=run.n_users))
        mean_rating = _remembered(run, "user_mean_rating",
                                  lambda: _mean_rating(run.train_user, run.train_rating, run.n_users))
        if run.user_info is not None:
            extra = run.user_info.drop(columns=[c for c in run.user_info.columns if c in meta.columns or
                                                 c in coords.columns])
            meta = pd.concat([meta, extra.reset_index(drop=True)], axis=1)
    coords = pd.concat([coords, meta], axis=1).assign(popularity=popularity, mean_rating=mean_rating)
    return Projection(coords=coords, explained_variance_ratio=ratios, kind=kind, which=which, solver=solver)
