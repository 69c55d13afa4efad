import numpy as np
import pytest

from ncf.data import filter_min_interactions, leave_one_out, make_split, ratio_split, synthetic
from ncf.errors import DataError


@pytest.fixture(scope="module")
def ds():
    return synthetic(n_users=200, n_items=150, seed=3)


def test_leave_one_out_holds_out_each_users_latest_interaction(ds):
    split = leave_one_out(ds, n_negatives=20, seed=0)
    assert np.array_equal(np.sort(split.test_user), np.arange(ds.n_users))
    latest = np.full(ds.n_users, -1, dtype=np.int64)
    np.maximum.at(latest, ds.user, ds.timestamp)
    test_time = {(u, i): t for u, i, t in zip(ds.user, ds.item, ds.timestamp, strict=True)}
    for u, i in zip(split.test_user, split.test_item, strict=True):
        assert test_time[(u, i)] == latest[u]
    assert split.n_train + len(split.test_user) == ds.n_interactions


def test_negatives_are_distinct_items_the_user_never_touched(ds):
    split = leave_one_out(ds, n_negatives=30, seed=1)
    assert split.test_negatives.shape == (ds.n_users, 30)
    seen = set(zip(ds.user.tolist(), ds.item.tolist(), strict=True))
    for u, row in zip(split.test_user, split.test_negatives, strict=True):
        assert len(set(row.tolist())) == 30
        assert not any((int(u), int(i)) in seen for i in row)


def test_splits_are_reproducible_by_seed(ds):
    assert leave_one_out(ds, n_negatives=20, seed=5).fingerprint() == leave_one_out(ds, n_negatives=20, seed=5).fingerprint()
    assert leave_one_out(ds, n_negatives=20, seed=5).fingerprint() != leave_one_out(ds, n_negatives=20, seed=6).fingerprint()
    a, b = ratio_split(ds, seed=2), ratio_split(ds, seed=2)
    assert np.array_equal(a.test_item, b.test_item) and a.fingerprint() == b.fingerprint()


def test_ratio_split_holds_out_about_the_fraction(ds):
    split = ratio_split(ds, test_fraction=0.2, seed=0)
    share = len(split.test_user) / ds.n_interactions
    assert 0.17 < share < 0.23
    assert split.test_negatives is None and split.test_rating is not None


def test_min_interactions_filter_reindexes(ds):
    kept = filter_min_interactions(ds, min_per_user=30, min_per_item=5)
    assert kept.per_user_counts().min() >= 30 and kept.per_item_counts().min() >= 5
    assert kept.n_users < ds.n_users and kept.user.max() == kept.n_users - 1
    assert sum(kept.dropped.values()) == ds.n_interactions - kept.n_interactions


def test_unknown_split_kind_and_impossible_negatives_are_data_errors(ds):
    with pytest.raises(DataError, match="Unknown split"):
        make_split(ds, kind="kfold")


def test_a_small_catalogue_ranks_against_every_unseen_item_it_can_and_says_so(ds):
    # 150 items: no user can have 150 unseen ones, so the candidates shrink to what every user has
    split = leave_one_out(ds, n_negatives=ds.n_items, seed=0)
    unseen = int((ds.n_items - ds.per_user_counts()).min())
    assert split.test_negatives.shape == (ds.n_users, unseen)
    assert f"{unseen} sampled items" in split.describe()


def test_a_user_who_saw_every_item_leaves_nothing_to_rank_against():
    from ncf.data.dataset import Dataset, Vocab

    user, item = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 1])
    full = Dataset("tiny", user, item, None, np.arange(5), Vocab(np.array([10, 11])), Vocab(np.array([1, 2, 3])))
    with pytest.raises(DataError, match="every one of the 3 items"):
        leave_one_out(full)


def test_a_validation_hold_out_is_each_users_second_latest_and_leaves_the_test_alone():
    ds = synthetic(n_users=200, n_items=150, seed=3)
    keep = np.ones(ds.n_interactions, dtype=bool)
    keep[np.flatnonzero(ds.user == 7)[2:]] = False  # user 7 keeps two interactions: test item only
    from ncf.data.split import reindex

    ds = reindex(ds, keep, reason="test")
    plain, split = leave_one_out(ds, n_negatives=20, seed=0), leave_one_out(ds, n_negatives=20, seed=0, validation=True)
    for name in ("test_user", "test_item", "test_negatives"):
        assert np.array_equal(getattr(plain, name), getattr(split, name)), name
    assert 7 not in split.valid_user.tolist() and len(split.valid_user) == ds.n_users - 1
    assert split.n_train + len(split.valid_user) == plain.n_train
    times = {(u, i): t for u, i, t in zip(ds.user.tolist(), ds.item.tolist(), ds.timestamp.tolist(), strict=True)}
    train_latest = {}
    for u, i in zip(split.train_user.tolist(), split.train_item.tolist(), strict=True):
        train_latest[u] = max(train_latest.get(u, -1), times[(u, i)])
    seen = set(zip(ds.user.tolist(), ds.item.tolist(), strict=True))
    for u, i, row in zip(split.valid_user.tolist(), split.valid_item.tolist(), split.valid_negatives, strict=True):
        assert train_latest[u] <= times[(u, i)] <= times[(u, int(split.test_item[split.test_user == u][0]))]
        assert not any((u, int(n)) in seen for n in row)
    assert split.fingerprint() != plain.fingerprint() and "validation" in split.describe()
    merged = split.without_validation()
    assert merged.n_train == plain.n_train and not merged.has_validation


def test_validation_comes_with_leave_one_out_only(ds):
    with pytest.raises(DataError, match="leave-one-out"):
        make_split(ds, "ratio", validation=True)
