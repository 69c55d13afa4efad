"""The CUDA path (bf16 autocast, generators and masks on the GPU): runs only where a CUDA GPU is.

CI has none; these run on a lent GPU machine (`python -m pytest tests/test_cuda.py`), and the CPU
tests cover the same code paths without autocast.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, ratio_split, synthetic
from ncf.evaluate import evaluate
from ncf.explore import recommend
from ncf.runs import load_run, save_run
from ncf.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic())


def on_cuda(model: str = "neumf", **train_kw) -> RunConfig:
    return RunConfig(model=ModelConfig(model=model), train=TrainConfig(device="cuda", **train_kw))


def test_every_implicit_model_learns_the_planted_structure_on_the_gpu(split):
    pop = train(RunConfig(model=ModelConfig(model="pop")), split).metrics["hr@10"]
    for name in ("gmf", "mlp", "neumf", "dot"):
        result = train(on_cuda(name), split)
        assert result.device.startswith("cuda")
        assert result.metrics["hr@10"] > pop + 0.2, (name, result.metrics)
    mixed = train(on_cuda("neumf", mixed_precision=True), split)  # bf16 autocast, opt-in
    assert mixed.metrics["hr@10"] > pop + 0.2, mixed.metrics


def test_gpu_and_cpu_evaluate_the_same_weights_alike(split):
    result = train(on_cuda("neumf", epochs=3), split)
    on_gpu = evaluate(result.model, split)
    on_cpu = evaluate(result.model.to("cpu"), split)
    for key in ("hr@10", "ndcg@10", "full_recall@10"):
        assert on_gpu[key] == pytest.approx(on_cpu[key], abs=2e-3), key


def test_pretraining_and_the_explicit_objective_run_on_the_gpu():
    ratings = ratio_split(synthetic(), seed=0)
    baseline = float(np.sqrt(np.mean((ratings.test_rating - ratings.train_rating.mean()) ** 2)))
    for name in ("embnn", "dot"):
        result = train(RunConfig(model=ModelConfig(model=name, objective="explicit"),
                                 train=TrainConfig(device="cuda")), ratings)
        assert result.metrics["rmse"] < 0.9 * baseline, name
    pre = train(RunConfig(model=ModelConfig(model="neumf", pretrain=True), train=TrainConfig(device="cuda", epochs=2)),
                leave_one_out(synthetic(), validation=True))
    assert [e["stage"] for e in pre.history if e["event"] == "start"] == ["gmf", "mlp", "neumf"]
    assert pre.best_epoch is not None and 0 <= pre.metrics["hr@10"] <= 1


def test_a_gpu_run_saves_and_loads_on_the_cpu_with_the_same_scores(split, tmp_path):
    cfg = on_cuda("neumf", epochs=2)
    result = train(cfg, split)
    run = save_run(result, cfg, split, models_dir=tmp_path)
    loaded = load_run(run.path)
    users = torch.arange(split.n_users).repeat_interleave(3)
    items = torch.randint(0, split.n_items, (len(users),), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = result.model.to("cpu")(users, items)
        assert torch.allclose(loaded.model(users, items), expected)
    assert len(recommend(loaded, split.dataset.users.raw(np.array([0]))[0], k=5)) == 5


def test_a_stop_request_ends_gpu_training_within_a_second():
    big = leave_one_out(synthetic(n_users=3000, n_items=1000, mean_per_user=60, seed=1))
    stop, training, set_at = threading.Event(), threading.Event(), []

    def request_stop():
        training.wait(60)
        time.sleep(0.5)
        set_at.append(time.perf_counter())
        stop.set()

    threading.Thread(target=request_stop, daemon=True).start()
    result = train(on_cuda("neumf", epochs=200), big, stop=stop,
                   on_event=lambda e: training.set() if e.kind == "batch" else None)
    assert result.stopped and set_at
    assert time.perf_counter() - set_at[0] < 1.0


def test_a_cuda_graph_step_trains_as_the_eager_step(split):
    """The recorded step replays the same computation: same seed, constant rate, both learn alike (the
    index_add_ backward's atomic sums differ in the last bits, so not bit for bit)."""
    runs = {}
    for graph in (False, True):
        # Adam without decay: the recipe's 0.1 is decoupled under AdamW, and as Adam's L2 it flattens the model.
        cfg = on_cuda("neumf", optimizer="adam", lr=0.003, weight_decay=0.0, one_cycle=False, epochs=4,
                      cuda_graph=graph)
        runs[graph] = train(cfg, split)
    pop = train(RunConfig(model=ModelConfig(model="pop")), split).metrics["hr@10"]
    assert runs[True].metrics["hr@10"] > pop + 0.2, runs[True].metrics
    assert runs[True].metrics["hr@10"] == pytest.approx(runs[False].metrics["hr@10"], abs=0.03)
    losses = {g: [e["train_loss"] for e in r.history if e["event"] == "epoch"] for g, r in runs.items()}
    assert losses[True] == pytest.approx(losses[False], rel=0.02)


def test_the_large_batch_preset_runs_graphed_on_the_gpu(split):
    from ncf.config import apply_preset

    cfg = apply_preset(RunConfig(), "large-batch", {"train": {"device": "cuda", "epochs": 2, "batch_size": 4096,
                                                              "cuda_graph": True}})
    result = train(cfg, split)
    assert result.device.startswith("cuda") and 0 <= result.metrics["hr@10"] <= 1


def test_the_classical_models_fit_on_the_gpu(split):
    pop = train(RunConfig(model=ModelConfig(model="pop")), split).metrics["hr@10"]
    for name in ("ease", "puresvd", "itemknn"):
        result = train(on_cuda(name), split)
        assert result.device.startswith("cuda") and result.metrics["hr@10"] > pop + 0.1, (name, result.metrics)
