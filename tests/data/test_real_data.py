"""The real MovieLens copies in ../shared/data (skipped when absent). Read only: nothing is copied."""

import numpy as np
import pytest

from ncf.data import format_summary, leave_one_out, load

pytestmark = pytest.mark.slow


def test_real_ml100k(shared_data):
    ds = load(str(shared_data / "ml-100k"))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100_000)
    assert np.bincount(ds.rating.astype(int))[1:].tolist() == [6110, 11370, 27145, 34174, 21201]
    assert (ds.timestamp.min(), ds.timestamp.max()) == (874724710, 893286638)
    assert ds.titles(ds.items.index([1]))[0] == "Toy Story (1995)"
    assert ds.item_info["genres"][0] == "Animation|Children's|Comedy"
    assert len(ds.user_info) == 943 and ds.dropped == {}


def test_real_partial_ml1m_by_name(shared_data, monkeypatch):
    monkeypatch.setenv("NCF_DATA_DIR", str(shared_data))
    ds = load("ml-1m")
    assert ds.name == "ml-1m (users 1–2999 only: ratings.users-1-2999.partial.dat)"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2999, 3615, 487_650)
    assert ds.per_user_counts().min() >= 20
    assert "absent from the partial ratings file" in format_summary(ds)
    # A latin-1 title with accents, read correctly.
    assert any("é" in t for t in ds.item_info["title"])
    split = leave_one_out(ds, seed=0)
    assert len(split.test_user) == 2999 and split.test_negatives.shape == (2999, 99)
