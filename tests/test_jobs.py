"""The job runner with real spawned worker processes, real training on small synthetic data and
real run folders. Scheduling tests share one single-worker runner (spawning a worker and
importing torch is the slow part); each test stops and waits for what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.errors import ConfigError, UnknownIdError
from ncf.jobs import JobRunner, read_events
from tests.waiting import training, wait_until

ROOT = Path(__file__).resolve().parent.parent


def small(epochs: int = 1, source: str = "synthetic", model: str = "gmf") -> RunConfig:
    return RunConfig(data=DataConfig(source=source), model=ModelConfig(model=model, factors=8),
                     train=TrainConfig(epochs=epochs, batch_size=1024))


def long_job() -> RunConfig:
    """Long enough to still be running when a test looks at it; tests stop it."""
    return small(epochs=10_000)


def process_alive(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by whoever adopted it, maybe late)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    runner = JobRunner(max_workers=1, max_queued_per_owner=2, models_dir=tmp_path_factory.mktemp("models"))
    yield runner
    runner.shutdown(wait=True, stop_running=True)


@pytest.fixture
def clean_one_worker(one_worker):
    """After each test, every job it left is stopped and finished, so the next starts empty."""
    before = {j.id for j in one_worker.jobs()}
    yield one_worker
    for job in one_worker.jobs():
        if job.id not in before:
            one_worker.stop(job.id)
    for job in one_worker.jobs():
        one_worker.wait(job.id, timeout=60)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    runner = JobRunner(max_workers=2, models_dir=tmp_path_factory.mktemp("runs"))
    yield runner
    runner.shutdown(wait=True, stop_running=True)


def test_submitted_job_trains_and_saves_a_run_that_loads(two_workers):
    from ncf.runs import load_run

    job_id = two_workers.submit(small(epochs=2), owner="alice", name="first try")
    st = two_workers.wait(job_id, timeout=120)
    assert st.state == "done", st.error
    assert st.owner == "alice" and st.name == "first try" and st.position == 0
    run = load_run(two_workers.models_dir / st.run_id)
    assert run.config.model.model == "gmf"
    assert run.name == "first try"
    events = two_workers.status(job_id).events
    kinds = [e["event"] for e in events]
    assert kinds.count("epoch") == 2 and kinds[-1] == "done"
    assert events[-1]["metrics"]["hr@10"] == pytest.approx(run.metrics["hr@10"])


def test_queue_positions_follow_submission_with_one_worker(clean_one_worker):
    runner = clean_one_worker
    first = runner.submit(long_job(), owner="a")
    second = runner.submit(long_job(), owner="a")
    third = runner.submit(long_job(), owner="a")
    assert [runner.status(j).position for j in (first, second, third)] == [0, 1, 2]
    assert runner.status(first).state == "running"
    assert runner.status(second).state == "queued" and runner.status(third).ahead == 1
    runner.stop(second)
    assert runner.status(second).state == "stopped"
    assert runner.status(third).position == 1


def test_next_job_goes_to_the_owner_served_least_recently(clean_one_worker):
    runner = clean_one_worker
    a1 = runner.submit(long_job(), owner="a")
    a2 = runner.submit(long_job(), owner="a")
    a3 = runner.submit(long_job(), owner="a")
    b1 = runner.submit(long_job(), owner="b")
    # a was just served (a1 runs), so b's first job goes before a's second and third.
    assert [runner.status(j).position for j in (a1, b1, a2, a3)] == [0, 1, 2, 3]
    assert [j.id for j in runner.jobs(owner="b")] == [b1]


def test_an_owner_cannot_queue_more_than_the_cap(clean_one_worker):
    runner = clean_one_worker
    runner.submit(long_job(), owner="greedy")  # runs at once
    runner.submit(long_job(), owner="greedy")
    runner.submit(long_job(), owner="greedy")  # two waiting: the fixture's cap
    with pytest.raises(ConfigError, match="You already have 2 jobs waiting; wait for one to finish or stop one"):
        runner.submit(long_job(), owner="greedy")
    other = runner.submit(long_job(), owner="someone else")  # the cap is per owner
    assert runner.status(other).state == "queued"


def test_stopping_a_running_job_saves_the_run_marked_stopped(clean_one_worker):
    from ncf.runs import load_run

    runner = clean_one_worker
    job_id = runner.submit(long_job(), owner="a", name="stopped early")
    wait_until(lambda: training(runner, job_id), timeout=90)
    t0 = time.monotonic()
    runner.stop(job_id)
    st = runner.wait(job_id, timeout=30)
    assert st.state == "stopped", st.error
    assert time.monotonic() - t0 < 10  # the trainer stops within a second; saving takes a moment
    done = st.last_event
    assert done["event"] == "done" and done["stopped"] is True
    run = load_run(runner.models_dir / st.run_id)
    assert run.name == "stopped early"


def test_a_failing_job_reports_why_and_other_jobs_still_finish(two_workers):
    missing = str(two_workers.models_dir / "no-such-ratings.csv")
    bad = two_workers.submit(small(source=missing), owner="a")
    good = two_workers.submit(small(), owner="b")
    bad_st = two_workers.wait(bad, timeout=120)
    assert bad_st.state == "failed"
    assert "no-such-ratings.csv" in bad_st.error and "Traceback" not in bad_st.error
    assert two_workers.wait(good, timeout=120).state == "done"
    # The worker that ran the failing job still serves new jobs.
    again = two_workers.submit(small(), owner="a")
    assert two_workers.wait(again, timeout=120).state == "done"


def test_a_killed_worker_fails_its_job_and_the_runner_recovers(two_workers):
    job_id = two_workers.submit(long_job(), owner="a")
    wait_until(lambda: training(two_workers, job_id), timeout=90)
    from ncf.jobs.files import read_json

    pid = read_json(two_workers.jobs_dir / job_id / "job.json")["worker_pid"]
    os.kill(pid, signal.SIGKILL)
    st = two_workers.wait(job_id, timeout=60)
    assert st.state == "failed" and "ended abruptly" in st.error
    after = two_workers.submit(small(), owner="a")
    assert two_workers.wait(after, timeout=120).state == "done"


def test_invalid_configuration_is_refused_at_submit(two_workers):
    before = two_workers.jobs()
    with pytest.raises(ConfigError, match="at least 1 epoch"):
        two_workers.submit(RunConfig(train=TrainConfig(epochs=0)), owner="a")
    assert two_workers.jobs() == before


def test_unknown_or_malformed_job_ids_are_refused(two_workers):
    for bad in ("20250101-120000-0123abcd", "../../etc", ""):
        with pytest.raises(UnknownIdError):
            two_workers.status(bad)


def test_jobs_of_a_killed_server_show_as_interrupted_and_its_worker_exits(tmp_path):
    """A real server process running a job is killed with SIGKILL; the next runner marks the job
    interrupted, and the orphaned worker process ends by itself."""
    models = tmp_path / "runs"
    script = textwrap.dedent(f"""
        import sys, time
        from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
        from ncf.jobs import JobRunner
        runner = JobRunner(max_workers=1, models_dir={str(models)!r})
        cfg = RunConfig(model=ModelConfig(model="gmf"), train=TrainConfig(epochs=10_000))
        print(runner.submit(cfg, owner="a"), runner.submit(cfg, owner="a"), flush=True)
        time.sleep(600)
    """)
    server = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        running, waiting = server.stdout.readline().split()
        job_dir = models / ".jobs" / running
        wait_until(lambda: any(e["event"] == "batch" for e in read_events(job_dir)), timeout=90)
        from ncf.jobs.files import read_json

        worker = read_json(job_dir / "job.json")["worker_pid"]
    finally:
        server.kill()
        server.wait()
    runner = JobRunner(max_workers=1, models_dir=models)
    try:
        assert runner.status(running).state == "interrupted"
        assert runner.status(waiting).state == "interrupted"
        assert "start it again" in runner.status(running).error
        wait_until(lambda: not process_alive(worker), timeout=15)
    finally:
        runner.shutdown()


def test_thirty_sessions_submitting_at_once_get_distinct_places_in_the_queue(clean_one_worker):
    import threading

    runner = clean_one_worker
    ids: list[str] = []
    lock = threading.Lock()

    def click(owner: str) -> None:
        job_id = runner.submit(long_job(), owner=owner)
        with lock:
            ids.append(job_id)

    threads = [threading.Thread(target=click, args=(f"session-{i}",)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 30
    statuses = [runner.status(j, events=False) for j in ids]
    assert sum(s.state == "running" for s in statuses) == 1
    assert sorted(s.position for s in statuses if s.state == "queued") == list(range(1, 30))


def test_jobs_submitted_from_many_threads_while_others_poll_all_finish(clean_one_worker):
    """Twelve sessions click Train at once while pages keep asking for status: every job trains and
    is saved, and status() answers throughout (a dispatch never holds the queue's lock while it hands
    a job to the pool)."""
    import threading

    runner = clean_one_worker
    ids: list[str] = []
    seen: dict[str, set[str]] = {}
    done = threading.Event()
    lock = threading.Lock()

    def poll() -> None:
        while not done.is_set():
            with lock:
                current = list(ids)
            for job_id in current:
                st = runner.status(job_id, events=False)
                with lock:
                    seen.setdefault(job_id, set()).add(st.state)
            time.sleep(0.01)

    def click(owner: str) -> None:
        job_id = runner.submit(small(epochs=1), owner=owner)
        with lock:
            ids.append(job_id)

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    clickers = [threading.Thread(target=click, args=(f"session-{i}",)) for i in range(12)]
    for t in pollers + clickers:
        t.start()
    for t in clickers:
        t.join()
    try:
        finals = [runner.wait(job_id, timeout=180) for job_id in ids]
    finally:
        done.set()
        for t in pollers:
            t.join()
    assert [f.state for f in finals] == ["done"] * 12, [(f.state, f.error) for f in finals]
    assert len({f.run_id for f in finals}) == 12
    assert all(states <= {"queued", "running", "done"} for states in seen.values()), seen


def test_prune_removes_only_old_finished_jobs(tmp_path):
    runner = JobRunner(max_workers=1, models_dir=tmp_path / "runs")
    try:
        old = runner.submit(long_job(), owner="a")
        waiting = runner.submit(long_job(), owner="a")
        runner.stop(old)
        runner.wait(old, timeout=60)
        month_ago = time.time() - 30 * 86400
        for job_id in (old, waiting):
            os.utime(runner.jobs_dir / job_id / "job.json", (month_ago, month_ago))
        assert runner.prune(older_than_days=7) == [old]
        assert [j.id for j in runner.jobs()] == [waiting]
    finally:
        runner.shutdown(stop_running=True)


def test_an_unusable_models_folder_is_a_clear_error(tmp_path):
    from ncf.errors import RunError

    blocker = tmp_path / "models"
    blocker.write_text("a file where the models folder should be")
    with pytest.raises(RunError, match="Cannot keep training jobs in"):
        JobRunner(max_workers=1, models_dir=blocker)


def test_a_server_that_exits_stops_its_jobs_and_saves_what_they_trained(tmp_path):
    """Without the exit hook, the interpreter would wait for the running job's 10,000 epochs."""
    models = tmp_path / "runs"
    script = textwrap.dedent("""
        import time
        from ncf.config import ModelConfig, RunConfig, TrainConfig
        from ncf.jobs import get_runner, read_events
        if __name__ == "__main__":
            runner = get_runner()
            cfg = RunConfig(model=ModelConfig(model="gmf"), train=TrainConfig(epochs=10_000))
            running, waiting = runner.submit(cfg, owner="a"), runner.submit(cfg, owner="a")
            print(running, waiting, flush=True)
            while not any(e["event"] == "batch" for e in read_events(runner.jobs_dir / running)):
                time.sleep(0.05)
    """)
    (tmp_path / "server.py").write_text(script)
    env = {**os.environ, "NCF_MODELS_DIR": str(models), "NCF_WORKERS": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(tmp_path / "server.py")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    running, waiting = p.stdout.split()
    runner = JobRunner(max_workers=1, models_dir=models)
    try:
        st = runner.status(running)
        assert st.state == "stopped" and st.run_id
        from ncf.runs import load_run

        assert load_run(models / st.run_id).id == st.run_id
        assert runner.status(waiting).state == "interrupted"
    finally:
        runner.shutdown()


def test_only_the_owner_can_stop_a_job_when_the_owner_is_given(clean_one_worker):
    runner = clean_one_worker
    job_id = runner.submit(long_job(), owner="a")
    waiting = runner.submit(long_job(), owner="a")
    with pytest.raises(ConfigError, match="belongs to another session"):
        runner.stop(waiting, owner="b")
    assert runner.status(waiting).state == "queued"
    assert runner.stop(waiting, owner="a").state == "stopped"
    assert runner.status(job_id).state == "running"


def test_killing_the_server_at_random_moments_never_leaves_a_run_that_loads_wrong(tmp_path):
    """A server process trains short jobs back to back (so kills land while training, evaluating
    and saving) and is killed with SIGKILL at a random moment, several times over one models folder.
    Afterwards every run listed loads, and no job is left looking queued or running."""
    import random

    from ncf.runs import list_runs, load_run

    models = tmp_path / "runs"
    script = textwrap.dedent(f"""
        from ncf.config import ModelConfig, RunConfig, TrainConfig
        from ncf.jobs import JobRunner
        if __name__ == "__main__":
            runner = JobRunner(max_workers=1, max_queued_per_owner=100, models_dir={str(models)!r})
            cfg = RunConfig(model=ModelConfig(model="gmf"), train=TrainConfig(epochs=1))
            while True:
                job = runner.submit(cfg, owner="a")
                print(job, flush=True)
                runner.wait(job)
    """)
    (tmp_path / "server.py").write_text(script)
    rng = random.Random(0)
    for _ in range(2):  # with the single kill above: three kills per run of the suite
        server = subprocess.Popen([sys.executable, str(tmp_path / "server.py")], cwd=ROOT, stdout=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
        server.stdout.readline()
        server.stdout.readline()  # the first job has finished: the worker is warm, the next job under way
        time.sleep(rng.uniform(0.0, 2.5))  # a job takes a second or two: lands in loading, training, saving
        server.kill()
        server.wait()
    runner = JobRunner(max_workers=1, models_dir=models)
    try:
        jobs = runner.jobs()
        assert jobs and all(j.state in ("done", "interrupted") for j in jobs), [j.state for j in jobs]
        for info in list_runs(models):
            assert info.error is None, info.error
            assert load_run(models / info.id).id == info.id
        finished = {j.run_id for j in jobs if j.state == "done"}
        assert finished <= {info.id for info in list_runs(models)}
    finally:
        runner.shutdown()


def test_a_job_can_continue_a_saved_run_as_a_new_run(two_workers):
    from ncf.runs import load_run

    first = two_workers.wait(two_workers.submit(small(), owner="a"), timeout=120)
    assert first.state == "done", first.error
    more = two_workers.submit(small(epochs=2), owner="a", name="continued", resume=first.run_id)
    st = two_workers.wait(more, timeout=120)
    assert st.state == "done", st.error
    assert st.run_id != first.run_id
    continued, original = load_run(two_workers.models_dir / st.run_id), load_run(two_workers.models_dir / first.run_id)
    assert continued.name == "continued"
    # Same split, further trained: the first epoch starts from the saved model's loss, not from scratch.
    assert (continued.test_item == original.test_item).all()
    losses = [e["train_loss"] for e in two_workers.status(more).events if e["event"] == "epoch"]
    first_loss = [e["train_loss"] for e in two_workers.status(first.id).events if e["event"] == "epoch"]
    assert len(losses) == 2 and losses[0] < first_loss[0]


def test_a_run_belongs_to_the_owner_of_the_job_that_saved_it(two_workers):
    job_id = two_workers.submit(small(epochs=1), owner="alice", name="mine")
    status = two_workers.wait(job_id, timeout=120)
    assert status.run_id
    assert two_workers.owner_of_run(status.run_id) == "alice"
    assert two_workers.owner_of_run("20200101-000000-gmf-synthetic-0000") is None  # not made by a job here


def test_only_the_owner_can_stop_a_job(clean_one_worker):
    from ncf.errors import ConfigError

    runner = clean_one_worker
    job_id = runner.submit(long_job(), owner="alice")
    with pytest.raises(ConfigError, match="only the session that started it"):
        runner.stop(job_id, owner="bob")
    assert runner.stop(job_id, owner="alice").id == job_id
