"""Time features (hour, weekday, years since release): per-interaction context, shared by a sampled
negative with its positive, and each user's last training time when recommending."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ncf import runs
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import load, make_split
from ncf.data.features import ITEM_YEAR, USER_TIME, available, build, describe_available, for_split, to_context
from ncf.errors import ConfigError
from ncf.models import build_model, count_parameters, describe_architecture
from ncf.runs import load_run, save_run
from ncf.train import Fitter, resolve_train_config, train

from .data.conftest import write_ml100k

TIME = ("hour", "weekday", "years_since_release")


@pytest.fixture
def ds(tmp_path):
    return load(str(write_ml100k(tmp_path)))


def test_a_timestamp_becomes_hour_weekday_and_time_in_utc():
    # 0: Thursday 1 January 1970, 00:00; 874724710: Saturday 20 September 1997, 03:05:10 (ML-100k's first)
    ctx = to_context(np.array([0, 874724710]))
    assert ctx[:, 0].tolist() == [0, 3] and ctx[:, 1].tolist() == [3, 5]
    assert ctx[0, 2] == 1970.0 and 1997.71 < ctx[1, 2] < 1997.73


def test_a_source_with_timestamps_and_years_lists_the_time_features(ds):
    assert set(TIME) <= set(available(ds))
    rows = {r["feature"]: r for r in describe_available(ds)}
    assert rows["hour"]["categories"] == 24 and rows["weekday"]["categories"] == 7
    assert rows["years_since_release"]["side"] == "context"


def test_the_feature_list_is_remembered_per_dataset_and_a_callers_edit_does_not_leak(ds):
    first = describe_available(ds)
    first[0]["categories"] = -1
    first.append({"feature": "mine"})
    again = describe_available(ds)
    assert again[0]["categories"] != -1 and "mine" not in {r["feature"] for r in again}
    assert again == describe_available(ds)


def test_the_encoders_learn_from_training_interactions_and_each_users_last_time(ds):
    split = make_split(ds, "leave_one_out", seed=0)
    fs = build(ds, TIME, train_pairs=(split.train_user, split.train_item, split.train_time))
    # Each user's default context is their last *training* interaction, never the held-out test one.
    for u in range(ds.n_users):
        last = split.train_time[split.train_user == u].max()
        assert np.allclose(fs.tables[USER_TIME][u], to_context(np.array([last]))[0])
        assert last < ds.timestamp[ds.user == u].max()  # the test item is the latest
    assert fs.tables[ITEM_YEAR].shape == (ds.n_items,)


def test_a_sampled_negative_carries_its_positives_context(ds):
    split = make_split(ds, "leave_one_out", seed=0)
    cfg = RunConfig(model=ModelConfig(model="embnn", objective="implicit", features=TIME, layers=(8,)),
                    train=TrainConfig(epochs=1, batch_size=8, n_negatives=3, device="cpu"))
    model_cfg, fs = for_split(cfg.model, split)
    fitter = Fitter(build_model(model_cfg, ds.n_users, ds.n_items, fs), split, resolve_train_config(cfg, split),
                    torch.device("cpu"))
    users, items, target = fitter.epoch_data()
    rows = fitter.epoch_rows
    assert len(rows) == len(users) == 4 * split.n_train
    # Every sample's row is a training interaction of the same user; a positive's row is its own pair.
    assert torch.equal(torch.as_tensor(split.train_user)[rows.long()], users.long())
    assert torch.equal(torch.as_tensor(split.train_item)[rows[target].long()], items[target].long())
    ctx = fitter.batch_context(slice(0, len(users)))
    assert torch.equal(ctx, torch.as_tensor(to_context(split.train_time))[rows.long()])


@pytest.mark.parametrize("layers", [(8, 4), (8,)])
def test_score_users_agrees_with_forward_and_the_view_counts_the_parameters(ds, layers):
    fs = build(ds, ("age", "genres", *TIME))
    cfg = ModelConfig(model="embnn", features=("age", "genres", *TIME), layers=layers)
    torch.manual_seed(0)
    model = build_model(cfg, ds.n_users, ds.n_items, fs).eval()
    with torch.no_grad():
        model.time_features.item_year[1] = float("nan")  # an unknown release year: age 0, not NaN
    users = torch.arange(ds.n_users)
    pairs = model(users.repeat_interleave(ds.n_items), torch.arange(ds.n_items).repeat(ds.n_users))
    assert torch.isfinite(pairs).all()
    assert torch.allclose(model.score_users(users), pairs.view(ds.n_users, ds.n_items), atol=1e-5)
    rows = describe_architecture(cfg, ds.n_users, ds.n_items, fs)
    assert sum(r["params"] for r in rows) == count_parameters(model)
    assert any(r["name"] == "time feature: hour (embedding)" for r in rows)


def test_time_features_are_for_embeddingnn_only_and_all_leaves_them_out_for_neumf(ds):
    split = make_split(ds, "leave_one_out", seed=0)
    with pytest.raises(ConfigError, match="only EmbeddingNN"):
        for_split(ModelConfig(model="neumf", objective="implicit", features=("hour",)), split)
    cfg, fs = for_split(ModelConfig(model="neumf", objective="implicit", features=("all",)), split)
    assert not set(TIME) & set(cfg.features) and fs is not None


def _hour_dataset(tmp_path):
    """A planted time effect: items 0-9 rated 5 before noon and 1 after, items 10-19 the other way round;
    users and items alike rate both ways, so ids alone cannot tell."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        for i in range(20):
            hour = int(rng.integers(24))
            t = 1_000_000_000 - 1_000_000_000 % 86400 + int(rng.integers(100)) * 86400 + hour * 3600
            rows.append((u, i, 5.0 if (hour < 12) == (i < 10) else 1.0, t))
    path = tmp_path / "hours.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).to_csv(path, index=False)
    return load(str(path))


def test_the_hour_feature_finds_a_planted_time_of_day_effect(tmp_path):
    ds = _hour_dataset(tmp_path)
    assert available(ds)[:2] == ("hour", "weekday") and "years_since_release" not in available(ds)
    split = make_split(ds, "ratio", seed=0, test_fraction=0.2)
    mse = {}
    for features in ((), ("hour",)):
        cfg = RunConfig(model=ModelConfig(model="embnn", objective="explicit", features=features, layers=(16,)),
                        train=TrainConfig(epochs=25, batch_size=32, lr=0.01, weight_decay=0.0, device="cpu", seed=0))
        model = train(cfg, split).model.eval()
        # The test pairs scored at their own moments (the context a request would bring).
        when = dict(zip(zip(ds.user.tolist(), ds.item.tolist(), strict=True), ds.timestamp.tolist(), strict=True))
        test_time = np.array([when[p] for p in zip(split.test_user.tolist(), split.test_item.tolist(), strict=True)])
        context = torch.as_tensor(to_context(test_time))
        u, i = torch.as_tensor(split.test_user), torch.as_tensor(split.test_item)
        with torch.no_grad():
            pred = model(u, i, context) if features else model(u, i)
        mse[features] = float(((pred - torch.as_tensor(split.test_rating)) ** 2).mean())
    assert mse[("hour",)] < 0.5 < 3.0 < mse[()]


def test_a_saved_run_with_time_features_scores_alike_and_a_new_user_is_ranked_at_the_latest_time(ds, tmp_path):
    from ncf.explore import fold_in
    from ncf.explore.newuser import one_user_model

    split = make_split(ds, "leave_one_out", seed=0)
    cfg = RunConfig(model=ModelConfig(model="embnn", objective="implicit", features=("occupation", *TIME),
                                      layers=(8,)), train=TrainConfig(epochs=1, batch_size=4, device="cpu"))
    result = train(cfg, split)
    run = save_run(result, cfg, split, models_dir=tmp_path)
    # main renamed the cache's clearing to runs.clear_cache(); this branch still has runs._cache
    (runs.clear_cache if hasattr(runs, "clear_cache") else runs._cache.clear)()
    loaded = load_run(run.path)
    users = torch.arange(ds.n_users)
    assert torch.allclose(loaded.model.score_users(users), result.model.cpu().eval().score_users(users))
    one, _ = one_user_model(loaded)
    assert one.time_features.user_time[0, 2] == loaded.model.time_features.user_time[:, 2].max()
    assert len(fold_in(loaded, {}, k=3, user_features={"occupation": "writer"})) == 3
    assert len(fold_in(loaded, {1: 5.0}, k=3, steps=3)) == 3
