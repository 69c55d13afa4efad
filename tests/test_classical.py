"""The classical baselines against hand-computed answers: EASE against a direct linear solve, item-kNN
against hand-counted cosines (and implicit's own BM25), PureSVD against numpy's SVD; EASE's λ is
chosen without reading a test item; a catalogue too large for EASE is refused up front; each finds
the planted genres through explore (similar items, fold-in)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ncf import explore, registry
from ncf.classical import ease, itemknn
from ncf.classical.base import interaction_matrix
from ncf.classical.ease import EASE, ease_weights
from ncf.classical.itemknn import ItemKNN, item_weights, top_neighbours
from ncf.classical.puresvd import PureSVD
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.errors import ConfigError
from ncf.evaluate import rank_against
from ncf.runs import save_run
from ncf.train import train

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")


@pytest.fixture(scope="module")
def dataset():
    return synthetic()


@pytest.fixture(scope="module")
def split(dataset):
    return leave_one_out(dataset, seed=0)


def fit(model, user, item):
    """Fits a classical model on exactly these training pairs."""
    split = _FakeSplit(np.asarray(user), np.asarray(item))
    model.fit(split, TrainConfig())
    return model


@dataclasses.dataclass
class _FakeSplit:
    """Only what a fit with a given λ reads: the training rows (no validation)."""

    train_user: np.ndarray
    train_item: np.ndarray
    train_rating: np.ndarray | None = None
    has_validation: bool = False

    def without_validation(self):
        return self


# ---------------------------------------------------------------------------------------------
# EASE


def test_ease_equals_a_direct_solve_of_each_items_regression():
    rng = np.random.default_rng(0)
    x = (rng.random((12, 6)) < 0.4).astype(np.float64)
    lam = 2.5
    user, item = np.nonzero(x)
    model = fit(EASE(ModelConfig(model="ease", reg=lam), 12, 6), user, item)
    b = model.weights.double().numpy()
    # Steck's problem, column by column: min ||x_j - X_{-j} b||² + λ||b||², item j left out of its own regressors.
    for j in range(6):
        others = [i for i in range(6) if i != j]
        xo = x[:, others]
        direct = np.linalg.solve(xo.T @ xo + lam * np.eye(5), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], direct, atol=1e-5)
        assert b[j, j] == 0
    np.testing.assert_allclose(model.score_users(torch.arange(12)).double().numpy(), x @ b, atol=1e-5)
    assert float(model.reg_used) == lam


def test_ease_closed_form_keeps_a_zero_diagonal_at_any_lambda():
    gram = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    for lam in (0.1, 10.0, 1e4):
        assert torch.all(ease_weights(gram, lam).diagonal() == 0)


class _Poison:
    """Stands in for the test items: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test items were read ({name})")

    def __len__(self):
        raise AssertionError("the test items were read (len)")

    def __getitem__(self, key):
        raise AssertionError("the test items were read ([])")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the test items were read (as an array)")


@pytest.mark.parametrize("validation", [False, True])
def test_choosing_lambda_never_reads_the_test_items(dataset, validation):
    split = leave_one_out(dataset, seed=0, validation=validation)
    tcfg = TrainConfig()
    grid = (1.0, 30.0, 3000.0)
    model = EASE(ModelConfig(model="ease"), split.n_users, split.n_items)
    chosen, _, _ = model.choose_reg(split, tcfg, grid=grid)
    poisoned = dataclasses.replace(split, test_user=_Poison(), test_item=_Poison(), test_rating=_Poison(),
                                   test_negatives=_Poison())
    assert model.choose_reg(poisoned, tcfg, grid=grid)[0] == chosen

    # Test items planted to favour another λ: each user's test item is the one that λ ranks first
    # (among unseen items) and the test negatives are what the chosen λ ranks highest. Choosing by
    # the test items would pick the other λ; choosing by the hold-out must not move.
    other = grid[-1] if chosen != grid[-1] else grid[0]
    known = split.without_validation()
    x = interaction_matrix(known.train_user, known.train_item, split.n_users, split.n_items)
    gram = torch.as_tensor((x.T @ x).toarray(), dtype=torch.float64)
    xs = torch.as_tensor(x.toarray(), dtype=torch.float64)
    seen = xs > 0
    favoured = (xs @ ease_weights(gram, other)).masked_fill(seen, -np.inf)
    rival = (xs @ ease_weights(gram, chosen)).masked_fill(seen, -np.inf)
    test_item = favoured.argmax(1)
    rival[torch.arange(split.n_users), test_item] = -np.inf
    negatives = rival.topk(20, dim=1).indices
    planted = dataclasses.replace(split, test_user=np.arange(split.n_users), test_item=test_item.numpy(),
                                  test_negatives=negatives.numpy())
    for lam, expected_best in ((other, True), (chosen, False)):
        model.weights.copy_(ease_weights(gram, lam).float())
        model.set_history(known.train_user, known.train_item)
        scores = model.score_users(torch.arange(split.n_users)).gather(1, torch.cat([test_item[:, None], negatives], 1))
        hr = float((rank_against(scores[:, 0], scores[:, 1:]) < 10).double().mean())
        assert (hr > 0.9) == expected_best, (lam, hr)  # the planted test items do favour `other`
    assert model.choose_reg(planted, tcfg, grid=grid)[0] == chosen


def test_the_self_hold_out_is_each_users_latest_training_interaction():
    ds = synthetic(n_users=30, n_items=40, seed=1)
    split = leave_one_out(ds, seed=0)
    rows = ease.latest_per_user(split)
    times = ease.train_times(split)
    for r in rows:
        u = split.train_user[r]
        assert times[r] == times[split.train_user == u].max()
    assert len(np.unique(split.train_user[rows])) == len(rows)


def test_a_catalogue_too_large_for_ease_is_refused_before_any_work(split, monkeypatch):
    monkeypatch.setattr(ease, "free_memory_bytes", lambda device: 1_000_000)  # 1 MB free
    monkeypatch.setattr(ease, "ease_weights", lambda *a: pytest.fail("EASE started computing"))
    with pytest.raises(ConfigError, match=r"EASE needs dense 400 x 400 .*0\.0 GB.*limit"):
        train(RunConfig(model=ModelConfig(model="ease")), split)


def test_ease_on_the_planted_genres_beats_popularity_and_picks_a_lambda_from_the_grid(split):
    result = train(RunConfig(model=ModelConfig(model="ease")), split)
    pop = train(RunConfig(model=ModelConfig(model="pop")), split)
    assert result.metrics["hr@10"] > pop.metrics["hr@10"] + 0.3
    assert float(result.model.reg_used) in registry.EASE_LAMBDAS
    tried = [e["info"]["reg"] for e in result.history if e["event"] == "epoch"][:-1]
    assert tried == list(registry.EASE_LAMBDAS)


# ---------------------------------------------------------------------------------------------
# Item-kNN


def test_item_knn_cosine_matches_hand_counted_similarities():
    # Items A=0, B=1, C=2, D=3. Users: u0 {A, B}, u1 {A, B, C}, u2 {C, D}, u3 {D}.
    user = [0, 0, 1, 1, 1, 2, 2, 3]
    item = [0, 1, 0, 1, 2, 2, 3, 3]
    # |A| = |B| = 2, |C| = 2, |D| = 2 users. cos(A,B) = 2/2 = 1; cos(A,C) = cos(B,C) = 1/2;
    # cos(C,D) = 1/2; cos(A,D) = cos(B,D) = 0.
    expected = np.array([[0, 1, .5, 0], [1, 0, .5, 0], [.5, .5, 0, .5], [0, 0, .5, 0]])
    model = fit(ItemKNN(ModelConfig(model="itemknn", neighbours=3, similarity="cosine"), 4, 4), user, item)
    dense = model.similarity_matrix().double().numpy()
    np.testing.assert_allclose(dense, expected, atol=1e-6)
    # K = 1 keeps only each item's single best neighbour (ties: lower index).
    one = fit(ItemKNN(ModelConfig(model="itemknn", neighbours=1, similarity="cosine"), 4, 4), user, item)
    assert one.neighbour_index[:, 0].tolist() == [1, 0, 0, 2]
    # u3 has D only: scores are row D of S; u0 has A and B: rows A + B.
    scores = model.score_users(torch.tensor([3, 0])).double().numpy()
    np.testing.assert_allclose(scores, [expected[3], expected[0] + expected[1]], atol=1e-6)
    assert model.item_similarity(2).tolist() == pytest.approx([.5, .5, 0, .5])


def test_item_knn_cosine_and_bm25_match_implicits_recommenders():
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    rng = np.random.default_rng(0)
    x = (rng.random((40, 15)) < 0.3).astype(np.float32)
    user, item = np.nonzero(x)
    csr = interaction_matrix(user, item, 40, 15)
    theirs = implicit_nn.BM25Recommender(K=15, K1=itemknn.BM25_K1, B=itemknn.BM25_B)
    theirs.fit(csr.tocsr(), show_progress=False)
    ref = theirs.similarity.toarray()
    w = item_weights(csr, "bm25")
    ours = (w.T @ w).toarray()
    off = ~np.eye(15, dtype=bool)
    np.testing.assert_allclose(ours[off], ref[off], rtol=1e-4, atol=1e-5)
    cosine = implicit_nn.CosineRecommender(K=15)
    cosine.fit(csr, show_progress=False)
    wc = item_weights(csr, "cosine")
    np.testing.assert_allclose((wc.T @ wc).toarray(), cosine.similarity.toarray(), rtol=1e-5, atol=1e-6)
    index, value = top_neighbours(w, 14)
    assert (index != np.arange(15)[:, None]).all()  # an item is not its own neighbour


# ---------------------------------------------------------------------------------------------
# PureSVD


def test_puresvd_scores_equal_the_rank_k_projection_from_numpys_svd():
    rng = np.random.default_rng(1)
    x = (rng.random((20, 9)) < 0.35).astype(np.float64)
    user, item = np.nonzero(x)
    model = fit(PureSVD(ModelConfig(model="puresvd", factors=3), 20, 9), user, item)
    _, _, vt = np.linalg.svd(x)
    v = vt[:3].T
    expected = x @ v @ v.T
    np.testing.assert_allclose(model.score_users(torch.arange(20)).double().numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(model.score_new_user(torch.as_tensor(item[user == 4])).double().numpy(),
                               expected[4], atol=1e-4)


def test_puresvd_refuses_more_factors_than_the_matrix_has():
    with pytest.raises(ConfigError, match="fewer factors"):
        fit(PureSVD(ModelConfig(model="puresvd", factors=5), 5, 8), [0, 1], [0, 1])


# ---------------------------------------------------------------------------------------------
# iALS


def test_ials_new_user_solve_matches_implicits_recalculated_user(split):
    implicit_als = pytest.importorskip("implicit.cpu.als")
    result = train(RunConfig(model=ModelConfig(model="ials", factors=8, iterations=3, confidence=5.0)), split)
    model = result.model
    als = implicit_als.AlternatingLeastSquares(factors=8, regularization=registry.IALS_DEFAULTS["reg"], alpha=5.0)
    als.item_factors = model.item_emb.weight.numpy().copy()
    items = np.array([1, 5, 9, 30])
    row = interaction_matrix(np.zeros(4, dtype=np.int64), items, 1, split.n_items)
    theirs = als.recalculate_user(0, row)
    ours = model.score_new_user(torch.as_tensor(items)).double().numpy()
    np.testing.assert_allclose(ours, model.item_emb.weight.double().numpy() @ np.asarray(theirs).ravel(),
                               rtol=2e-3, atol=2e-3)


# ---------------------------------------------------------------------------------------------
# Through explore: similar items and fold-in find the planted genres


def genre_items(dataset, genre: str) -> list:
    idx = np.flatnonzero(dataset.item_info["genres"].to_numpy() == genre)
    counts = np.bincount(dataset.item, minlength=dataset.n_items)[idx]
    return dataset.items.raw(idx[np.argsort(-counts, kind="stable")]).tolist()


@pytest.fixture(scope="module")
def saved(split, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name in registry.names(gradient=False):
        if name == "pop":
            continue
        cfg = RunConfig(model=ModelConfig(model=name))
        out[name] = save_run(train(cfg, split), cfg, split, models_dir=root)
    return out


@pytest.mark.parametrize("name", ["ease", "ials", "itemknn", "puresvd"])
def test_similar_items_and_fold_in_find_the_planted_genre(name, saved, dataset):
    run = saved[name]
    same = []
    for genre in ("Action", "Horror"):
        for item in genre_items(dataset, genre)[:3]:
            similar = explore.similar_items(run, item, k=10)
            assert item not in set(similar["item"])
            same.append((similar["genres"] == genre).sum())
        liked = genre_items(dataset, genre)[:5]
        recs = explore.fold_in(run, {i: 5.0 for i in liked}, k=10)
        assert not set(liked) & set(recs["item"])
        assert (recs["genres"] == genre).sum() >= 7, (name, genre, recs)
    # PureSVD's 32 factors over 400 items keep much of the popularity direction: 5.5 of 10 (chance 1.7).
    assert np.mean(same) >= (5 if name == "puresvd" else 7), same
    top = explore.recommend(run, run.users.raw([0])[0], k=5)
    assert len(top) == 5


# ---------------------------------------------------------------------------------------------
# Real data


@pytest.mark.slow
def test_baselines_on_movielens_100k_beat_popularity_and_fit_quickly(shared_data, tmp_path):
    """ML-100k, leave-one-out seed 0 (benchmarks/results_baselines.md: EASE 0.658, iALS 0.673,
    PureSVD 0.632, item-kNN 0.607, most-popular 0.404), with a margin for other machines' BLAS."""
    from ncf.data import load

    split = leave_one_out(load(str(shared_data / "ml-100k")), seed=0)
    floors = {"ease": 0.64, "ials": 0.65, "puresvd": 0.61, "itemknn": 0.58}
    for name, floor in floors.items():
        result = train(RunConfig(model=ModelConfig(model=name)), split)
        assert result.metrics["hr@10"] >= floor, (name, result.metrics)
        assert result.train_seconds < 30, (name, result.train_seconds)
    run = save_run(result, RunConfig(model=ModelConfig(model="itemknn")), split, models_dir=tmp_path)
    star_wars = explore.search_titles(run, "star wars")["item"][0]
    assert "Return of the Jedi (1983)" in explore.similar_items(run, star_wars, k=10)["title"].tolist()


@pytest.mark.parametrize("name", [n for n in registry.names() if not registry.get(n).gradient])
def test_validation_items_never_enter_a_classical_fit(dataset, name):
    """A sweep or search chooses on the validation pairs, so a fit must not see them: scrambling which
    item each user holds out for validation leaves the fitted model's scores unchanged."""
    with_validation = leave_one_out(dataset, seed=0, validation=True)
    rng = np.random.default_rng(3)
    scrambled = dataclasses.replace(with_validation, valid_item=rng.permutation(with_validation.valid_item))
    scores = []
    for split in (with_validation, scrambled):
        cfg = RunConfig(model=ModelConfig(model=name, reg=300.0 if name == "ease" else None))
        result = train(cfg, split)
        with torch.no_grad():
            scores.append(result.model.score_users(torch.arange(20)))
    assert torch.allclose(scores[0], scores[1])
