"""Using a trained model: recommendations, a user's history, similar items, fold-in of a new user,
PCA projections of the embeddings and title search.

Every function takes a loaded `ncf.runs.Run` and RAW ids (as in the data; '42' and 42 both work for
numeric ids) and returns raw ids with titles and genres where the data has them. An unknown id raises
`UnknownIdError` naming it. Runs are shared read-only: nothing here changes `run.model` (fold-in
trains a one-user copy).
"""

from __future__ import annotations

import functools
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ncf.errors import NCFError, RunError

POSITIVE_RATING = 3.5  # on a 1-5 scale: a rating at or above it counts as "liked" for implicit models


# ---------------------------------------------------------------------------------------------
# Small helpers


def _item_frame(run, idx: np.ndarray) -> pd.DataFrame:
    """item (raw id), title, genres of item indices, in order."""
    idx = np.asarray(idx, dtype=np.int64)
    info = run.item_info
    titles = (info["title"].astype(str).to_numpy()[idx] if info is not None and "title" in info
              else np.asarray([str(x) for x in run.items.raw(idx)], dtype=object))
    genres = (info["genres"].fillna("").astype(str).to_numpy()[idx] if info is not None and "genres" in info
              else np.full(len(idx), "", dtype=object))
    return pd.DataFrame({"item": run.items.raw(idx), "title": titles, "genres": genres})


def _user_index(run, user) -> int:
    return int(run.users.index(user)[0])


def _item_index(run, item) -> int:
    return int(run.items.index(item)[0])


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
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


def _single_threaded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return fn(*args, **kwargs)

    return wrapper


@torch.no_grad()
def _scores(model, user_index: int) -> np.ndarray:
    """(n_items,) the model's scores of every item for one user, as float64 numpy."""
    return model.score_users(torch.tensor([user_index], dtype=torch.long))[0].double().cpu().numpy()


# ---------------------------------------------------------------------------------------------
# Recommendations and history


@_single_threaded
def recommend(run, user, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
    """The top-k items for a known user: columns item, title, genres, score, held_out.

    Training items are excluded (unless `exclude_seen=False`); the user's held-out test item(s) stay
    in and are marked `held_out=True`, so one can see whether the model found them."""
    u = _user_index(run, user)
    scores = _scores(run.model, u)
    if exclude_seen:
        scores[run.train_item[run.train_rows(u)]] = -np.inf
    top = _top_k(scores, k)
    held_out = np.isin(top, run.test_item[run.test_rows(u)])
    return _item_frame(run, top).assign(score=scores[top], held_out=held_out)


@_single_threaded
def user_history(run, user) -> pd.DataFrame:
    """What a user interacted with (training and held-out test rows): item, title, genres, rating,
    timestamp (when the data has them), held_out; newest first where times are known."""
    u = _user_index(run, user)
    train_rows, test_rows = run.train_rows(u), run.test_rows(u)
    idx = np.concatenate([run.train_item[train_rows], run.test_item[test_rows]])
    df = _item_frame(run, idx)
    if run.train_rating is not None and run.test_rating is not None:
        df["rating"] = np.concatenate([run.train_rating[train_rows], run.test_rating[test_rows]])
    if run.train_timestamp is not None and run.test_timestamp is not None:
        seconds = np.concatenate([run.train_timestamp[train_rows], run.test_timestamp[test_rows]])
        df["timestamp"] = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
        df["_order"] = seconds
    else:  # no times: held-out rows first (they are the latest in leave-one-out), then training order reversed
        df["_order"] = np.concatenate([np.arange(len(train_rows)), len(train_rows) + np.arange(len(test_rows))])
    df["held_out"] = np.r_[np.zeros(len(train_rows), bool), np.ones(len(test_rows), bool)]
    return df.sort_values("_order", ascending=False, kind="stable").drop(columns="_order").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Item embeddings: similar items


def _tables(run) -> dict:
    tables = run.model.embedding_tables()
    if not tables:
        from ncf import registry

        with_vectors = [n for n, s in registry.REGISTRY.items() if s.item_vectors]
        raise RunError(f"This model ({run.config.model.model}) has no item embeddings: it learns no vectors "
                       f"to compare or project. Choose a run of {', '.join(with_vectors)}.")
    return tables


def _normalised(weight: torch.Tensor) -> np.ndarray:
    w = weight.detach().double().cpu().numpy()
    return w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)


def item_vectors(run, which: str | None = None) -> tuple[np.ndarray, str]:
    """(n_items, d) unit-length item vectors for cosine similarity, and the name of the table used.

    `which` names an embedding table (a key of `embedding_tables()`); "gmf+mlp" joins NeuMF's two
    (each normalised, then concatenated and normalised again: the average of the two cosines).
    The default for NeuMF is its GMF table alone: GMF scores an item by a (weighted) dot product of
    user and item vectors, so directions in that table are what the model compares and cosine is
    meaningful there; MLP vectors pass through a non-linear tower, which can use any mix of their
    coordinates, so their cosine reflects the model's view far less (on the planted-genre data the
    GMF table puts 10 of 10 neighbours in the item's genre, the MLP table about 1, the average 4)."""
    tables = _tables(run)
    if which is None:
        which = "gmf" if "gmf" in tables else next(iter(tables))
    if which == "gmf+mlp" and {"gmf", "mlp"} <= set(tables):
        joined = np.concatenate([_normalised(tables["gmf"][1].weight), _normalised(tables["mlp"][1].weight)], axis=1)
        return joined / np.maximum(np.linalg.norm(joined, axis=1, keepdims=True), 1e-12), which
    if which not in tables:
        raise RunError(f"Unknown embedding table {which!r}; this model has {', '.join(tables)}.")
    return _normalised(tables[which][1].weight), which


@_single_threaded
def similar_items(run, item, k: int = 10, which: str | None = None) -> pd.DataFrame:
    """The k items whose embeddings are closest in cosine similarity: item, title, genres, similarity.
    A model with its own item-item weights (EASE's B, item-kNN's neighbours) answers from those."""
    i = _item_index(run, item)
    own = getattr(run.model, "item_similarity", None)
    own = own(i) if own is not None and which is None else None
    if own is not None:
        similarity = own.double().cpu().numpy()
    else:
        vectors, _ = item_vectors(run, which)
        similarity = vectors @ vectors[i]  # (n_items,)
    similarity[i] = -np.inf  # the item itself
    top = _top_k(similarity, k)
    return _item_frame(run, top).assign(similarity=similarity[top])


# ---------------------------------------------------------------------------------------------
# Fold-in: a new user from a few ratings


def _sized_config(run):
    """The run's model config with sizes that do not depend on the number of users: EmbeddingNN picks
    its embedding widths from n_users / n_items (fastai's rule), so a one-user copy must be told the
    widths the run actually has."""
    cfg = run.config.model
    if cfg.model == "embnn" and cfg.emb_sizes is None:
        user_emb, item_emb = run.model.embedding_tables()["embnn"]
        cfg = cfg.replace(emb_sizes=(user_emb.embedding_dim, item_emb.embedding_dim))
    return cfg


def _feature_shapes(run, n_users: int, n_items: int):
    """Side-feature tables of the run's specs sized for n_users and n_items (their values come with the
    state dict), or None for a model without features. A new user's features start, like the rest of
    the user side, at the trained users' average."""
    specs = getattr(run.model, "feature_specs", ())
    if not specs:
        return None
    from ncf.data.features import FeatureSet

    return FeatureSet.empty_like({"specs": [s.to_dict() for s in specs]}, n_users, n_items)


def _user_side_keys(run) -> set[str]:
    """state_dict keys that belong to users (their first dimension is the number of users): found by
    building tiny copies of the model for 2 and for 3 users (and 2 items) and comparing shapes.
    Generic: works for every model, including biases such as the dot model's user bias. (Not on the
    meta device: its first use imports torch's reference ops, seconds on a busy machine.)"""
    from ncf.models import build_model

    cfg = _sized_config(run)
    two = build_model(cfg, 2, 2, _feature_shapes(run, 2, 2)).state_dict()
    three = build_model(cfg, 3, 2, _feature_shapes(run, 3, 2)).state_dict()
    return {key for key in two if two[key].shape != three[key].shape}


def user_feature_specs(run) -> tuple:
    """The user-side feature specs of a run (what a new user may tell about themselves); () if none."""
    return tuple(spec for spec in getattr(run.model, "feature_specs", ()) if spec.side == "user")


def _set_new_user_features(model, run, values: dict) -> list[str]:
    """Puts a new user's own attributes ({"age": 31, "occupation": "writer"}) into the one-user model's
    feature inputs; features not given keep the trained users' average. Returns notes for values the
    run never saw (they map to unknown)."""
    from ncf.data.features import encode
    from ncf.models import SideFeatures

    notes = []
    for module in model.modules():
        if not isinstance(module, SideFeatures) or module.specs[0].side != "user":
            continue
        offset = 0
        for spec in module.specs:
            size = 1 if spec.kind == "numeric" else spec.cardinality
            value = values.get(spec.name)
            if value is not None and value != "":
                table, note = encode(spec, [value])
                if note:
                    notes.append(note)
                row = SideFeatures((spec,), {spec.name: table}).inputs[0]  # (size,)
                module.inputs[0, offset:offset + size] = row
            offset += size
    return notes


def _one_user_model(run):
    """A copy of the model for a single new user: every item-side parameter copied from the run
    (and frozen), the user-side ones started at the average trained user (a 'typical' user, which
    also starts user biases at their mean) and trainable."""
    from ncf.models import build_model

    user_keys = _user_side_keys(run)
    full = run.model.state_dict()
    state = {key: value.clone() for key, value in full.items() if key not in user_keys}
    for key in user_keys:
        state[key] = full[key].float().mean(dim=0, keepdim=True).to(full[key].dtype)
    model = build_model(_sized_config(run), 1, run.n_items, _feature_shapes(run, 1, run.n_items))
    model.load_state_dict(state, strict=True)
    _new_user_time(model, run)
    model.eval()  # dropout off and batch-norm statistics frozen while the user vector is fitted
    params = dict(model.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in user_keys)
    return model, [params[k] for k in sorted(user_keys) if k in params]


def _new_user_time(model, run) -> None:
    """Time features: a new user is recommended at the latest time in the training data (the moment of
    the trained users' last interaction), not at an average of their hours and weekdays."""
    from ncf.models import TimeFeatures

    for name, module in model.named_modules():
        if isinstance(module, TimeFeatures):
            trained = run.model.get_submodule(name).user_time  # (n_users, 3)
            module.user_time.copy_(trained[trained[:, 2].argmax()][None])


def positive_threshold(run) -> float:
    """The rating from which an item counts as liked: 3.5 on a 1-5 (or 0.5-5) scale, else the same
    relative point of the data's scale."""
    scale = run.info.get("dataset", {}).get("rating_scale") if isinstance(run.info, dict) else None
    if not scale or scale[1] <= 5:
        return POSITIVE_RATING
    low, high = float(scale[0]), float(scale[1])
    return low + 0.625 * (high - low)


@_single_threaded
def fold_in(run, ratings: dict, k: int = 10, steps: int = 50, lr: float = 0.05, seed: int = 0,
            user_features: dict | None = None) -> pd.DataFrame:
    """Recommendations for a new user described only by a few ratings {raw item id: rating}.

    A fresh user vector (and user bias, where the model has one) is fitted by `steps` Adam steps with
    everything else frozen, then every item is scored; the rated items are excluded. Implicit models
    learn from liked items (rating >= `positive_threshold`, or every given item when the run's data
    has no ratings) against negatives drawn from the rest; explicit models fit the ratings by MSE.
    Takes milliseconds on a CPU for MovieLens-sized runs. Returns item, title, genres, score.

    A run with user side features also takes the new user's own attributes (`user_features`, by feature
    name; `user_feature_specs` lists them): with no ratings at all it ranks from those alone (cold start)."""
    user_features = {k: v for k, v in (user_features or {}).items() if v is not None and v != ""}
    if user_features and not user_feature_specs(run):
        raise NCFError("This run takes no user features; rate some items instead.")
    if not ratings and not user_features:
        raise NCFError("Rate at least one item to get recommendations for a new user.")
    if not ratings:
        model = _fit_new_user(run, np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(run.n_items, bool),
                              steps=0, lr=lr, seed=seed, user_features=user_features)
        scores = _scores(model, 0)
        top = _top_k(scores, k)
        return _item_frame(run, top).assign(score=scores[top])
    idx = run.items.index(list(ratings.keys()))
    try:
        values = np.asarray([float(v) for v in ratings.values()], dtype=np.float32)
    except (TypeError, ValueError):
        raise NCFError("Ratings must be numbers, such as 4 or 4.5.") from None
    if not np.isfinite(values).all():
        raise NCFError("Ratings must be finite numbers.")
    idx, first = np.unique(idx, return_index=True)  # one rating per item: the first one given
    values = values[first]

    rated = np.zeros(run.n_items, dtype=bool)
    rated[idx] = True
    new_user = getattr(run.model, "score_new_user", None)
    if new_user is not None:  # a classical model scores a new user in closed form, from the liked items
        liked = np.ones(len(idx), bool) if run.implicit_data else values >= positive_threshold(run)
        if not liked.any() and run.config.model.model != "pop":
            raise NCFError(f"This model learns from liked items: rate at least one item "
                           f"{positive_threshold(run):g} or higher.")
        with torch.no_grad():
            scores = new_user(torch.as_tensor(idx[liked], dtype=torch.long)).double().cpu().numpy()
    else:
        model = _fit_new_user(run, idx, values, rated, steps=steps, lr=lr, seed=seed, user_features=user_features)
        scores = _scores(model, 0)
    scores[rated] = -np.inf
    top = _top_k(scores, k)
    return _item_frame(run, top).assign(score=scores[top])


def _fit_new_user(run, idx: np.ndarray, values: np.ndarray, rated: np.ndarray, *, steps: int, lr: float,
                  seed: int, user_features: dict | None = None):
    model, params = _one_user_model(run)
    if user_features:
        _set_new_user_features(model, run, user_features)
    if not params or not len(idx):
        return model
    explicit = run.config.model.resolved_objective == "explicit"
    generator = torch.Generator().manual_seed(seed)
    items = torch.as_tensor(idx, dtype=torch.long)
    if explicit:
        targets = torch.as_tensor(values)
    else:
        liked = np.ones(len(idx), bool) if run.implicit_data else values >= positive_threshold(run)
        if not liked.any():
            raise NCFError(f"This model learns from liked items: rate at least one item "
                           f"{positive_threshold(run):g} or higher.")
        positives = torch.as_tensor(idx[liked], dtype=torch.long)
        disliked = torch.as_tensor(idx[~liked], dtype=torch.long)  # rated low: known negatives
        pool = torch.as_tensor(np.flatnonzero(~rated), dtype=torch.long)  # (n_unrated,)
        n_sampled = min(len(pool), 4 * len(positives))
    optimizer = _Adam(params, lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            if explicit:
                predicted = model(torch.zeros(len(items), dtype=torch.long), items)
                loss = torch.nn.functional.mse_loss(predicted, targets)
            else:
                sampled = pool[torch.randint(max(len(pool), 1), (n_sampled,), generator=generator)]
                batch = torch.cat([positives, disliked, sampled])
                labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(disliked) + len(sampled))])
                logits = model(torch.zeros(len(batch), dtype=torch.long), batch)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            optimizer.step(torch.autograd.grad(loss, params))
    return model


class _Adam:
    """Adam (Kingma & Ba) for the few tensors of one user, written out: `torch.optim.Adam`'s first use
    in a process imports torch._dynamo, which alone takes seconds, longer than the whole fold-in."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads) -> None:
        b1, b2 = self.betas
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))


# ---------------------------------------------------------------------------------------------
# Projections and search


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


@_single_threaded
def project(run, kind: str = "item", which: str | None = None, n: int = 2) -> Projection:
    """PCA coordinates of the item (or user) embeddings of one table (`which`, default the first of
    `embedding_tables()`), with the share of variance each component explains."""
    if kind not in ("item", "user"):
        raise NCFError(f"Project 'item' or 'user' embeddings, not {kind!r}.")
    tables = _tables(run)
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
        meta = _item_frame(run, np.arange(run.n_items)).rename(columns={"item": "id"})
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


@_single_threaded
def search_titles(run, query: str, limit: int = 20) -> pd.DataFrame:
    """Items whose title contains `query` (case-insensitive; raw ids where there are no titles), most
    popular first: item, title, genres, popularity. An empty query gives the most popular items."""
    frame = _item_frame(run, np.arange(run.n_items)).assign(popularity=run.item_popularity)
    query = str(query or "").strip().lower()
    if query:
        frame = frame[frame["title"].str.lower().str.contains(query, regex=False)]
    order = np.argsort(-frame["popularity"].to_numpy(), kind="stable")[: max(int(limit), 0)]
    return frame.iloc[order].reset_index(drop=True)


__all__ = ["Projection", "fold_in", "item_vectors", "pca", "positive_threshold", "project", "recommend", "search_titles",
           "similar_items", "user_history"]
