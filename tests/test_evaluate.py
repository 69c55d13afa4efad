import math

import numpy as np
import pytest
import torch

from ncf.config import ModelConfig
from ncf.data import leave_one_out, ratio_split, synthetic
from ncf.evaluate import evaluate, full_ranking_metrics, rating_metrics, sampled_metrics
from ncf.models import Recommender, build_model


class TableModel(Recommender):
    """A model whose scores are a given (n_users, n_items) table: lets a test hand-compute every metric."""

    def __init__(self, table, explicit: bool = False):
        table = torch.as_tensor(table, dtype=torch.float32)
        cfg = ModelConfig(model="dot", objective="explicit" if explicit else "implicit")
        super().__init__(cfg, table.shape[0], table.shape[1])
        self.register_buffer("table", table)

    def forward(self, user, item):
        return self.table[user, item]

    def score_users(self, users):
        return self.table[users]


def test_sampled_metrics_match_a_hand_computed_case():
    # user 0: held-out item 0 scores 0.9; negatives 1, 2, 3 score 0.95, 0.1, 0.2 -> rank 1 (one above it)
    # user 1: held-out item 3 scores 0.8 above all negatives -> rank 0
    table = [[0.9, 0.95, 0.1, 0.2], [0.1, 0.2, 0.3, 0.8]]
    model = TableModel(table)
    negatives = np.array([[1, 2, 3], [0, 1, 2]])
    at1 = sampled_metrics(model, [0, 1], [0, 3], negatives, k=1)
    assert at1 == {"hr@1": 0.5, "ndcg@1": 0.5}
    at2 = sampled_metrics(model, [0, 1], [0, 3], negatives, k=2)
    assert at2["hr@2"] == 1.0
    assert at2["ndcg@2"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)


def test_ties_are_broken_against_the_held_out_item():
    model = TableModel(np.zeros((3, 50)))  # a constant model: every candidate ties
    negatives = np.tile(np.arange(1, 50), (3, 1))
    assert sampled_metrics(model, [0, 1, 2], [0, 0, 0], negatives, k=10) == {"hr@10": 0.0, "ndcg@10": 0.0}
    full = full_ranking_metrics(model, [0], [5], [0, 1, 2], [0, 0, 0], k=10)
    assert full == {"full_recall@10": 0.0, "full_ndcg@10": 0.0}
    one_tie = TableModel([[1.0, 1.0, 0.0]])  # held-out item 0 ties with one negative: rank 1
    assert sampled_metrics(one_tie, [0], [0], np.array([[1, 2]]), k=1)["hr@1"] == 0.0
    assert sampled_metrics(one_tie, [0], [0], np.array([[1, 2]]), k=2)["hr@2"] == 1.0


def test_nan_scores_rank_last():
    model = TableModel([[float("nan"), 0.1, 0.2]])
    assert sampled_metrics(model, [0], [0], np.array([[1, 2]]), k=2)["hr@2"] == 0.0


def test_full_ranking_masks_training_items_and_counts_several_test_items():
    # One user, 6 items. Items 0 and 1 were trained on (masked), the test items are 2 and 4.
    table = [[9.0, 8.0, 5.0, 7.0, 3.0, 1.0]]
    model = TableModel(table)
    # Unmasked order: 3 (7), 2 (5), 4 (3), 5 (1) -> item 2 at rank 1, item 4 at rank 2.
    at2 = full_ranking_metrics(model, [0, 0], [0, 1], [0, 0], [2, 4], k=2)
    assert at2["full_recall@2"] == 0.5  # one hit of min(k, 2) = 2
    assert at2["full_ndcg@2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    at3 = full_ranking_metrics(model, [0, 0], [0, 1], [0, 0], [2, 4], k=3)
    assert at3["full_recall@3"] == 1.0
    assert at3["full_ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    # Without the mask the trained items would push the test items out of the top 2.
    unmasked = full_ranking_metrics(model, [], [], [0, 0], [2, 4], k=2)
    assert unmasked["full_recall@2"] == 0.0


def test_full_ranking_averages_over_users_in_chunks(monkeypatch):
    import ncf.evaluate as ev

    rng = np.random.default_rng(0)
    table = rng.random((37, 11))
    model = TableModel(table)
    users = np.arange(37)
    items = rng.integers(0, 11, 37)
    whole = full_ranking_metrics(model, [], [], users, items, k=3)
    monkeypatch.setattr(ev, "PAIRS_PER_CHUNK", 11 * 4)  # 4 users per chunk
    assert full_ranking_metrics(model, [], [], users, items, k=3) == pytest.approx(whole)
    ranks = (table >= table[users, items][:, None]).sum(1) - 1
    assert whole["full_recall@3"] == pytest.approx(np.mean(ranks < 3))


def test_rating_metrics_match_hand_computed_errors():
    model = TableModel([[3.0, 4.0], [2.0, 5.0]], explicit=True)
    m = rating_metrics(model, [0, 0, 1], [0, 1, 1], [4.0, 4.0, 3.0])
    assert m["mse"] == pytest.approx((1 + 0 + 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["mae"] == pytest.approx(1.0)


def test_evaluate_reports_the_metrics_that_apply_with_k_in_their_names():
    ds = synthetic(n_users=60, n_items=240, mean_per_user=12)
    implicit = evaluate(build_model(ModelConfig(model="gmf"), ds.n_users, ds.n_items), leave_one_out(ds), k=5)
    assert set(implicit) == {"hr@5", "ndcg@5", "full_recall@5", "full_ndcg@5"}
    explicit = evaluate(build_model(ModelConfig(model="embnn"), ds.n_users, ds.n_items), ratio_split(ds))
    assert set(explicit) == {"full_recall@10", "full_ndcg@10", "rmse", "mse", "mae"}
    sampled_only = evaluate(build_model(ModelConfig(model="gmf"), ds.n_users, ds.n_items), leave_one_out(ds),
                            full=False)
    assert set(sampled_only) == {"hr@10", "ndcg@10"}


def test_full_ranking_samples_users_beyond_the_pair_budget_and_says_how_many():
    from ncf.evaluate import full_ranking_sample

    users, items = np.arange(100).repeat(2), np.arange(200) % 50
    same = full_ranking_sample(users, items, n_items=50, max_pairs=100 * 50)
    assert same[2] is None and len(same[0]) == 200
    u, i, n = full_ranking_sample(users, items, n_items=50, max_pairs=10 * 50)
    assert n == 10 and len(np.unique(u)) == 10 and len(u) == 20
    again = full_ranking_sample(users, items, n_items=50, max_pairs=10 * 50)
    assert np.array_equal(again[0], u) and np.array_equal(again[1], i)  # seeded
