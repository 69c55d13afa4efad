"""Cold-start splits hold users or items out completely; per-activity metrics; the ids-only fallback."""

from __future__ import annotations

import numpy as np
import pytest

from ncf.config import ModelConfig
from ncf.data import make_split
from ncf.evaluate import by_activity, evaluate
from ncf.models import build_model


def test_cold_users_split_never_trains_on_a_held_out_user(synthetic_ds):
    split = make_split(synthetic_ds, "cold_users", seed=3, test_fraction=0.2)
    held = np.unique(split.test_user)
    assert len(held) == round(0.2 * synthetic_ds.n_users)
    assert not np.isin(split.train_user, held).any()
    # Every interaction of a held-out user is a test pair, none is lost or kept for training.
    assert len(split.test_user) == np.isin(synthetic_ds.user, held).sum()
    assert split.n_train + len(split.test_user) == synthetic_ds.n_interactions
    seen = set(zip(synthetic_ds.user.tolist(), synthetic_ds.item.tolist(), strict=True))
    assert not any((u, i) in seen for u, row in zip(split.test_user, split.test_negatives, strict=True) for i in row)


def test_cold_start_split_is_seeded(synthetic_ds):
    a, b = (make_split(synthetic_ds, "cold_users", seed=1) for _ in range(2))
    c = make_split(synthetic_ds, "cold_users", seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_cold_items_are_ranked_among_other_held_out_items(synthetic_ds):
    split = make_split(synthetic_ds, "cold_items", seed=0, test_fraction=0.3)
    held = np.unique(split.test_item)
    assert not np.isin(split.train_item, held).any()
    assert np.isin(split.test_negatives, held).all()
    assert (split.test_negatives != split.test_item[:, None]).all()


@pytest.mark.parametrize("kind", ["cold_users", "cold_items"])
def test_an_ids_only_model_falls_back_to_popularity_and_says_so(synthetic_ds, kind):
    split = make_split(synthetic_ds, kind, seed=0)
    embnn = build_model(ModelConfig(model="embnn", objective="implicit"), split.n_users, split.n_items)
    pop = build_model(ModelConfig(model="pop"), split.n_users, split.n_items)
    pop.fit_counts(split.train_item)
    got, expected = evaluate(embnn, split, full=False), evaluate(pop, split, full=False)
    assert got.pop("popularity_fallback") == 1.0
    assert got == expected


def test_by_activity_buckets_cover_every_test_case(synthetic_ds):
    split = make_split(synthetic_ds, "leave_one_out", seed=0)
    model = build_model(ModelConfig(model="embnn", objective="implicit"), split.n_users, split.n_items)
    rows = by_activity(model, split)
    for group in ("users", "items"):
        mine = [r for r in rows if r["group"] == group]
        assert sum(r["n_test"] for r in mine) == len(split.test_user)
        overall = sum(r["hr@10"] * r["n_test"] for r in mine) / len(split.test_user)
        assert overall == pytest.approx(evaluate(model, split, full=False)["hr@10"])
    cold = by_activity(model, make_split(synthetic_ds, "cold_users", seed=0))
    assert [r["bucket"] for r in cold if r["group"] == "users"] == ["0 (cold)"]
