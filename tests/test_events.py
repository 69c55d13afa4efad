"""The typed training events and the one progress summary read from them."""

from __future__ import annotations

import json

import pytest

from ncf import events
from ncf.config import RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.events import Batch, Done, Epoch, Job, Progress, Start, eta_seconds, parse, progress
from ncf.jobs import JobStatus
from ncf.train import train


def test_every_kind_round_trips_through_json():
    sample = [Start(device="cpu", n_train=100, steps_per_epoch=3, epochs=2, stage="gmf", batch_size=64, lr=0.01,
                    optimizer="adam", sparse_embeddings=False, row_wise_embeddings=False),
              Batch(epoch=1, step=2, steps=3, epochs=2, loss=0.5, samples_per_second=1e4, elapsed=1.0, eta=2.0,
                    stage="gmf"),
              Epoch(epoch=1, epochs=2, train_loss=0.4, metrics={"hr@10": 0.3}, elapsed=1.5, eta=1.0,
                    samples_per_second=1e4, stage="gmf"),
              Done(metrics={"hr@10": 0.4}, epochs=2, best_epoch=None, train_seconds=3.0, samples_per_second=1e4),
              Job(message="Loading synthetic")]
    for event in sample:
        line = json.dumps(event.to_dict())
        assert parse(json.loads(line)) == event
    assert sample[3].to_dict()["best_epoch"] is None  # a kept epoch of None is said, not left out


def test_fields_a_stage_does_not_fill_are_left_out_of_its_json():
    own_fit = Start(device="cpu", n_train=10, steps_per_epoch=1, epochs=5, stage="ease").to_dict()
    assert set(own_fit) == {"event", "device", "n_train", "steps_per_epoch", "epochs", "stage"}
    assert "train_loss" not in Epoch(epoch=1, metrics={}).to_dict()  # a model with its own fit has no loss


def test_older_or_unknown_lines_read_without_failing():
    assert parse({"event": "batch", "epoch": 2, "step": 5}) == Batch(epoch=2, step=5)  # older: no "epochs"
    assert parse({"event": "epoch", "epoch": 1, "someday": True}) == Epoch(epoch=1)
    assert parse({"event": "checkpoint"}) is None and parse({"no": "kind"}) is None


def test_fraction_counts_steps_within_the_stage():
    p = Progress().after(Start(epochs=4, steps_per_epoch=10, stage="neumf", device="cpu"))
    assert p.fraction == 0 and p.eta is None and not p.training
    p = p.after(Batch(epoch=2, step=5, steps=10, samples_per_second=100.0, eta=50.0, elapsed=5.0, stage="neumf"))
    assert p.fraction == pytest.approx(1.5 / 4) and (p.epoch, p.step, p.steps) == (2, 5, 10)
    assert p.training and p.samples_per_second == 100.0 and p.eta == 50.0
    p = p.after(Epoch(epoch=2, samples_per_second=90.0, eta=40.0, elapsed=6.0, stage="neumf"))
    assert p.fraction == pytest.approx(0.5) and p.step == 10
    assert p.after(Done(stopped=True)).fraction == pytest.approx(0.5)  # a stop is not the end of the work
    done = p.after(Done())
    assert done.fraction == 1.0 and done.eta == 0.0 and done.finished


def test_a_new_stage_starts_its_fraction_again():
    p = progress([Start(epochs=2, steps_per_epoch=4, stage="gmf"), Epoch(epoch=2, stage="gmf"),
                  Start(epochs=3, steps_per_epoch=4, stage="mlp")])
    assert (p.stage, p.fraction, p.epochs) == ("mlp", 0.0, 3)


def test_the_newest_event_alone_tells_where_a_job_stands():
    last = Batch(epoch=3, step=2, steps=4, epochs=4, samples_per_second=50.0, eta=12.0, stage="neumf").to_dict()
    status = JobStatus(id="x", owner="o", name="", state="running", last_event=last)
    assert status.progress.fraction == pytest.approx(2.5 / 4) and status.progress.eta == 12.0
    waiting = JobStatus(id="x", owner="o", name="", state="running", last_event=Job("Loading ml-1m").to_dict())
    assert waiting.progress.message == "Loading ml-1m" and not waiting.progress.training


def test_eta_is_samples_left_at_the_rate_plus_the_evaluations_due():
    assert eta_seconds(1000, 100.0) == pytest.approx(10.0)
    assert eta_seconds(1000, 100.0, evaluations_left=2, seconds_per_evaluation=3.0) == pytest.approx(16.0)
    assert eta_seconds(0, 0.0) == 0.0


def test_a_fit_moves_the_summary_forward_to_the_end():
    split = leave_one_out(synthetic(n_users=120, n_items=200, mean_per_user=20, seed=3))
    seen: list = []
    result = train(RunConfig(train=TrainConfig(epochs=2, batch_size=256)), split, on_event=seen.append)
    assert all(isinstance(e, events.TrainEvent) for e in seen)
    assert [e.to_dict() for e in seen] == result.history  # the JSON a run saves is the events' own
    fractions, p = [], Progress()
    for e in seen:
        p = p.after(e)
        fractions.append(p.fraction)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    etas = [e.eta for e in seen if isinstance(e, Batch)]
    assert etas[-1] < etas[0]
    assert progress(result.history) == p  # from the saved JSON, the same summary


def test_stages_count_the_epochs_each_stage_completed():
    history = [Start(epochs=3, stage="gmf").to_dict(), *[Epoch(epoch=e, stage="gmf").to_dict() for e in (1, 2, 3)],
               Start(epochs=5, stage="neumf").to_dict(), Epoch(epoch=1, stage="neumf").to_dict(),
               Done(stopped=True).to_dict()]
    runs = events.stages(history)
    assert [(r.start.stage, r.epochs_run, r.start.epochs) for r in runs] == [("gmf", 3, 3), ("neumf", 1, 5)]
    assert events.parse_all([Job("x"), {"event": "job", "message": "y"}, {"event": "later"}]) == [Job("x"), Job("y")]
