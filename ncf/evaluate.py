"""Evaluation: the paper's sampled leave-one-out metrics, full-ranking metrics next to them, and
rating errors. Everything is vectorised over users, in chunks that bound memory.

Ties are always broken AGAINST the held-out item: an item counts as ranked above it when its score
is greater than or equal to the held-out item's score. A model that scores everything alike
therefore ranks its held-out item last (HR 0), instead of first (HR 1) as a naive argsort can.
Sampled metrics (1 held-out item among n sampled negatives) flatter models and can reorder them
(Krichene & Rendle 2020), so the full-ranking figures — every item the user did not train on is a
candidate — are reported beside them under their own names.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ncf.data import Split
from ncf.data.split import COLD_KINDS
from ncf.models import Recommender

# Full ranking scores every item for every test user; beyond this many (user, item) pairs it ranks a
# seeded sample of users and says how many (`full_users`). ML-1M (6,040 x 3,706 = 22M) stays whole;
# ML-25M's 162k x 59k would take hours with NeuMF on two cores, 1,136 of its users take ~30 s.
FULL_RANKING_MAX_PAIRS = 1 << 26
PAIRS_PER_CHUNK = 1 << 17  # pairs scored at once: bounds memory, and keeps tower activations in cache (4x faster than 1 << 20)


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _clean(scores: torch.Tensor) -> torch.Tensor:
    """NaN scores (a diverged model) rank last rather than slipping through comparisons."""
    return torch.nan_to_num(scores.float(), nan=-math.inf)


def rank_against(pos_scores: torch.Tensor, other_scores: torch.Tensor) -> torch.Tensor:
    """(n,), (n, m) -> (n,) number of others scoring >= the positive: its 0-based rank, ties against it."""
    return (other_scores >= pos_scores[:, None]).sum(dim=1)


def hit_and_ndcg(rank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-case HR@k (1 when rank < k) and NDCG@k (1 / log2(rank + 2) when a hit) for one relevant item."""
    hit = rank < k
    ndcg = torch.where(hit, 1.0 / torch.log2(rank.double() + 2.0), torch.zeros((), dtype=torch.float64))
    return hit.double(), ndcg


@torch.no_grad()
def sampled_metrics(model: Recommender, users, items, negatives, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k of each held-out item ranked among its sampled negatives (He et al.'s protocol)."""
    hit, ndcg = sampled_cases(model, users, items, negatives, k)
    if not len(hit):
        return {f"hr@{k}": 0.0, f"ndcg@{k}": 0.0}
    return {f"hr@{k}": float(hit.mean()), f"ndcg@{k}": float(ndcg.mean())}


@torch.no_grad()
def sampled_cases(model: Recommender, users, items, negatives, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,), (n,): each held-out item's hit and NDCG among its sampled negatives."""
    device = _model_device(model)
    users = torch.as_tensor(users, dtype=torch.long, device=device)
    candidates = torch.cat([torch.as_tensor(items, dtype=torch.long, device=device)[:, None],
                            torch.as_tensor(negatives, dtype=torch.long, device=device)], dim=1)  # (n, 1 + n_neg)
    n, width = candidates.shape
    chunk = max(1, PAIRS_PER_CHUNK // width)
    hits, ndcgs = [], []
    for start in range(0, n, chunk):
        cand = candidates[start:start + chunk]
        scores = _clean(model(users[start:start + chunk].repeat_interleave(width), cand.flatten()).view(-1, width))
        hit, ndcg = hit_and_ndcg(rank_against(scores[:, 0], scores[:, 1:]), k)
        hits.append(hit)
        ndcgs.append(ndcg)
    if not hits:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    return torch.cat(hits).cpu(), torch.cat(ndcgs).cpu()


def _group(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs sorted by row, with indptr such that row r's pairs are [indptr[r], indptr[r + 1])."""
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]
    return rows, cols, order


@torch.no_grad()
def full_ranking_metrics(model: Recommender, train_user, train_item, test_user, test_item,
                         k: int = 10) -> dict[str, float]:
    """Recall@k and NDCG@k ranking every item, with each user's training items masked out.

    Per user: recall = hits / min(k, n_relevant) (so one held-out item gives HR@k over all items),
    NDCG = DCG / ideal DCG; averaged over users who have test items.
    """
    device = _model_device(model)
    n_items = model.n_items
    test_user = np.asarray(test_user, dtype=np.int64)
    test_item = np.asarray(test_item, dtype=np.int64)
    if len(test_user) == 0:
        return {f"full_recall@{k}": 0.0, f"full_ndcg@{k}": 0.0}
    users = np.unique(test_user)  # row r of the score matrix is users[r]
    row_of_user = np.full(model.n_users, -1, dtype=np.int64)
    row_of_user[users] = np.arange(len(users))
    train_rows = row_of_user[np.asarray(train_user, dtype=np.int64)]
    keep = train_rows >= 0
    train_rows, train_cols, _ = _group(train_rows[keep], np.asarray(train_item, dtype=np.int64)[keep])
    test_rows, test_cols, _ = _group(row_of_user[test_user], test_item)
    n_relevant = np.bincount(test_rows, minlength=len(users))
    ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))[np.minimum(n_relevant, k) - 1]  # (n_users,)

    chunk = max(1, PAIRS_PER_CHUNK // max(1, n_items))
    users_t = torch.as_tensor(users, device=device)
    recall_sum = torch.zeros(len(users), dtype=torch.float64, device=device)
    dcg_sum = torch.zeros(len(users), dtype=torch.float64, device=device)
    for start in range(0, len(users), chunk):
        stop = min(start + chunk, len(users))
        scores = _clean(model.score_users(users_t[start:stop]))  # (C, n_items)
        a, b = np.searchsorted(train_rows, [start, stop])
        scores[torch.as_tensor(train_rows[a:b] - start, device=device),
               torch.as_tensor(train_cols[a:b], device=device)] = -math.inf
        a, b = np.searchsorted(test_rows, [start, stop])
        rows = torch.as_tensor(test_rows[a:b] - start, device=device)
        cols = torch.as_tensor(test_cols[a:b], device=device)
        pos = scores[rows, cols]  # (P,)
        # Rank of each relevant item among all unmasked items but itself, ties against it.
        rank = (scores[rows] >= pos[:, None]).sum(dim=1) - 1
        hit, dcg = hit_and_ndcg(rank, k)
        recall_sum.index_add_(0, rows + start, hit)
        dcg_sum.index_add_(0, rows + start, dcg)
    denominators = torch.as_tensor(np.minimum(n_relevant, k), dtype=torch.float64, device=device)
    recall = recall_sum / denominators
    ndcg = dcg_sum / torch.as_tensor(ideal, device=device)
    return {f"full_recall@{k}": float(recall.mean()), f"full_ndcg@{k}": float(ndcg.mean())}


@torch.no_grad()
def rating_metrics(model: Recommender, users, items, ratings) -> dict[str, float]:
    device = _model_device(model)
    users = torch.as_tensor(users, dtype=torch.long, device=device)
    items = torch.as_tensor(items, dtype=torch.long, device=device)
    target = torch.as_tensor(ratings, dtype=torch.float64, device=device)
    preds = torch.cat([model(users[s:s + PAIRS_PER_CHUNK], items[s:s + PAIRS_PER_CHUNK]).double()
                       for s in range(0, len(users), PAIRS_PER_CHUNK)]) if len(users) else target
    err = preds - target
    mse = float((err**2).mean()) if len(err) else 0.0
    return {"rmse": math.sqrt(mse), "mse": mse, "mae": float(err.abs().mean()) if len(err) else 0.0}


def full_ranking_sample(test_user, test_item, n_items: int, max_pairs: int | None = None, seed: int = 0):
    """The test pairs of the users full ranking scores: all of them while users x items stays within
    `max_pairs` (FULL_RANKING_MAX_PAIRS), else a seeded sample of users that fits. Returns (users,
    items, sample size or None when every user is kept)."""
    max_pairs = FULL_RANKING_MAX_PAIRS if max_pairs is None else max_pairs
    users = np.unique(np.asarray(test_user))
    if len(users) * max(1, n_items) <= max_pairs:
        return test_user, test_item, None
    n = max(1, max_pairs // max(1, n_items))
    picked = np.random.default_rng(seed).choice(users, n, replace=False)
    keep = np.isin(np.asarray(test_user), picked)
    return np.asarray(test_user)[keep], np.asarray(test_item)[keep], n


def takes_features(model: Recommender) -> bool:
    return bool(model.feature_specs)


def cold_start_model(model: Recommender, split: Split) -> Recommender:
    """What scores the held-out users or items of a cold-start split: the model itself when it takes
    side features; else most-popular fitted on the training pairs, since an id never trained on has
    only its random initial embedding to go by (the metrics then say `popularity_fallback` 1)."""
    if split.kind not in COLD_KINDS or takes_features(model) or model.config.model == "pop":
        return model
    from ncf.classical import ItemPop

    pop = ItemPop(model.config.replace(model="pop", features=(), layers=None, emb_sizes=None), model.n_users,
                  model.n_items)
    return pop.fit_counts(split.train_item, split.train_rating).to(_model_device(model))


ACTIVITY_BUCKETS = ((0, 0, "0 (cold)"), (1, 5, "1-5"), (6, 20, "6-20"), (21, 100, "21-100"),
                    (101, None, "over 100"))


@torch.no_grad()
def by_activity(model: Recommender, split: Split, k: int = 10) -> list[dict]:
    """The test metrics by how much training data the case's user had (training interactions: 0, 1-5,
    6-20, 21-100, over 100) and by how popular its item was in training (same edges). One row per
    non-empty bucket: group ("users" or "items"), bucket, n_test, and hr@k / ndcg@k (when the split has
    sampled negatives) and mse / mae (explicit models with test ratings)."""
    was_training = model.training
    model.eval()
    try:
        scorer = cold_start_model(model, split)
        known = split.without_validation()
        columns: dict[str, np.ndarray] = {}
        if split.test_negatives is not None:
            hit, ndcg = sampled_cases(scorer, split.test_user, split.test_item, split.test_negatives, k)
            columns.update({f"hr@{k}": hit.numpy(), f"ndcg@{k}": ndcg.numpy()})
        if model.explicit and split.test_rating is not None:
            device = _model_device(scorer)
            preds = torch.cat([scorer(torch.as_tensor(split.test_user[s:s + PAIRS_PER_CHUNK], device=device),
                                      torch.as_tensor(split.test_item[s:s + PAIRS_PER_CHUNK], device=device)).double()
                               for s in range(0, len(split.test_user), PAIRS_PER_CHUNK)]).cpu().numpy()
            err = preds - split.test_rating.astype(np.float64)
            columns.update({"mse": err**2, "mae": np.abs(err)})
        counts = {"users": np.bincount(known.train_user, minlength=split.n_users)[split.test_user],
                  "items": np.bincount(known.train_item, minlength=split.n_items)[split.test_item]}
        rows = []
        for group, n in counts.items():
            for low, high, label in ACTIVITY_BUCKETS:
                mask = (n >= low) & (n <= (high if high is not None else np.iinfo(np.int64).max))
                if mask.any():
                    rows.append({"group": group, "bucket": label, "n_test": int(mask.sum()),
                                 **{name: float(v[mask].mean()) for name, v in columns.items()}})
        return rows
    finally:
        model.train(was_training)


def evaluate(model: Recommender, split: Split, k: int = 10, full: bool = True) -> dict[str, float]:
    """All metrics that apply to this model and split: sampled HR@k/NDCG@k when the split has sampled
    negatives, full-ranking Recall@k/NDCG@k when `full`, RMSE/MSE/MAE for explicit models with test ratings.
    On a cold-start split an ids-only model's figures are most-popular's (`cold_start_model`)."""
    was_training, original = model.training, model
    model.eval()
    model = cold_start_model(original, split)
    fallback = model is not original
    try:
        metrics: dict[str, float] = {"popularity_fallback": 1.0} if fallback else {}
        if split.test_negatives is not None:
            metrics.update(sampled_metrics(model, split.test_user, split.test_item, split.test_negatives, k))
        if full:
            known = split.without_validation()  # a validation pair is a known interaction, not a candidate
            test_user, test_item, n_users = full_ranking_sample(split.test_user, split.test_item, model.n_items)
            metrics.update(full_ranking_metrics(model, known.train_user, known.train_item, test_user, test_item, k))
            if n_users is not None:  # the sample size goes beside the figures it qualifies
                metrics["full_users"] = float(n_users)
        if model.explicit and split.test_rating is not None:
            metrics.update(rating_metrics(model, split.test_user, split.test_item, split.test_rating))
        return metrics
    finally:
        original.train(was_training)


def evaluate_validation(model: Recommender, split: Split, k: int = 10) -> dict[str, float]:
    """Sampled HR@k/NDCG@k on the split's validation hold-out, as `val_hr@k` and `val_ndcg@k`; {} without one."""
    if not split.has_validation:
        return {}
    was_training = model.training
    model.eval()
    try:
        found = sampled_metrics(model, split.valid_user, split.valid_item, split.valid_negatives, k)
        return {f"val_{name}": value for name, value in found.items()}
    finally:
        model.train(was_training)
