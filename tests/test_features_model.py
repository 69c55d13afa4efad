"""EmbeddingNN with side features: the architecture view, scoring paths, and a saved run that rebuilds them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncf import runs
from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.data import load, make_split
from ncf.data.features import build
from ncf.errors import ConfigError
from ncf.models import build_model, count_parameters, describe_architecture
from ncf.runs import load_run, save_run
from ncf.train import train

from .data.conftest import write_ml100k

ALL = ("age", "gender", "occupation", "zip", "genres", "year")


@pytest.fixture
def ds(tmp_path):
    return load(str(write_ml100k(tmp_path)))


def test_architecture_view_shows_each_feature_with_its_width_and_the_parameters_add_up(ds):
    fs = build(ds, ALL)
    cfg = ModelConfig(model="embnn", features=ALL, layers=(8,))
    rows = describe_architecture(cfg, ds.n_users, ds.n_items, fs)
    shapes = {r["name"]: r["shape"] for r in rows}
    # ml-100k layout: 2 genders, 3 occupations (+ unknown each); ages and years are one number each.
    assert shapes["user feature: gender (embedding)"] == "(B, 3)"  # round(1.6 * 3^0.56)
    assert shapes["user feature: age (number)"] == "(B, 1)"
    assert shapes["item feature: genres (mean of its genres' embeddings)"] == f"(B, {fs.specs[4].width})"
    width = sum(s.width for s in fs.specs)
    concat = next(r for r in rows if r["name"] == "concatenate")
    assert concat["shape"] == f"(B, {3 + 4 + width})"  # fastai's rule: 4 users -> 3, 5 items -> 4
    model = build_model(cfg, ds.n_users, ds.n_items, fs)
    assert sum(r["params"] for r in rows) == count_parameters(model)
    plain = describe_architecture(cfg.replace(features=()), ds.n_users, ds.n_items)
    assert sum(r["params"] for r in plain) < count_parameters(model)


def test_score_users_agrees_with_forward_for_every_item(ds):
    fs = build(ds, ALL)
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="embnn", features=ALL, layers=(8, 4)), ds.n_users, ds.n_items, fs).eval()
    users = torch.arange(ds.n_users)
    full = model.score_users(users)
    pairs = model(users.repeat_interleave(ds.n_items), torch.arange(ds.n_items).repeat(ds.n_users))
    assert torch.allclose(full, pairs.view(ds.n_users, ds.n_items), atol=1e-6)


def test_features_need_their_tables_and_a_model_that_takes_them(ds):
    with pytest.raises(ConfigError, match="feature tables"):
        build_model(ModelConfig(model="embnn", features=("genres",)), ds.n_users, ds.n_items)
    with pytest.raises(ConfigError, match="ids only"):
        ModelConfig(model="gmf", features=("genres",)).validate()
    with pytest.raises(ConfigError, match="Unknown feature"):
        ModelConfig(model="embnn", features=("shoe_size",)).validate()


def test_a_run_with_features_saves_and_loads_with_the_same_encoders_and_scores(ds, tmp_path):
    split = make_split(ds, "ratio", seed=0, test_fraction=0.3)
    cfg = RunConfig(data=DataConfig(source="x", split="ratio"), model=ModelConfig(model="embnn", features=("all",),
                    layers=(8,)), train=TrainConfig(epochs=1, batch_size=4, device="cpu"))
    result = train(cfg, split)
    run = save_run(result, cfg, split, models_dir=tmp_path / "models")
    # "all" recorded as what it meant for this data: its user and item features, and the time features
    assert run.config.model.features == (*ALL, "hour", "weekday", "years_since_release")
    runs.clear_cache()
    loaded = load_run(run.path)
    assert (run.path / "features.json").is_file()
    users = torch.arange(ds.n_users)
    assert torch.allclose(loaded.model.score_users(users), result.model.cpu().eval().score_users(users))
    spec = {s.name: s for s in loaded.model.feature_specs}["occupation"]
    assert "technician" in spec.categories


def test_runs_without_features_still_load(ds, tmp_path):
    split = make_split(ds, "ratio", seed=0, test_fraction=0.3)
    cfg = RunConfig(model=ModelConfig(model="embnn", layers=(8,)), train=TrainConfig(epochs=1, batch_size=4,
                    device="cpu"))
    run = save_run(train(cfg, split), cfg, split, models_dir=tmp_path)
    assert not (run.path / "features.json").exists()
    runs.clear_cache()
    assert load_run(run.path).model.user_features is None
    assert np.isfinite(load_run(run.path).model.score_users(torch.arange(2)).numpy()).all()


def test_a_new_user_folds_into_a_run_with_features(ds, tmp_path):
    from ncf.explore import fold_in

    split = make_split(ds, "ratio", seed=0, test_fraction=0.3)
    cfg = RunConfig(model=ModelConfig(model="embnn", features=("all",), layers=(8,)),
                    train=TrainConfig(epochs=1, batch_size=4, device="cpu"))
    run = save_run(train(cfg, split), cfg, split, models_dir=tmp_path)
    recs = fold_in(run, {1: 5.0, 3: 4.0}, k=3, steps=5)
    assert len(recs) == 3 and not set(recs["item"]) & {1, 3}


@pytest.mark.parametrize("model", ["embnn", "mlp", "neumf"])
@pytest.mark.parametrize("layers", [(16, 8), (16,)])
def test_every_model_that_takes_features_scores_alike_both_ways_and_counts_its_parameters(ds, model, layers):
    fs = build(ds, ALL)
    cfg = ModelConfig(model=model, objective="implicit", features=ALL, layers=layers, factors=4)
    torch.manual_seed(0)
    m = build_model(cfg, ds.n_users, ds.n_items, fs).eval()
    assert sum(r["params"] for r in describe_architecture(cfg, ds.n_users, ds.n_items, fs)) == count_parameters(m)
    assert {s.name for s in m.feature_specs} == set(ALL)
    users = torch.arange(ds.n_users)
    pairs = m(users.repeat_interleave(ds.n_items), torch.arange(ds.n_items).repeat(ds.n_users))
    assert torch.allclose(m.score_users(users), pairs.view(ds.n_users, ds.n_items), atol=1e-5)


def test_pretraining_with_features_is_refused():
    with pytest.raises(ConfigError, match="without --pretrain"):
        ModelConfig(model="neumf", features=("genres",), pretrain=True).validate()


def test_a_new_user_with_no_ratings_is_ranked_from_their_attributes_alone(ds, tmp_path):
    from ncf.errors import NCFError
    from ncf.explore import fold_in, user_feature_specs

    split = make_split(ds, "ratio", seed=0, test_fraction=0.3)
    cfg = RunConfig(model=ModelConfig(model="embnn", features=("all",), layers=(8,)),
                    train=TrainConfig(epochs=3, batch_size=2, device="cpu", lr=0.1))
    run = save_run(train(cfg, split), cfg, split, models_dir=tmp_path)
    assert [s.name for s in user_feature_specs(run)] == ["age", "gender", "occupation", "zip"]
    writer = fold_in(run, {}, k=5, user_features={"occupation": "writer", "age": 23})
    other = fold_in(run, {}, k=5, user_features={"occupation": "technician", "age": 53})
    assert len(writer) == 5 and not np.allclose(writer["score"], other["score"])
    # A value the run never saw maps to the unknown category: no index error.
    assert len(fold_in(run, {}, k=5, user_features={"occupation": "astronaut", "gender": "X"})) == 5
    with pytest.raises(NCFError, match="Rate at least one item"):
        fold_in(run, {}, k=5)


def test_id_dropout_zeroes_id_embeddings_in_training_only(ds):
    fs = build(ds, ALL)
    cfg = ModelConfig(model="embnn", features=ALL, layers=(8,), id_dropout=0.5)
    model = build_model(cfg, ds.n_users, ds.n_items, fs)
    users = torch.zeros(400, dtype=torch.long)
    model.train()
    dropped = (model.user_input(users)[:, :3] == 0).all(dim=1).float().mean()
    assert 0.35 < float(dropped) < 0.65
    model.eval()
    assert not (model.user_input(users)[:, :3] == 0).all(dim=1).any()
    with pytest.raises(ConfigError, match="needs the embnn model and some --features"):
        ModelConfig(model="embnn", id_dropout=0.5).validate()


def test_a_tampered_features_file_is_refused_with_a_reason(ds, tmp_path):
    import hashlib
    import json as _json

    from ncf.errors import RunError

    split = make_split(ds, "ratio", seed=0, test_fraction=0.3)
    cfg = RunConfig(model=ModelConfig(model="embnn", features=("genres",), layers=(8,)),
                    train=TrainConfig(epochs=1, batch_size=4, device="cpu"))
    run = save_run(train(cfg, split), cfg, split, models_dir=tmp_path)
    specs = _json.loads((run.path / "features.json").read_text())
    specs["specs"][0]["cardinality"] = "many"
    data = _json.dumps(specs).encode()
    (run.path / "features.json").write_bytes(data)
    manifest = _json.loads((run.path / "manifest.json").read_text())  # re-signed: only the content is wrong
    manifest["files"]["features.json"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (run.path / "manifest.json").write_text(_json.dumps(manifest))
    runs.clear_cache()
    with pytest.raises(RunError, match="do not fit its configuration"):
        load_run(run.path)
