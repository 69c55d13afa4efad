"""The contract every registered model keeps, neural or classical: fitted through `ncf.train.train`
with the same events, shapes, chunked scoring equal to direct scoring, forward equal to
`score_users`, and a saved run that loads to identical scores. Parametrised over the registry, so
a new model is covered without editing this file."""

from __future__ import annotations

import threading

import pytest
import torch

from ncf import registry, runs
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.errors import ConfigError
from ncf.models import build_model, describe_architecture
from ncf.runs import load_run, save_run
from ncf.train import train

ALL = registry.names()


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic(n_users=120, n_items=80, seed=3), n_negatives=20, seed=0)


def small_config(name: str) -> RunConfig:
    spec = registry.get(name)
    model = ModelConfig(model=name, factors=8, objective=spec.default_objective)
    if "layers" in spec.settings:
        model = model.replace(layers=(16, 8))
    if name == "ials":
        model = model.replace(iterations=3)
    return RunConfig(model=model, train=TrainConfig(epochs=1, batch_size=512))


@pytest.fixture(scope="module")
def fitted(split):
    results = {}
    for name in ALL:
        events: list[dict] = []
        cfg = small_config(name)
        results[name] = (cfg, train(cfg, split, on_event=lambda e, seen=events: seen.append(e.to_dict())), events)
    return results


def test_every_registry_entry_is_complete():
    for name, spec in registry.REGISTRY.items():
        assert spec.name == name and spec.label and spec.description and spec.formula
        assert set(spec.objectives) <= {"implicit", "explicit"} and spec.objectives
        assert set(spec.defaults) <= set(spec.settings) | {"layers"}, name
        assert spec.cls.__name__  # the factory resolves
        ModelConfig(model=name).validate()


@pytest.mark.parametrize("name", ALL)
def test_fit_emits_start_epoch_done_and_returns_metrics(name, fitted):
    _, result, events = fitted[name]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "epoch" in kinds
    assert events[-1]["metrics"] == result.metrics
    assert 0 <= result.metrics["hr@10"] <= 1 and "full_recall@10" in result.metrics
    assert not result.stopped


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_forward_agree_with_score_users(name, fitted, split):
    _, result, _ = fitted[name]
    model = result.model.cpu().eval()
    users = torch.tensor([0, 3, 7])
    n_items = split.n_items
    with torch.no_grad():
        scores = model.score_users(users)
        pairs = model(users.repeat_interleave(n_items), torch.arange(n_items).repeat(3)).view(3, n_items)
    assert scores.shape == (3, n_items)
    assert torch.isfinite(scores).all()
    torch.testing.assert_close(scores.float(), pairs.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_chunked_scoring_agrees_with_direct(name, fitted, split):
    model = fitted[name][1].model.cpu().eval()
    users = torch.arange(split.n_users)
    with torch.no_grad():
        direct = model.score_users(users)
        chunked = torch.cat([model.score_users(users[i:i + 7]) for i in range(0, len(users), 7)])
    torch.testing.assert_close(chunked, direct, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_save_and_load_give_identical_scores(name, fitted, split, tmp_path):
    cfg, result, _ = fitted[name]
    run = save_run(result, cfg, split, models_dir=tmp_path)
    runs.clear_cache()
    loaded = load_run(run.path)
    assert type(loaded.model) is type(result.model)
    users = torch.arange(split.n_users)
    with torch.no_grad():
        assert torch.equal(loaded.model.score_users(users), result.model.cpu().eval().score_users(users))


@pytest.mark.parametrize("name", registry.names(gradient=False))
def test_a_set_stop_flag_ends_a_classical_fit(name, split):
    stop = threading.Event()
    stop.set()
    cfg = small_config(name)
    result = train(cfg, split, stop=stop)
    assert result.history[-1]["event"] == "done" and "hr@10" in result.metrics
    if result.model.fit_steps > 1:  # a one-step fit has nothing left to skip
        assert result.stopped


@pytest.mark.parametrize("name", ALL)
def test_settings_of_other_models_are_refused(name):
    spec = registry.get(name)
    for setting in registry.EXTRA_SETTINGS:
        if setting not in spec.settings:
            value = "cosine" if setting == "similarity" else 3
            with pytest.raises(ConfigError, match="does not apply"):
                ModelConfig(model=name, **{setting: value}).validate()


@pytest.mark.parametrize("name", ALL)
def test_unsupported_objectives_are_refused(name):
    spec = registry.get(name)
    for objective in {"implicit", "explicit"} - set(spec.objectives):
        with pytest.raises(ConfigError, match="objective"):
            build_model(ModelConfig(model=name, objective=objective), 5, 5)


@pytest.mark.parametrize("name", ALL)
def test_every_model_describes_itself_for_the_model_page(name):
    rows = describe_architecture(small_config(name).model, 943, 1682)
    assert rows and all(set(r) == {"name", "shape", "params", "note"} and r["shape"].startswith("(B, ") for r in rows)
