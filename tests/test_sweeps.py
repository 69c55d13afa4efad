"""A sweep's grid, and its life through a real JobRunner (spawned workers, real runs on synthetic data)."""

from __future__ import annotations

import json
import time

import pytest

from ncf import sweeps
from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.errors import ConfigError
from ncf.jobs import JobRunner
from tests import waiting


def base(epochs: int = 1) -> RunConfig:
    return RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="gmf", factors=8),
                     train=TrainConfig(epochs=epochs, batch_size=1024))


def wait_until(predicate, timeout: float = 120.0):
    """A sweep's runs wait their turn in the pool: longer than a single job's wait."""
    return waiting.wait_until(predicate, timeout=timeout)


def test_the_grid_is_models_then_settings_then_seeds_each_a_valid_config():
    points = sweeps.grid(base(), ["gmf", "mlp"], {"factors": [4, 8], "lr": [0.01, 0.001]}, seeds=[0, 1])
    assert len(points) == 2 * 2 * 2 * 2
    assert points[0].values == {"model": "gmf", "factors": 4, "lr": 0.01, "seed": 0}
    assert points[1].values == {"model": "gmf", "factors": 4, "lr": 0.01, "seed": 1}
    assert points[-1].values == {"model": "mlp", "factors": 8, "lr": 0.001, "seed": 1}
    last = points[-1].config
    assert (last.model.model, last.model.factors, last.train.lr, last.train.seed) == ("mlp", 8, 0.001, 1)
    assert last.model.resolved_layers[-1] == 8  # the MLP tower ends at the predictive factors
    assert last.train.epochs == 1 and last.data.source == "synthetic"  # the rest is the base config's
    assert len({json.dumps(p.config.to_dict(), sort_keys=True) for p in points}) == len(points)


def test_a_grid_past_the_cap_is_refused_with_a_message_naming_the_cap(monkeypatch):
    monkeypatch.setenv("NCF_MAX_SWEEP_RUNS", "6")
    with pytest.raises(ConfigError, match=r"8 runs.*capped at 6 runs.*NCF_MAX_SWEEP_RUNS"):
        sweeps.grid(base(), ["gmf", "mlp"], {"factors": [4, 8]}, seeds=[0, 1])
    assert len(sweeps.grid(base(), ["gmf", "mlp"], {"factors": [4, 8]}, seeds=[0])) == 4


def test_values_are_parsed_and_bad_ones_say_what_is_expected():
    assert sweeps.parse_values("factors", "8, 16,16,32") == [8, 16, 32]
    assert sweeps.parse_values("lr", "0.01,1e-3") == [0.01, 0.001]
    with pytest.raises(ConfigError, match="whole numbers"):
        sweeps.parse_values("factors", "8,x")
    with pytest.raises(ConfigError, match="cannot be swept"):
        sweeps.parse_values("device", "cpu")
    with pytest.raises(ConfigError, match="at least 1"):
        sweeps.grid(base(), ["gmf"], {"factors": [0, 8]}, seeds=[0])


def test_the_estimate_counts_every_runs_samples_at_each_models_measured_rate():
    points = sweeps.grid(base(epochs=2), ["gmf", "mlp"], {"n_negatives": [1, 4]}, seeds=[0])
    est = sweeps.estimate(points, n_train=1000, rates={"gmf": 10_000.0, "neumf": 5.0})
    gmf, mlp = 1000 * 2 * 2 + 1000 * 5 * 2, 1000 * 2 * 2 + 1000 * 5 * 2
    assert est.samples == gmf + mlp
    assert est.seconds == pytest.approx(gmf / 10_000 + mlp / sweeps.DEFAULT_RATE + 2 * sweeps.OVERHEAD_SECONDS)
    assert est.measured == {"gmf": 10_000.0} and est.assumed == ["mlp"]


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    runner = JobRunner(max_workers=1, max_queued_per_owner=3, models_dir=tmp_path_factory.mktemp("models"))
    yield runner
    runner.shutdown(wait=True, stop_running=True)


def test_a_sweep_runs_every_point_one_job_at_a_time_and_its_rows_come_from_the_runs(one_worker):
    sw = sweeps.start_sweep(one_worker, base(), ["gmf", "mlp"], {"factors": [4, 8]}, seeds=[0], owner="alice")
    on_disk = json.loads((one_worker.models_dir / ".sweeps" / sw.id / "sweep.json").read_text())
    assert on_disk["owner"] == "alice" and len(on_disk["points"]) == 4
    seen_waiting = 0
    while sweeps.load_sweep(one_worker.models_dir, sw.id).active:
        waiting = [j for j in one_worker.jobs(owner="alice") if j.state in ("queued", "running")]
        seen_waiting = max(seen_waiting, len(waiting))
        time.sleep(0.05)
    done = sweeps.wait_sweep(one_worker, sw.id, timeout=300)
    assert done.state == "done" and [p["state"] for p in done.points] == ["done"] * 4
    assert seen_waiting == 1  # never more than one of the sweep's jobs in the pool at once
    rows = sweeps.sweep_rows(done, one_worker.models_dir)
    assert [(r["model"], r["factors"]) for r in rows] == [("gmf", 4), ("gmf", 8), ("mlp", 4), ("mlp", 8)]
    assert all(0 <= r["hr@10"] <= 1 and "full_recall@10" in r and r["train_seconds"] > 0 for r in rows)
    with pytest.raises(ConfigError, match="another session"):
        sweeps.stop_sweep(one_worker, sw.id, owner="bob")
    rates = sweeps.measured_rates(one_worker, "synthetic")  # the estimate's rates come from these runs
    assert set(rates) == {"gmf", "mlp"} and all(r > 0 for r in rates.values())


def test_a_sweep_stops_as_a_whole_and_no_later_run_starts(one_worker):
    sw = sweeps.start_sweep(one_worker, base(epochs=10_000), ["gmf"], {"factors": [4, 8, 16]}, seeds=[0],
                            owner="carol")
    first = sw.points[0]["job"]
    # training, not only handed to the pool ("running" is set at dispatch, before the worker has the job)
    wait_until(lambda: any(e.get("event") in ("batch", "epoch") for e in one_worker.status(first).events))
    stopped = sweeps.stop_sweep(one_worker, sw.id, owner="carol")
    assert stopped.state == "stopped"
    final = sweeps.wait_sweep(one_worker, sw.id, timeout=120)
    assert [p["state"] for p in final.points] == ["stopped", "skipped", "skipped"]
    assert final.points[0]["run_id"]  # what the stopped run learned is saved
    time.sleep(1.5)  # several driver rounds: nothing more is submitted
    assert [j.id for j in one_worker.jobs(owner="carol")] == [first]


def test_a_session_runs_one_sweep_at_a_time(one_worker):
    sw = sweeps.start_sweep(one_worker, base(epochs=10_000), ["gmf"], {"factors": [4]}, seeds=[0], owner="dan")
    try:
        with pytest.raises(ConfigError, match="already have a sweep running"):
            sweeps.start_sweep(one_worker, base(), ["gmf"], {"factors": [4]}, seeds=[0], owner="dan")
    finally:
        sweeps.stop_sweep(one_worker, sw.id)
        sweeps.wait_sweep(one_worker, sw.id, timeout=120)


def test_a_sweeps_runs_interleave_fairly_with_another_sessions_single_runs(one_worker):
    blocker = one_worker.submit(base(epochs=10_000), owner="erin")  # holds the one worker while we queue
    wait_until(lambda: one_worker.status(blocker, events=False).state == "running")
    sw = sweeps.start_sweep(one_worker, base(), ["gmf"], {"factors": [4, 8]}, seeds=[0], owner="frank")
    single = one_worker.submit(base(), owner="grace")
    one_worker.stop(blocker)
    done = sweeps.wait_sweep(one_worker, sw.id, timeout=300)
    one_worker.wait(single, timeout=120)
    # One worker: jobs end in the order they started. The events file is last written at a job's end.
    ended = {j.id: (one_worker.jobs_dir / j.id / "events.jsonl").stat().st_mtime_ns for j in one_worker.jobs()}
    first, second = (p["job"] for p in done.points)
    # frank's first run was queued before grace's, then grace's single run goes before frank's second.
    assert ended[first] < ended[single] < ended[second]


def test_a_sweep_a_dead_server_left_running_is_resumed_by_the_next(tmp_path):
    import subprocess

    first = JobRunner(max_workers=1, models_dir=tmp_path)
    sw = sweeps.start_sweep(first, base(epochs=10_000), ["gmf"], {"factors": [4, 8]}, seeds=[0], owner="hal")
    job = sw.points[0]["job"]
    wait_until(lambda: first.status(job, events=False).state == "running")
    first.shutdown(wait=True, stop_running=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    # What a killed server leaves behind: its job still "running", the sweep still driven by it.
    job_file = tmp_path / ".jobs" / job / "job.json"
    job_file.write_text(json.dumps({**json.loads(job_file.read_text()), "state": "running", "finished": None,
                                    "run_id": None, "runner": {"id": "gone", "pid": dead.pid}}))
    sweep_file = tmp_path / ".sweeps" / sw.id / "sweep.json"
    info = json.loads(sweep_file.read_text())
    info["driver"] = {"pid": dead.pid}
    for p in info["points"]:  # so that the resumed runs end quickly
        p["config"]["train"]["epochs"] = 1
    sweep_file.write_text(json.dumps(info))

    second = JobRunner(max_workers=1, models_dir=tmp_path)
    try:
        assert second.status(job, events=False).state == "interrupted"
        sweeps.driver_for(second)
        final = sweeps.wait_sweep(second, sw.id, timeout=300)
        assert final.state == "done" and [p["state"] for p in final.points] == ["done", "done"]
        assert final.points[0]["job"] != job  # the interrupted point ran again
    finally:
        second.shutdown(wait=True, stop_running=True)


def test_a_sweep_whose_runs_cannot_be_queued_fails_with_the_reason(one_worker, monkeypatch):
    from ncf.errors import RunError

    def full_disk(*args, **kwargs):
        raise RunError("Cannot queue the job: writing to models/.jobs failed (No space left on device).")

    monkeypatch.setattr(one_worker, "submit", full_disk)
    sw = sweeps.start_sweep(one_worker, base(), ["gmf"], {"factors": [4, 8]}, seeds=[0], owner="ivan")
    assert sw.state == "failed" and "No space left" in sw.error
    assert [p["state"] for p in sw.points] == ["skipped", "skipped"]
