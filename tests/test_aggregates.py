"""The Data page's aggregates: bounded in size however many rows, and the same counts as the rows."""

from __future__ import annotations

import numpy as np
import pytest

from ncf import aggregates
from ncf.data import synthetic
from ncf.data.dataset import Dataset, Vocab


def _long_tailed(n_users: int, n_items: int, rows: int, seed: int = 0, rating=True) -> Dataset:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, rows)
    item = (n_items * rng.random(rows) ** 2.5).astype(np.int64)
    return Dataset(name="tail", user=user, item=item,
                   rating=(rng.integers(1, 11, rows) / 2).astype(np.float32) if rating else None, timestamp=None,
                   users=Vocab(np.arange(n_users), "user"), items=Vocab(np.arange(n_items), "item"))


def test_summary_of_many_rows_is_bounded_and_counts_every_row():
    ds = _long_tailed(40_000, 30_000, 2_000_000)
    s = aggregates.summarize(ds, max_points=300, bins=40)
    # what goes to the browser: a few hundred numbers, not millions
    assert len(s.rating_values) == 10 and len(s.tail_rank) <= 300 and len(s.user_counts) <= 40
    assert s.rating_counts.sum() == ds.n_interactions
    assert s.user_counts.sum() == ds.n_users
    values, counts = np.unique(ds.rating, return_counts=True)
    assert np.allclose(s.rating_values, values) and (s.rating_counts == counts).all()
    ranked = np.sort(ds.per_item_counts())[::-1]
    assert s.tail_rank[0] == 1 and s.tail_rank[-1] == ds.n_items
    assert (s.tail_count == ranked[s.tail_rank - 1]).all()  # points of the exact curve
    assert ranked[: s.head_items].sum() >= ds.n_interactions / 2 > ranked[: s.head_items - 1].sum()
    assert s.user_median == np.median(ds.per_user_counts())


def test_summary_is_computed_once_per_dataset():
    ds = _long_tailed(500, 300, 5_000)
    assert aggregates.summarize(ds) is aggregates.summarize(ds)
    assert aggregates.summarize(_long_tailed(500, 300, 5_000)) is not aggregates.summarize(ds)


def test_user_histogram_bins_whole_interactions():
    edges, counts, median = aggregates.user_histogram(np.array([1, 1, 2, 5, 100]), bins=10)
    assert counts.sum() == 5 and len(counts) <= 10 and edges[0] == 1 and edges[-1] > 100
    width = edges[1] - edges[0]
    assert width == 10 and counts[0] == 4 and counts[-1] == 1 and median == 2  # 1 to 10 in the first bin


@pytest.mark.parametrize("rating", [np.array([1, 2, 2, 5], np.float32), np.array([0.5, 4.5, 4.5], np.float32)])
def test_star_ratings_are_counted_per_value(rating):
    values, counts = aggregates.rating_counts(rating)
    expected_values, expected_counts = np.unique(rating, return_counts=True)
    assert list(values) == list(expected_values) and list(counts) == list(expected_counts)


def test_continuous_ratings_are_binned_and_implicit_data_has_none():
    values, counts = aggregates.rating_counts(np.random.default_rng(0).random(10_000).astype(np.float32) * 5)
    assert len(values) == aggregates.MAX_RATING_VALUES and counts.sum() == 10_000
    assert aggregates.rating_counts(None) == (None, None)
    s = aggregates.summarize(_long_tailed(50, 40, 500, rating=False))
    assert s.rating_values is None


def test_small_catalogue_keeps_every_rank():
    ds = synthetic()
    s = aggregates.summarize(ds)
    assert list(s.tail_count) == sorted(ds.per_item_counts(), reverse=True)
