"""A pre-training stage's metrics are those of the model that stage trained, full ranking included.

Issue 14 reported an MLP stage at sampled HR@10 0.615 with a full-ranking recall@10 of 0.0011, below
what random scores give (10 / n_items). Re-run on ML-100K with the app's settings of the time (AdamW
0.01, 8 epochs a stage) the MLP stage reads HR@10 0.614 and recall@10 0.105, exactly the standalone
MLP's figures; this pins that agreement and the chance floor on the synthetic data."""

from __future__ import annotations

from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.data import make_split, synthetic
from ncf.train import train


def _final(events, stage):
    return [e for e in events if e["event"] == "epoch" and e.get("stage") == stage][-1]["metrics"]


def test_the_mlp_stage_ranks_every_item_as_the_standalone_mlp_does():
    split = make_split(synthetic(), "leave_one_out", seed=0, n_negatives=99)
    t = TrainConfig(epochs=3, lr=0.01, optimizer="adamw", weight_decay=0.1, one_cycle=True, device="cpu")
    pipeline = train(RunConfig(data=DataConfig(), model=ModelConfig(model="neumf", pretrain=True), train=t), split)
    alone = train(RunConfig(data=DataConfig(), model=ModelConfig(model="mlp"), train=t), split)
    stage = _final(pipeline.history, "mlp")
    for key in ("hr@10", "full_recall@10", "full_ndcg@10"):
        assert abs(stage[key] - alone.metrics[key]) < 1e-9, key
    chance = 10 / split.n_items
    assert stage["full_recall@10"] > 5 * chance
