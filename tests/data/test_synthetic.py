import numpy as np

from ncf.data import synthetic


def test_synthetic_default_has_titles_genres_timestamps_and_ratings():
    ds = synthetic()
    assert ds.n_users == 600 and ds.n_items == 400 and ds.timestamp is not None
    assert ds.rating_scale == (1.0, 5.0)
    assert len(ds.item_info) == ds.n_items and ds.item_info["title"].is_unique
    assert synthetic().fingerprint() == ds.fingerprint()  # seeded


def test_planted_genre_groups_are_really_there():
    ds = synthetic(seed=1)
    favourite = ds.user_info["favourite_genre"].to_numpy()[ds.user]  # (n_interactions,)
    genre = ds.item_info["genres"].to_numpy()[ds.item]
    in_genre = favourite == genre
    n_genres = ds.item_info["genres"].nunique()
    # Users watch mostly their own genre, far above the 1/n_genres of random picks...
    assert in_genre.mean() > 0.6 > 2 / n_genres
    # ...and rate it higher.
    assert ds.rating[in_genre].mean() > ds.rating[~in_genre].mean() + 1.0
    # Item popularity is long-tailed: the top 10% of items take a large share of interactions.
    counts = np.sort(ds.per_item_counts())[::-1]
    assert counts[: ds.n_items // 10].sum() > 0.25 * ds.n_interactions
