import json
import math
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

import ncf.train.fitter as fitter_module
import ncf.train.stages as stages_module
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, ratio_split, synthetic
from ncf.errors import ConfigError
from ncf.evaluate import evaluate
from ncf.models import NeuMF, Recommender, build_model
from ncf.train import (
    PRETRAINED_NEUMF_LR,
    PRETRAINED_NEUMF_OPTIMIZER,
    Fitter,
    lr_find,
    one_cycle_lr,
    resolve_train_config,
    train,
)


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic())


@pytest.fixture(scope="module")
def small_split():
    return leave_one_out(synthetic(n_users=120, n_items=200, mean_per_user=20, seed=3))


@pytest.fixture(scope="module")
def default_result(split):
    """The default NeuMF on the default synthetic data: what a first-time user trains."""
    return train(RunConfig(), split)


def test_the_planted_structure_is_found(split, default_result):
    pop = train(RunConfig(model=ModelConfig(model="pop")), split).metrics
    assert default_result.metrics["hr@10"] > pop["hr@10"] + 0.25
    assert default_result.metrics["full_recall@10"] > 2 * pop["full_recall@10"]


def test_item_embeddings_separate_the_planted_genres(split, default_result):
    genres = split.dataset.item_info["genres"].to_numpy()
    item_emb = default_result.model.embedding_tables()["gmf"][1].weight.detach().numpy()
    coords = PCA(n_components=5).fit_transform(item_emb)
    accuracy = cross_val_score(LogisticRegression(max_iter=1000), coords, genres, cv=3).mean()
    assert accuracy > 0.9  # chance is 1/6


def test_events_follow_the_contract_and_are_json(default_result):
    history = default_result.history
    json.dumps(history)
    assert history[0]["event"] == "start" and history[-1]["event"] == "done"
    assert {"device", "n_train", "steps_per_epoch", "epochs", "stage"} <= set(history[0])
    epochs = [e for e in history if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, default_result.epochs + 1))
    for e in epochs:
        assert {"epoch", "train_loss", "metrics", "elapsed", "eta", "samples_per_second", "stage"} <= set(e)
        assert "hr@10" in e["metrics"]
    assert "full_recall@10" in epochs[-1]["metrics"]  # full ranking at the end
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    done = history[-1]
    assert done["metrics"] == default_result.metrics and done["stopped"] is False
    assert {"epochs", "train_seconds", "samples_per_second"} <= set(done)
    assert default_result.device == "cpu" and not default_result.stopped


def test_batch_events_report_progress(small_split, monkeypatch):
    monkeypatch.setattr(stages_module, "BATCH_EVENT_SECONDS", 0.0)
    events = []
    train(RunConfig(train=TrainConfig(epochs=1, batch_size=256)), small_split,
          on_event=lambda e: events.append(e.to_dict()))
    batches = [e for e in events if e["event"] == "batch"]
    assert len(batches) == events[0]["steps_per_epoch"]
    assert {"epoch", "step", "steps", "loss", "samples_per_second", "elapsed", "eta", "stage"} <= set(batches[0])
    assert batches[-1]["step"] == batches[-1]["steps"] and batches[-1]["eta"] >= 0


def test_a_short_epoch_still_draws_a_loss_curve(small_split):
    events = []
    train(RunConfig(train=TrainConfig(epochs=2, batch_size=256)), small_split,
          on_event=lambda e: events.append(e.to_dict()))
    steps = events[0]["steps_per_epoch"]
    for epoch in (1, 2):  # each epoch takes well under BATCH_EVENT_SECONDS here
        batches = [e for e in events if e["event"] == "batch" and e["epoch"] == epoch]
        assert stages_module.BATCH_EVENTS_PER_EPOCH <= len(batches) <= steps


def test_a_stop_request_ends_training_within_a_second_keeping_the_model():
    big = leave_one_out(synthetic(n_users=3000, n_items=1000, mean_per_user=60, seed=1))
    stop = threading.Event()
    training = threading.Event()
    set_at = []

    def request_stop():
        # Measured from a moment when batches are running: the promise is about a run in progress,
        # and set-up time on a loaded machine is not what this pins down.
        training.wait(60)
        time.sleep(0.5)
        set_at.append(time.perf_counter())
        stop.set()

    def on_event(event):
        if event.kind == "batch":
            training.set()

    threading.Thread(target=request_stop, daemon=True).start()
    result = train(RunConfig(train=TrainConfig(epochs=100)), big, stop=stop, on_event=on_event)
    ended = time.perf_counter()
    assert result.stopped and set_at
    assert ended - set_at[0] < 1.0, f"took {ended - set_at[0]:.2f} s after the stop request"
    assert result.epochs < 100
    assert isinstance(result.model, NeuMF) and not result.model.training
    assert "hr@10" in result.metrics and result.history[-1]["stopped"] is True


def test_a_stop_set_before_starting_returns_the_untrained_model(small_split):
    stop = threading.Event()
    stop.set()
    result = train(RunConfig(), small_split, stop=stop)
    assert result.stopped and result.epochs == 0 and isinstance(result.model, Recommender)


def test_same_seed_same_metrics_and_weights(small_split):
    cfg = RunConfig(train=TrainConfig(epochs=2, seed=7))
    a, b = train(cfg, small_split), train(cfg, small_split)
    assert a.metrics == b.metrics
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    c = train(replace(cfg, train=cfg.train.replace(seed=8)), small_split)
    assert not torch.equal(a.model.mlp.user_emb.weight, c.model.mlp.user_emb.weight)


def test_training_continues_a_given_model(small_split):
    cfg = RunConfig(train=TrainConfig(epochs=1))
    first = train(cfg, small_split)
    before = first.model.gmf_user_emb.weight.detach().clone()
    more = train(cfg, small_split, model=first.model)
    assert more.model is first.model
    assert not torch.equal(before, more.model.gmf_user_emb.weight)
    assert more.history[-1]["event"] == "done" and more.epochs == 1


def test_pretraining_runs_gmf_then_mlp_then_neumf_in_one_call(small_split):
    cfg = RunConfig(model=ModelConfig(model="neumf", pretrain=True), train=TrainConfig(epochs=1))
    result = train(cfg, small_split)
    starts = [e for e in result.history if e["event"] == "start"]
    assert [e["stage"] for e in starts] == ["gmf", "mlp", "neumf"]
    assert starts[-1]["optimizer"] == PRETRAINED_NEUMF_OPTIMIZER and starts[-1]["lr"] == PRETRAINED_NEUMF_LR
    assert isinstance(result.model, NeuMF) and "hr@10" in result.metrics


def test_the_pipelines_stages_are_the_runs_a_user_would_make_alone(small_split):
    pipeline = train(RunConfig(model=ModelConfig(model="neumf", factors=8, pretrain=True),
                               train=TrainConfig(epochs=2)), small_split)
    for name in ("gmf", "mlp"):
        alone = train(RunConfig(model=ModelConfig(model=name, factors=8), train=TrainConfig(epochs=2)), small_split)
        stage = [e["metrics"] for e in pipeline.history if e["event"] == "epoch" and e["stage"] == name]
        assert stage[-1] == alone.metrics, name


def test_pretraining_fine_tunes_with_the_optimizer_the_configuration_names(small_split):
    cfg = RunConfig(model=ModelConfig(model="neumf", pretrain=True),
                    train=TrainConfig(epochs=1, optimizer="adam", lr=1e-4))
    result = train(cfg, small_split)
    starts = [e for e in result.history if e["event"] == "start"]
    assert starts[-1]["optimizer"] == "adam" and starts[-1]["lr"] == 1e-4
    assert isinstance(result.model, NeuMF) and "hr@10" in result.metrics


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "adagrad"])
def test_every_optimizer_lowers_the_loss(small_split, optimizer):
    lr = {"sgd": 0.5, "adagrad": 0.05}.get(optimizer, 0.005)
    cfg = RunConfig(model=ModelConfig(model="gmf"), train=TrainConfig(epochs=3, optimizer=optimizer, lr=lr,
                                                                      weight_decay=1e-4 if optimizer == "adamw" else 0))
    losses = [e["train_loss"] for e in train(cfg, small_split).history if e["event"] == "epoch"]
    assert losses[-1] < losses[0]


def test_explicit_models_beat_predicting_the_mean():
    split = ratio_split(synthetic(), seed=0)
    baseline = float(np.sqrt(np.mean((split.test_rating - split.train_rating.mean()) ** 2)))
    for name in ("embnn", "dot"):
        result = train(RunConfig(model=ModelConfig(model=name, objective="explicit")), split)
        assert result.metrics["rmse"] < 0.9 * baseline, name
        assert result.train_config.one_cycle and result.train_config.weight_decay == 0.1


def test_the_popularity_baseline_trains_instantly(split):
    result = train(RunConfig(model=ModelConfig(model="pop")), split)
    counts = np.bincount(split.train_item, minlength=split.n_items)
    assert torch.equal(result.model.popularity, torch.as_tensor(counts, dtype=torch.float32))
    assert 0 < result.metrics["hr@10"] < 1


def test_explicit_objective_needs_ratings():
    ds = synthetic(n_users=50, n_items=120)
    implicit = replace(ds, rating=None)
    split = ratio_split(implicit)
    with pytest.raises(ConfigError, match="ratings"):
        train(RunConfig(model=ModelConfig(model="embnn")), split)


@pytest.mark.parametrize("mask_cells", [1 << 27, 0])  # the dense seen-mask and the sorted-keys search
def test_negatives_can_exclude_seen_items(small_split, monkeypatch, mask_cells):
    monkeypatch.setattr(fitter_module, "SEEN_MASK_MAX_CELLS", mask_cells)
    tcfg = resolve_train_config(RunConfig(train=TrainConfig(exclude_seen=True, n_negatives=8)))
    model = build_model(ModelConfig(), small_split.n_users, small_split.n_items)
    fitter = Fitter(model, small_split, tcfg, torch.device("cpu"))
    users, items = fitter.draw_negatives(8)
    seen = set(zip(small_split.train_user.tolist(), small_split.train_item.tolist(), strict=True))
    assert not any((u, i) in seen for u, i in zip(users.tolist(), items.tolist(), strict=True))
    assert len(users) == 8 * small_split.n_train


def test_one_cycle_warms_up_then_anneals():
    lrs = [one_cycle_lr(s, 100, 0.01)[0] for s in range(100)]
    assert lrs[0] == pytest.approx(0.01 / 25)
    assert max(lrs) == pytest.approx(0.01) and int(np.argmax(lrs)) == 25
    assert lrs[-1] < 0.01 / 1000
    assert one_cycle_lr(25, 100, 0.01)[1] == pytest.approx(0.85)


def test_lr_find_returns_a_curve_and_a_suggestion(small_split):
    result = lr_find(RunConfig(model=ModelConfig(model="gmf")), small_split, steps=60)
    assert len(result.lrs) == len(result.losses) >= 20
    assert result.lrs == sorted(result.lrs)
    assert all(math.isfinite(x) for x in result.losses)
    assert 1e-6 <= result.suggestion <= 1.0
    with pytest.raises(ConfigError):
        lr_find(RunConfig(), small_split, start=1.0, end=0.1)


@pytest.fixture(scope="module")
def valid_split():
    return leave_one_out(synthetic(n_users=300, n_items=200, mean_per_user=30, seed=4), validation=True)


def test_with_a_validation_hold_out_the_best_epoch_is_kept(valid_split):
    cfg = RunConfig(model=ModelConfig(model="gmf", factors=16), train=TrainConfig(epochs=6, lr=0.05, one_cycle=False))
    result = train(cfg, valid_split)
    scores = [e["metrics"]["val_hr@10"] for e in result.history if e["event"] == "epoch"]
    assert result.best_epoch == 1 + scores.index(max(scores))
    assert result.metrics["val_hr@10"] == max(scores)
    again = evaluate(result.model, valid_split)  # the metrics are those of the weights returned
    assert again["hr@10"] == result.metrics["hr@10"] and again["full_recall@10"] == result.metrics["full_recall@10"]
    assert result.history[-1]["best_epoch"] == result.best_epoch


def test_continuing_a_model_that_training_makes_worse_keeps_it_as_it_was(valid_split):
    base = train(RunConfig(model=ModelConfig(model="gmf", factors=16), train=TrainConfig(epochs=3)), valid_split)
    users = torch.arange(50).repeat_interleave(4)
    items = torch.arange(200).repeat(1)[: len(users)]
    with torch.no_grad():
        before = base.model(users, items).clone()
    wreck = RunConfig(model=ModelConfig(model="gmf", factors=16),
                      train=TrainConfig(epochs=2, optimizer="sgd", lr=500.0, weight_decay=0.0, one_cycle=False))
    result = train(wreck, valid_split, model=base.model)
    starts = [e for e in result.history if e["event"] == "start"]
    assert result.best_epoch == 0 and "val_hr@10" in starts[0]["start_metrics"]
    with torch.no_grad():
        assert torch.equal(result.model(users, items), before)
    stop = threading.Event()
    stop.set()  # a stopped run keeps what it had, so it reports no kept epoch
    stopped = train(wreck, valid_split, model=base.model, stop=stop)
    assert stopped.stopped and stopped.best_epoch is None and stopped.history[-1]["best_epoch"] is None


def _two_by_two_fitter(batch_size: int, lr: float = 0.1, example_l2: float = 0.5) -> Fitter:
    """Rendle et al.'s model on 2 users x 2 items with one factor and weights set by hand:
    p = (1, 0.5), q = (2, -1), b_u = (0.1, 0), b_i = (0, 0.2), b = 0.3."""
    from types import SimpleNamespace

    cfg = ModelConfig(model="dot", factors=1, global_bias=True)
    model = build_model(cfg, 2, 2)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor([[1.0], [0.5]]))
        model.item_emb.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        model.user_bias.weight.copy_(torch.tensor([[0.1], [0.0]]))
        model.item_bias.weight.copy_(torch.tensor([[0.0], [0.2]]))
        model.bias.fill_(0.3)
    tcfg = TrainConfig(epochs=1, batch_size=batch_size, lr=lr, optimizer="sgd", weight_decay=0.0, one_cycle=False,
                       exclude_seen=False, loss_reduction="sum", example_l2=example_l2, device="cpu")
    # The trainer only reads the positives off the split; these two pairs are never drawn from here.
    split = SimpleNamespace(train_user=np.array([0, 1]), train_item=np.array([0, 1]), train_rating=None)
    return Fitter(model, split, tcfg, torch.device("cpu"))


def _weights(model) -> dict[str, list[float]]:
    return {"p": model.user_emb.weight.flatten().tolist(), "q": model.item_emb.weight.flatten().tolist(),
            "bu": model.user_bias.weight.flatten().tolist(), "bi": model.item_bias.weight.flatten().tolist(),
            "b": [model.bias.item()]}


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_a_summed_sgd_step_with_per_example_l2_is_the_hand_computed_one():
    # Examples (u0, i0, 1) and (u0, i1, 0), lr 0.1, λ 0.5: each example moves what it touches by
    # lr * (g * ∂y/∂θ - λ θ), g = label - σ(y), all from the weights before the step.
    fitter = _two_by_two_fitter(batch_size=2)
    loss = fitter.step(torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([True, False]))
    g0 = 1 - _sigmoid(2 + 0.1 + 0.0 + 0.3)  # y = p0 q0 + b_u0 + b_i0 + b = 2.4
    g1 = 0 - _sigmoid(-1 + 0.1 + 0.2 + 0.3)  # y = p0 q1 + b_u0 + b_i1 + b = -0.4
    expected = {
        "p": [1 + 0.1 * (g0 * 2 + g1 * -1 - 2 * 0.5 * 1), 0.5],  # user 0 is in both examples, user 1 in none
        "q": [2 + 0.1 * (g0 * 1 - 0.5 * 2), -1 + 0.1 * (g1 * 1 - 0.5 * -1)],
        "bu": [0.1 + 0.1 * (g0 + g1 - 2 * 0.5 * 0.1), 0.0],
        "bi": [0 + 0.1 * (g0 - 0.5 * 0), 0.2 + 0.1 * (g1 - 0.5 * 0.2)],
        "b": [0.3 + 0.1 * (g0 + g1 - 2 * 0.5 * 0.3)],
    }
    got = _weights(fitter.model)
    for name, values in expected.items():
        assert got[name] == pytest.approx(values, abs=1e-6), name
    # The reported loss is the batch's mean logistic loss, not the summed objective.
    assert float(loss) == pytest.approx((math.log1p(math.exp(-2.4)) + math.log1p(math.exp(-0.4))) / 2, abs=1e-6)


def test_batches_of_one_are_rendle_et_als_per_example_sgd():
    """mf_simple.py's loop, transcribed: for each example in turn, every parameter it touches moves by
    lr * (g * gradient - reg * parameter), the biases included."""
    lr, reg = 0.1, 0.5
    w = {"p": [1.0, 0.5], "q": [2.0, -1.0], "bu": [0.1, 0.0], "bi": [0.0, 0.2], "b": [0.3]}
    examples = [(0, 0, 1), (0, 1, 0), (1, 1, 1)]
    for u, i, label in examples:
        pu, qi = w["p"][u], w["q"][i]
        g = label - _sigmoid(w["b"][0] + w["bu"][u] + w["bi"][i] + pu * qi)
        w["p"][u] += lr * (g * qi - reg * pu)
        w["q"][i] += lr * (g * pu - reg * qi)
        w["bu"][u] += lr * (g - reg * w["bu"][u])
        w["bi"][i] += lr * (g - reg * w["bi"][i])
        w["b"][0] += lr * (g - reg * w["b"][0])
    fitter = _two_by_two_fitter(batch_size=1, lr=lr, example_l2=reg)
    for u, i, label in examples:
        fitter.step(torch.tensor([u]), torch.tensor([i]), torch.tensor([bool(label)]))
    got = _weights(fitter.model)
    for name, values in w.items():
        assert got[name] == pytest.approx(values, abs=1e-6), name


def test_a_summed_loss_at_rate_lr_over_b_steps_as_the_mean_loss_at_lr():
    """Without per-example L2 the two reductions differ only by the batch size's factor on the step."""
    mean, summed = _two_by_two_fitter(batch_size=2, example_l2=0.0), _two_by_two_fitter(batch_size=2, lr=0.05,
                                                                                         example_l2=0.0)
    mean.tcfg = mean.tcfg.replace(loss_reduction="mean")
    batch = (torch.tensor([0, 1]), torch.tensor([1, 1]), torch.tensor([False, True]))
    assert float(mean.step(*batch)) == pytest.approx(float(summed.step(*batch)), abs=1e-7)
    for name, values in _weights(mean.model).items():
        assert _weights(summed.model)[name] == pytest.approx(values, abs=1e-7), name
