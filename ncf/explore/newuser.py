"""A new user: fold-in from a few ratings (a one-user copy of the model whose user side is fitted with
everything else frozen), cold start from their own attributes, at the latest time of the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ncf.errors import NCFError
from ncf.explore.common import classical, item_frame, single_threaded, top_k, user_scores

POSITIVE_RATING = 3.5  # on a 1-5 scale: a rating at or above it counts as "liked" for implicit models


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
    specs = run.model.feature_specs
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
    return tuple(spec for spec in run.model.feature_specs if spec.side == "user")


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


def one_user_model(run):
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


@single_threaded
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
        scores = user_scores(model, 0)
        top = top_k(scores, k)
        return item_frame(run, top).assign(score=scores[top])
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
    closed_form = classical(run)
    if closed_form is not None:  # a classical model scores a new user in closed form, from the liked items
        liked = np.ones(len(idx), bool) if run.implicit_data else values >= positive_threshold(run)
        if not liked.any() and run.config.model.model != "pop":
            raise NCFError(f"This model learns from liked items: rate at least one item "
                           f"{positive_threshold(run):g} or higher.")
        with torch.no_grad():
            scores = closed_form.score_new_user(torch.as_tensor(idx[liked], dtype=torch.long)).double().cpu().numpy()
    else:
        model = _fit_new_user(run, idx, values, rated, steps=steps, lr=lr, seed=seed, user_features=user_features)
        scores = user_scores(model, 0)
    scores[rated] = -np.inf
    top = top_k(scores, k)
    return item_frame(run, top).assign(score=scores[top])


def _fit_new_user(run, idx: np.ndarray, values: np.ndarray, rated: np.ndarray, *, steps: int, lr: float,
                  seed: int, user_features: dict | None = None):
    model, params = one_user_model(run)
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
