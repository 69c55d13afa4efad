"""The leave-one-out split is bit-identical to the original implementation, kept here as the reference.

The split was rewritten for speed at ML-25M's size (a three-key sort of every row replaced by
scatter-max passes; negatives' seen-item look-ups made in sorted chunks). The recorded ML-1M figures
depend on the exact split, so every array must come out as the original made it: on data with tied
timestamps, repeated (user, item) pairs, users with barely enough unseen items, no timestamps, and
the real MovieLens copies where present.
"""

import numpy as np
import pytest

from ncf.data import Dataset, leave_one_out, load, make_split, synthetic
from ncf.data import split as split_module
from ncf.data.dataset import Vocab
from ncf.data.split import filter_min_interactions, sample_negatives

FIELDS = ("train_user", "train_item", "train_rating", "train_time", "test_user", "test_item", "test_rating",
          "test_negatives", "valid_user", "valid_item", "valid_rating", "valid_time", "valid_negatives")


def reference_sample_negatives(ds_user, ds_item, n_items, users, n, rng):
    """`sample_negatives` as it was before the rewrite (commit 23908a6), verbatim but for names."""
    keys = np.sort(ds_user.astype(np.int64) * n_items + ds_item)
    seen = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    out = np.empty((len(users), n), dtype=np.int64)
    if not len(users):
        return out
    draw = rng.integers(0, n_items, size=(len(users), 3 * n + 8), dtype=np.int64)
    keys = users[:, None] * n_items + draw
    pos = np.searchsorted(seen, keys)
    is_seen = seen[np.minimum(pos, len(seen) - 1)] == keys
    draw = np.where(is_seen, -1, draw)
    draw.sort(axis=1)
    dup = np.zeros_like(draw, dtype=bool)
    dup[:, 1:] = draw[:, 1:] == draw[:, :-1]
    valid = (draw >= 0) & ~dup
    order = np.argsort(rng.random(draw.shape) + (~valid) * 2.0, axis=1)
    draw = np.take_along_axis(draw, order, axis=1)
    done = valid.sum(axis=1) >= n
    out[done] = draw[done, :n]
    short = np.flatnonzero(~done)
    if len(short):
        for chunk in np.array_split(short, -(-len(short) * n_items // (1 << 24))):
            distinct, row_of = np.unique(users[chunk], return_inverse=True)
            seen_by = np.zeros((len(distinct), n_items), dtype=bool)
            mine = np.isin(ds_user, distinct)
            seen_by[np.searchsorted(distinct, ds_user[mine]), ds_item[mine]] = True
            keys = rng.random((len(chunk), n_items))
            keys[seen_by[row_of]] = 2.0
            out[chunk] = np.argsort(keys, axis=1)[:, :n]
    return out


def reference_leave_one_out(ds, n_negatives=99, seed=0, validation=False) -> dict:
    """The arrays `leave_one_out` made before the rewrite: one lexsort by (user, time, tie-break)."""
    counts = ds.per_user_counts()
    if (counts < 2).any():
        ds = filter_min_interactions(ds, min_per_user=2)
        counts = ds.per_user_counts()
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(ds.n_interactions)
    time = ds.timestamp if ds.timestamp is not None else np.arange(ds.n_interactions)
    order = np.lexsort((tiebreak, time, ds.user))
    last = np.zeros(ds.n_interactions, dtype=bool)
    ends = np.cumsum(counts) - 1
    last[order[ends]] = True
    test_idx = np.flatnonzero(last)[np.argsort(ds.user[last], kind="stable")]
    n_negatives = min(n_negatives, int((ds.n_items - counts).min()))
    out = {"test_negatives": reference_sample_negatives(ds.user, ds.item, ds.n_items, ds.user[test_idx],
                                                        n_negatives, rng)}
    train = ~last
    if validation:
        second = np.zeros(ds.n_interactions, dtype=bool)
        second[order[(ends - 1)[counts >= 3]]] = True
        valid_idx = np.flatnonzero(second)[np.argsort(ds.user[second], kind="stable")]
        for name, col in (("user", ds.user), ("item", ds.item), ("rating", ds.rating), ("time", ds.timestamp)):
            out[f"valid_{name}"] = None if col is None else col[valid_idx]
        out["valid_negatives"] = reference_sample_negatives(ds.user, ds.item, ds.n_items, ds.user[valid_idx],
                                                            n_negatives, rng)
        train &= ~second
    for name, col in (("user", ds.user), ("item", ds.item), ("rating", ds.rating), ("time", ds.timestamp)):
        out[f"train_{name}"] = None if col is None else col[train]
        out[f"test_{name}"] = None if col is None else col[test_idx]
    out.pop("test_time")
    return out


def assert_same_as_reference(ds, **kwargs):
    split = leave_one_out(ds, **kwargs)
    want = reference_leave_one_out(ds, **kwargs)
    for name in FIELDS:
        got, expected = getattr(split, name), want.get(name)
        if expected is None:
            assert got is None, name
        else:
            assert got.dtype == expected.dtype and np.array_equal(got, expected), name


def arrays_dataset(user, item, timestamp=None, rating=None) -> Dataset:
    n_users, n_items = int(user.max()) + 1, int(item.max()) + 1
    return Dataset(name="arrays", user=user.astype(np.int64), item=item.astype(np.int64),
                   rating=rating, timestamp=timestamp, users=Vocab(np.arange(n_users), "user"),
                   items=Vocab(np.arange(n_items), "item"))


def tied_and_repeated(seed: int) -> Dataset:
    """Rows in random order, timestamps from four values (many ties per user), repeated (user, item)
    pairs, a few users who saw most of the 40 items, and users with one interaction (filtered)."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 150, 3000)
    item = np.minimum(rng.zipf(1.3, 3000) - 1, 39)
    heavy = np.repeat([150, 151], 36), np.tile(np.arange(36), 2)
    user, item = np.concatenate([user, heavy[0], [152]]), np.concatenate([item, heavy[1], [5]])
    time = rng.integers(0, 4, len(user)) * 1000
    rating = (rng.integers(1, 11, len(user)) / 2).astype(np.float32)
    order = rng.permutation(len(user))
    return arrays_dataset(user[order], item[order], time[order], rating[order])


def small_chunks(monkeypatch):
    """Every draw in chunks, a few rows at a time, a mask of one block of users: the paths ML-25M's
    cold-start splits take, on small data."""
    monkeypatch.setattr(split_module, "_DRAW_AT_ONCE", 0)
    monkeypatch.setattr(split_module, "_CHUNK_CANDIDATES", 100)
    monkeypatch.setattr(split_module, "_MASK_PAIRS", 40)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("order", ["sorted", "unsorted"])
def test_sample_negatives_equals_the_original_for_repeated_users(monkeypatch, chunked, order):
    ds = tied_and_repeated(2)
    if chunked:
        small_chunks(monkeypatch)
    users = np.sort(ds.user) if order == "sorted" else ds.user  # every interaction's user: a cold-start split's
    for n in (3, 4):  # 4: all the heavy users leave, so their rows take the exact path
        a, b = np.random.default_rng(n), np.random.default_rng(n)
        got = sample_negatives(ds.user, ds.item, ds.n_items, users, n, a)
        want = reference_sample_negatives(ds.user, ds.item, ds.n_items, users, n, b)
        assert np.array_equal(got, want)
        assert np.array_equal(a.random(4), b.random(4))  # the generator left where it was left before


@pytest.mark.parametrize("seed", [0, 1, 5])
@pytest.mark.parametrize("validation", [False, True])
@pytest.mark.parametrize("chunked", [False, True])
def test_leave_one_out_equals_the_original_on_tied_repeated_unsorted_rows(monkeypatch, seed, validation, chunked):
    if chunked:
        small_chunks(monkeypatch)
    ds = tied_and_repeated(seed)
    assert_same_as_reference(ds, n_negatives=3, seed=seed, validation=validation)
    # 30 negatives are cut to the 4 the heavy users (36 of 40 seen) leave: most of their rows come up
    # short of candidates and take the exact path.
    assert_same_as_reference(ds, n_negatives=30, seed=seed, validation=validation)


@pytest.mark.parametrize("validation", [False, True])
def test_leave_one_out_equals_the_original_on_planted_data_and_without_timestamps(validation):
    ds = synthetic(n_users=300, n_items=120, seed=7)
    assert_same_as_reference(ds, n_negatives=20, seed=2, validation=validation)
    rng = np.random.default_rng(4)
    no_time = arrays_dataset(rng.integers(0, 80, 2000), rng.integers(0, 500, 2000))
    assert_same_as_reference(no_time, n_negatives=99, seed=4, validation=validation)


def test_every_tied_row_is_the_same_time_and_draw_the_later_row_wins():
    # Equal time and equal tie-break cannot be drawn; equal time for all rows of a user can.
    ds = arrays_dataset(np.array([0, 0, 0, 1, 1, 1, 1]), np.array([0, 1, 2, 3, 4, 5, 6]),
                        timestamp=np.zeros(7, dtype=np.int64))
    for seed in range(20):
        assert_same_as_reference(ds, n_negatives=2, seed=seed, validation=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_leave_one_out_equals_the_original_on_movielens(shared_data, monkeypatch, name):
    monkeypatch.setenv("NCF_DATA_DIR", str(shared_data))
    ds = load(name)
    assert_same_as_reference(ds, seed=0)
    assert_same_as_reference(ds, seed=3, n_negatives=50, validation=True)
    assert make_split(ds, "leave_one_out", seed=0, validation=True).test_negatives.shape[1] == 99


def test_filtering_reindexes_as_the_original_did():
    # Users 150-152 and the item only they had are dropped: both vocabularies shrink.
    ds = tied_and_repeated(3)
    keep = np.bincount(ds.user, minlength=ds.n_users)[ds.user] >= 40
    users_used, items_used = np.unique(ds.user[keep]), np.unique(ds.item[keep])  # the original's way
    got = split_module.reindex(ds, keep, reason="test")
    assert np.array_equal(got.users.raw_ids, ds.users.raw(users_used))
    assert np.array_equal(got.items.raw_ids, ds.items.raw(items_used))
    assert np.array_equal(got.user, np.searchsorted(users_used, ds.user[keep]))
    assert np.array_equal(got.item, np.searchsorted(items_used, ds.item[keep]))
    assert got.n_users < ds.n_users and got.n_items < ds.n_items
