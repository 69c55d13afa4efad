"""Using a saved run: recommendations, history, similar items, fold-in, projections, search.

The planted-genre synthetic data gives known answers: a model that learned anything puts an item's
genre-mates next to it and recommends a genre to a new user who likes that genre."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncf import explore
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.errors import NCFError, RunError, UnknownIdError
from ncf.runs import load_run, save_run
from ncf.train import train

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")


@pytest.fixture(scope="module")
def dataset():
    return synthetic()


@pytest.fixture(scope="module")
def split(dataset):
    return leave_one_out(dataset, seed=0)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def _trained_run(split, root, **model):
    cfg = RunConfig(model=ModelConfig(**model), train=TrainConfig(epochs=5, seed=0))
    return save_run(train(cfg, split), cfg, split, models_dir=root)


@pytest.fixture(scope="module")
def neumf(split, models_root):
    """Implicit NeuMF, a few epochs: enough to find the planted genres (HR@10 far above popularity)."""
    # The app's size (8 factors), where fold-in is used; the CLI's 32-factor ML-1M default is
    # tuned for ML-1M and folds a new user into the 400-item synthetic set less sharply.
    return _trained_run(split, models_root, model="neumf", factors=8, layers=(64, 32, 16, 8))


@pytest.fixture(scope="module")
def dot_explicit(split, models_root):
    """Explicit dot-product MF with biases (fastbook's DotProductBias): fold-in fits ratings by MSE."""
    return _trained_run(split, models_root, model="dot", objective="explicit")


@pytest.fixture(scope="module")
def pop(split, models_root):
    return _trained_run(split, models_root, model="pop")


def genre_items(dataset, genre: str) -> list[int]:
    """Raw ids of one genre's items, most popular first."""
    idx = np.flatnonzero(dataset.item_info["genres"].to_numpy() == genre)
    idx = idx[np.argsort(-dataset.per_item_counts()[idx], kind="stable")]
    return [int(x) for x in dataset.items.raw(idx)]


# ---------------------------------------------------------------------------------------------
# recommend / user_history


def test_recommend_excludes_seen_items_and_returns_raw_ids(neumf, dataset):
    user = 17
    u = int(dataset.users.index(user)[0])
    seen = set(dataset.items.raw(neumf.train_item[neumf.train_user == u]).tolist())
    recs = explore.recommend(neumf, user, k=10)
    assert list(recs.columns) == ["item", "title", "genres", "score", "held_out"]
    assert len(recs) == 10 and not seen & set(recs["item"])
    assert recs["score"].is_monotonic_decreasing
    assert set(recs["item"]) <= set(dataset.items.to_list())
    titles = dict(zip(dataset.items.to_list(), dataset.item_info["title"], strict=True))
    assert all(titles[i] == t for i, t in zip(recs["item"], recs["title"], strict=True))
    with_seen = explore.recommend(neumf, user, k=neumf.n_items, exclude_seen=False)
    assert seen <= set(with_seen["item"])


def test_recommend_marks_the_held_out_item(neumf, dataset):
    user = dataset.users.raw(int(neumf.test_user[0]))
    held_out = dataset.items.raw(int(neumf.test_item[0]))
    everything = explore.recommend(neumf, user, k=neumf.n_items)  # every unseen item, held-out one included
    marked = everything[everything["held_out"]]
    assert marked["item"].tolist() == [held_out]


def test_ids_arrive_as_typed_and_unknown_ids_are_named(neumf):
    assert explore.recommend(neumf, "17", k=3)["item"].tolist() == explore.recommend(neumf, 17, k=3)["item"].tolist()
    with pytest.raises(UnknownIdError, match="Unknown user id 99999"):
        explore.recommend(neumf, 99999)
    with pytest.raises(UnknownIdError, match="Unknown item id 'nope'"):
        explore.similar_items(neumf, "nope")


def test_user_history_is_newest_first_with_the_held_out_item_on_top(neumf, dataset):
    user = 5
    u = int(dataset.users.index(user)[0])
    history = explore.user_history(neumf, user)
    assert len(history) == int((dataset.user == u).sum())
    assert {"item", "title", "genres", "rating", "timestamp", "held_out"} <= set(history.columns)
    assert history["timestamp"].is_monotonic_decreasing
    assert history["held_out"].tolist()[0] and history["held_out"].sum() == 1  # leave-one-out: the latest


# ---------------------------------------------------------------------------------------------
# similar_items


@pytest.mark.parametrize("genre", GENRES)
def test_similar_items_share_the_planted_genre(neumf, dataset, genre):
    same_genre = []
    for item in genre_items(dataset, genre)[:5]:
        similar = explore.similar_items(neumf, item, k=10)
        assert list(similar.columns) == ["item", "title", "genres", "similarity"]
        assert item not in set(similar["item"]) and len(similar) == 10
        assert similar["similarity"].is_monotonic_decreasing and similar["similarity"].max() <= 1 + 1e-9
        same_genre.append((similar["genres"] == genre).sum())
    assert np.mean(same_genre) >= 7, same_genre  # chance is about 1.7 in 10


def test_neumf_item_vectors_default_to_the_gmf_table(neumf):
    vectors, which = explore.item_vectors(neumf)
    assert which == "gmf" and vectors.shape == (neumf.n_items, neumf.config.model.factors)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    joined, which = explore.item_vectors(neumf, "gmf+mlp")
    assert joined.shape[1] == neumf.config.model.factors + neumf.config.model.resolved_layers[0] // 2
    assert np.allclose(np.linalg.norm(joined, axis=1), 1.0)
    assert explore.item_vectors(neumf, "mlp")[1] == "mlp"
    with pytest.raises(RunError, match="Unknown embedding table 'nope'"):
        explore.item_vectors(neumf, "nope")


def test_popularity_has_no_item_embeddings(pop):
    with pytest.raises(RunError, match="has no item embeddings"):
        explore.similar_items(pop, 1)
    with pytest.raises(RunError, match="has no item embeddings"):
        explore.project(pop)


# ---------------------------------------------------------------------------------------------
# fold_in


@pytest.mark.parametrize("genre", GENRES)
def test_fold_in_a_fan_of_one_genre_gets_that_genre(neumf, dataset, genre):
    liked = genre_items(dataset, genre)[:5]
    recs = explore.fold_in(neumf, {item: 5.0 for item in liked}, k=10)
    assert list(recs.columns) == ["item", "title", "genres", "score"]
    assert not set(liked) & set(recs["item"])
    assert (recs["genres"] == genre).sum() >= 7


@pytest.mark.parametrize("genre", ["Comedy", "Horror"])
def test_fold_in_fits_ratings_for_an_explicit_model(dot_explicit, dataset, genre):
    loved = genre_items(dataset, genre)[:5]
    other = next(g for g in GENRES if g != genre)
    hated = genre_items(dataset, other)[:5]
    recs = explore.fold_in(dot_explicit, {**{i: 5.0 for i in loved}, **{i: 1.0 for i in hated}}, k=10)
    assert (recs["genres"] == genre).sum() >= 7
    assert not (recs["genres"] == other).any()
    lo, hi = dot_explicit.config.model.y_range
    assert recs["score"].between(lo, hi).all()  # predicted ratings


def test_fold_in_leaves_the_shared_model_untouched(neumf, dataset):
    before = {k: v.clone() for k, v in neumf.model.state_dict().items()}
    explore.fold_in(neumf, {genre_items(dataset, "Drama")[0]: 5.0})
    after = neumf.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in neumf.model.parameters())


def test_fold_in_is_deterministic_and_checks_its_input(neumf, dataset):
    ratings = {item: 4.0 for item in genre_items(dataset, "Action")[:3]}
    first = explore.fold_in(neumf, ratings)
    assert first.equals(explore.fold_in(neumf, ratings))
    with pytest.raises(NCFError, match="Rate at least one item"):
        explore.fold_in(neumf, {})
    with pytest.raises(NCFError, match="3.5 or higher"):
        explore.fold_in(neumf, {item: 1.0 for item in ratings})
    with pytest.raises(UnknownIdError, match="Unknown item id 123456"):
        explore.fold_in(neumf, {123456: 5.0})


def test_fold_in_with_popularity_is_the_most_popular_unrated(pop, dataset):
    top = explore.search_titles(pop, "", limit=3)["item"].tolist()
    recs = explore.fold_in(pop, {top[0]: 5.0}, k=2)
    assert recs["item"].tolist() == top[1:3]


# ---------------------------------------------------------------------------------------------
# project / search_titles


def test_project_items_and_users(neumf):
    items = explore.project(neumf, kind="item", n=2)
    assert items.which == "gmf" and items.kind == "item"
    assert items.coords.shape[0] == neumf.n_items
    assert {"pc1", "pc2", "id", "title", "genres", "popularity", "mean_rating"} <= set(items.coords.columns)
    assert len(items.explained_variance_ratio) == 2
    assert all(0 < r <= 1 for r in items.explained_variance_ratio) and sum(items.explained_variance_ratio) <= 1 + 1e-9
    assert items.coords["popularity"].sum() == len(neumf.train_item)

    users = explore.project(neumf, kind="user", which="mlp", n=3)
    assert users.coords.shape[0] == neumf.n_users and {"pc1", "pc2", "pc3"} <= set(users.coords.columns)
    assert users.coords["genres"].isin(GENRES).all()  # each user's most watched genre
    with pytest.raises(NCFError, match="components"):
        explore.project(neumf, n=500)
    with pytest.raises(NCFError, match="'item' or 'user'"):
        explore.project(neumf, kind="genre")


def test_item_projection_separates_the_planted_genres(neumf):
    """Genre centroids in the first two components lie further apart than items spread around them."""
    coords = explore.project(neumf, kind="item", n=2).coords
    points = coords[["pc1", "pc2"]].to_numpy()
    centroids = coords.groupby("genres")[["pc1", "pc2"]].mean()
    within = np.mean([np.linalg.norm(points[coords["genres"] == g] - centroids.loc[g].to_numpy(), axis=1).mean()
                      for g in centroids.index])
    between = np.linalg.norm(centroids.to_numpy() - points.mean(axis=0), axis=1).mean()
    assert between > 0.5 * within


def test_search_titles_is_case_insensitive_and_popular_first(neumf):
    hits = explore.search_titles(neumf, "HEIST", limit=50)
    assert len(hits) > 0 and hits["title"].str.lower().str.contains("heist").all()
    assert hits["popularity"].is_monotonic_decreasing
    assert len(explore.search_titles(neumf, "", limit=5)) == 5
    assert explore.search_titles(neumf, "no such film anywhere").empty


def test_explore_works_on_a_reloaded_run(neumf, dataset):
    """Everything comes from the folder: a run loaded by path answers like the one just saved."""
    again = load_run(neumf.path)
    user = 3
    assert explore.recommend(again, user).equals(explore.recommend(neumf, user))


def test_queries_restore_the_thread_settings(neumf):
    from threadpoolctl import threadpool_info

    torch_threads = torch.get_num_threads()
    blas = [pool["num_threads"] for pool in threadpool_info()]
    explore.recommend(neumf, 1)
    explore.project(neumf)
    assert torch.get_num_threads() == torch_threads
    assert [pool["num_threads"] for pool in threadpool_info()] == blas


def test_string_ids_and_implicit_data_round_trip(tmp_path):
    """Uploaded data often has text ids and no ratings: ids come back as the same strings, and
    fold-in takes every given item as liked."""
    from dataclasses import replace

    from ncf.data import Vocab

    base = synthetic(n_users=80, n_items=40, seed=2)
    users = Vocab([f"u{i:03d}" for i in range(base.n_users)], "user")
    items = Vocab([f"film-{i:03d}" for i in range(base.n_items)], "item")
    ds = replace(base, users=users, items=items, rating=None, item_info=None, user_info=None)
    split = leave_one_out(ds, n_negatives=10, seed=0)
    cfg = RunConfig(model=ModelConfig(model="gmf"), train=TrainConfig(epochs=1))
    run = load_run(save_run(train(cfg, split), cfg, split, models_dir=tmp_path).path)
    assert run.items.to_list() == items.to_list() and run.train_rating is None
    recs = explore.recommend(run, "u007", k=5)
    assert recs["item"].str.startswith("film-").all() and (recs["title"] == recs["item"]).all()
    assert "rating" not in explore.user_history(run, "u007").columns
    folded = explore.fold_in(run, {"film-001": 1.0, "film-002": 1.0}, k=5)  # implicit: any rating is "seen"
    assert len(folded) == 5 and not {"film-001", "film-002"} & set(folded["item"])
    assert set(explore.search_titles(run, "FILM-03")["item"]) == {f"film-03{i}" for i in range(10)}


@pytest.mark.slow
def test_movielens_100k_run_answers_with_titles(shared_data, tmp_path):
    """Real data, a short NeuMF: Star Wars' nearest items include Return of the Jedi, and fans of
    the trilogy are not recommended the films they rated."""
    from ncf.data import load

    split = leave_one_out(load(str(shared_data / "ml-100k")), seed=0)
    cfg = RunConfig(model=ModelConfig(model="neumf"), train=TrainConfig(epochs=3, seed=0))
    run = load_run(save_run(train(cfg, split), cfg, split, models_dir=tmp_path).path)
    star_wars = explore.search_titles(run, "star wars")
    assert star_wars["title"].tolist()[0] == "Star Wars (1977)"
    similar = explore.similar_items(run, star_wars["item"][0], k=10)
    assert "Return of the Jedi (1983)" in similar["title"].tolist()
    history = explore.user_history(run, 1)
    assert len(history) == 272 and history["rating"].between(1, 5).all() and history["timestamp"].notna().all()
    trilogy = {50: 5, 172: 5, 181: 5}
    recs = explore.fold_in(run, trilogy, k=10)
    assert not set(trilogy) & set(recs["item"]) and recs["title"].str.len().gt(0).all()


def test_pca_takes_the_randomized_path_for_wide_tables_and_agrees_with_the_exact_one():
    rng = np.random.default_rng(0)
    scale = np.r_[10.0, 6.0, 3.0, np.full(37, 0.3)]  # three planted directions, well apart, then noise
    weight = rng.normal(size=(3000, 40)) * scale @ np.linalg.qr(rng.normal(size=(40, 40)))[0]  # (rows, d), rotated
    exact, exact_ratios, solver = explore.pca(weight, 3)
    assert solver == "covariance_eigh"
    fast, fast_ratios, solver = explore.pca(weight, 3, randomized_min_dims=40)
    assert solver == "randomized"
    signs = np.sign((exact * fast).sum(axis=0))  # components agree up to sign
    assert np.allclose(exact, fast * signs, atol=1e-4 * np.abs(exact).max())
    assert np.allclose(exact_ratios, fast_ratios)
    assert explore.pca(rng.normal(size=(59_047, 32)), 8)[2] == "covariance_eigh"  # ML-25M's items: exact, faster
    assert explore.RANDOMIZED_MIN_DIMS > 256  # every registry model's tables stay on the exact path


@pytest.mark.parametrize("layout", ["sorted", "grouped by a sort", "scanned"])
def test_a_users_training_rows_are_found_alike_however_the_run_holds_them(neumf, monkeypatch, layout):
    import dataclasses

    import ncf.runs.run

    run = neumf
    expected = [np.sort(run.train_item[run.train_rows(u)]) for u in range(run.n_users)]
    order = np.argsort(run.train_user, kind="stable")
    if layout != "sorted":  # rows in no particular order, as a split of an unsorted file leaves them
        order = np.random.default_rng(0).permutation(len(order))
    run = dataclasses.replace(run, train_user=run.train_user[order], train_item=run.train_item[order])
    if layout == "scanned":
        monkeypatch.setattr(ncf.runs.run, "SCAN_MIN_ROWS", 0)
    for u in range(run.n_users):
        assert (np.sort(run.train_item[run.train_rows(u)]) == expected[u]).all()
    assert run._train_sorted_by_user == (layout == "sorted")
    assert ("_train_by_user" in run.__dict__) == (layout == "grouped by a sort")
