"""Which runs may stand side by side, and what sets them apart (ncf.compare)."""

from __future__ import annotations

import pandas as pd

from ncf import compare, plots
from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig


def cfg(model="neumf", **train) -> dict:
    return RunConfig(model=ModelConfig(model=model), train=TrainConfig(**train)).to_dict()


def test_only_settings_that_apply_to_the_model_are_listed():
    gmf, pop, embnn = compare.settings(cfg("gmf")), compare.settings(cfg("pop")), compare.settings(cfg("embnn"))
    assert "factors" in gmf and "layers" not in gmf and "pre-training" not in gmf
    assert set(pop) == {"epochs run"}  # no factors, lr or optimiser on the most-popular row
    assert "negatives" not in embnn and embnn["objective"] == "explicit"


def test_the_settings_that_differ_are_the_ones_shown():
    a = compare.settings(cfg(seed=0, lr=0.01, optimizer="adamw"))
    b = compare.settings(cfg(seed=1, lr=0.01, optimizer="adamw"))
    c = compare.settings(cfg("gmf", seed=0, lr=0.01, optimizer="adamw"))
    assert compare.differing([a, b]) == ["seed"]
    assert set(compare.differing([a, c])) == {"layers", "pre-training"}


def test_epochs_are_those_run_per_stage():
    history = [{"event": "start", "stage": "gmf", "epochs": 8}, *[{"event": "epoch", "stage": "gmf"}] * 8,
               {"event": "start", "stage": "mlp", "epochs": 8}, *[{"event": "epoch", "stage": "mlp"}] * 8,
               {"event": "start", "stage": "neumf", "epochs": 8}, *[{"event": "epoch", "stage": "neumf"}] * 3]
    assert compare.epochs_text(compare.stage_epochs(history)) == "gmf 8 + mlp 8 + neumf 3 of 8"
    stopped = [{"event": "start", "stage": "neumf", "epochs": 20}, *[{"event": "epoch", "stage": "neumf"}] * 9]
    assert compare.settings(cfg(epochs=20), compare.stage_epochs(stopped))["epochs run"] == "9 of 20"


def test_runs_on_other_data_or_protocols_are_refused_a_shared_chart():
    loo = RunConfig().to_dict()
    ratio = RunConfig(data=DataConfig(split="ratio")).to_dict()
    other = RunConfig(data=DataConfig(source="ml-100k")).to_dict()
    assert compare.mixing_message([compare.scope(loo), compare.scope(loo)]) is None
    assert "different datasets" in compare.mixing_message([compare.scope(loo), compare.scope(other)])
    assert "tested differently" in compare.mixing_message([compare.scope(loo), compare.scope(ratio)])
    assert compare.protocol(RunConfig(model=ModelConfig(model="embnn")).to_dict()).startswith("rating prediction")


def test_missing_metrics_are_not_drawn_as_zero_bars():
    rows = pd.DataFrame([{"label": "stopped", "hr@10": 0.5, "full_recall@10": None}])
    (bar,) = plots.metric_bars(rows, "label", ["hr@10", "full_recall@10"]).data
    assert list(bar.text) == ["0.500", "not computed"] and list(bar.marker.opacity) == [1, 0]
    rating = plots.metric_bars(pd.DataFrame([{"label": "a", "rmse": 0.9}]), "label", ["rmse"])
    assert "lower is better" in rating.layout.title.text


def test_times_read_as_people_write_them():
    assert compare.readable_time("2026-11-30T17:29:40+00:00") == "30 Nov 17:29"
    assert compare.readable_duration(72.4) == "1 min 12 s" and compare.readable_duration(3.2) == "3 s"
