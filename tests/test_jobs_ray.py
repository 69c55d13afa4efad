"""The Ray backend against a real local Ray cluster that this module starts: a head on this
machine (no CPUs of its own, so it only coordinates) and, per test, a worker node that trains.
Each node runs in its own process group, which teardown kills (never a machine-wide `ray stop`,
which would also end any other Ray on a shared machine).

Skipped when Ray is not installed; `-m "not ray"` deselects the cluster tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.errors import ConfigError
from tests.waiting import training, wait_until

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")


def small(epochs: int = 1) -> RunConfig:
    return RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="gmf", factors=8),
                     train=TrainConfig(epochs=epochs, batch_size=1024, device="cpu"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_ncf_ray_address_nothing_of_ray_is_imported(tmp_path):
    script = (
        "import sys\n"
        "import app, appstate, ncf.jobs, ncf.sweeps, ncf.cli\n"
        "runner = ncf.jobs.get_runner()\n"
        "assert type(runner).__name__ == 'JobRunner', type(runner)\n"
        "ncf.jobs.reset_runner()\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NCF_RAY_ADDRESS"}
    env["NCF_MODELS_DIR"] = str(tmp_path / "models")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_job_asks_the_cluster_for_a_gpu_when_it_says_cuda_or_auto_on_a_cluster_with_gpus():
    pytest.importorskip("ray")
    from ncf.jobs.ray_backend import _wants_gpu

    def cfg(device):
        return RunConfig(train=TrainConfig(device=device)).to_dict()

    assert _wants_gpu(cfg("cuda"), False) and _wants_gpu(cfg("cuda"), True)
    assert _wants_gpu(cfg("auto"), True) and not _wants_gpu(cfg("auto"), False)
    assert not any(_wants_gpu(cfg(d), True) for d in ("cpu", "mps"))


def test_an_unreachable_cluster_is_a_clear_error_within_seconds(monkeypatch, tmp_path):
    pytest.importorskip("ray")
    import ncf.jobs
    from ncf.errors import RunError

    monkeypatch.setenv("NCF_RAY_ADDRESS", f"127.0.0.1:{free_port()}")  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(RunError, match="Cannot reach the Ray cluster at NCF_RAY_ADDRESS=.*unset NCF_RAY_ADDRESS"):
        ncf.jobs.get_runner()
    assert time.monotonic() - t0 < 10
    monkeypatch.setenv("NCF_RAY_ADDRESS", "head-node")
    with pytest.raises(ConfigError, match="host:port"):
        ncf.jobs.get_runner()


def test_a_runner_leaves_jobs_started_on_other_machines_to_their_own_servers(tmp_path):
    """Servers on several machines share one runs folder: a dead process id here says nothing
    about a job another machine's server runs."""
    pytest.importorskip("ray")
    from ncf.jobs.files import read_json, write_json_atomic
    from ncf.jobs.ray_backend import RayJobRunner

    jobs_dir = tmp_path / ".jobs"
    dead_pid = 2**22 + 12345  # above Linux's pid_max: no such process
    for job_id, runner_id in (("20250101-120000-0000000a", "abc@other-machine"),
                              ("20250101-120000-0000000b", f"def@{socket.gethostname()}")):
        (jobs_dir / job_id).mkdir(parents=True)
        write_json_atomic(jobs_dir / job_id / "job.json", {"id": job_id, "state": "running",
                                                            "runner": {"id": runner_id, "pid": dead_pid}})
    runner = RayJobRunner.__new__(RayJobRunner)  # no cluster: only the folder and the host matter here
    runner.jobs_dir, runner._host = jobs_dir, socket.gethostname()
    runner._mark_interrupted()
    assert read_json(jobs_dir / "20250101-120000-0000000a" / "job.json")["state"] == "running"
    assert read_json(jobs_dir / "20250101-120000-0000000b" / "job.json")["state"] == "interrupted"


# ---------------------------------------------------------------------------------------------
# A real cluster


class Node:
    """One `ray start` node in its own process group (the raylet, its workers and actors)."""

    def __init__(self, args: list[str], temp_dir: str):
        # The head notices a killed node within ~2 s instead of Ray's default ~15 s.
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_health_check_period_ms": "500",
               "RAY_health_check_timeout_ms": "500", "RAY_health_check_failure_threshold": "3"}
        proc = subprocess.Popen([str(RAY), "start", *args, "--object-store-memory=200000000",
                                 f"--temp-dir={temp_dir}", "--disable-usage-stats"], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.pgid = proc.pid  # `ray start` leads a new group; the processes it starts stay in it
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        if proc.returncode != 0:
            self.kill()
            raise RuntimeError(f"`ray start {' '.join(args)}` failed:\n{out[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.kill(signal.SIGKILL)


@pytest.fixture(scope="module")
def ray_head():
    ray = pytest.importorskip("ray")
    if not RAY.exists():
        pytest.skip("the `ray` command is not installed beside this Python")
    temp_dir = tempfile.mkdtemp(prefix="ncf-ray-")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    head = Node(["--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false"], temp_dir)
    address = f"127.0.0.1:{port}"
    try:
        yield address, temp_dir
    finally:
        ray.shutdown()  # before the head goes: a driver left connected to a dead head exits later
        head.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def worker_node(ray_head):
    """A node with 2 CPUs that trains; killed at teardown if the test did not kill it."""
    import ray

    address, temp_dir = ray_head
    before = {n["NodeID"] for n in ray.nodes() if n["Alive"]} if ray.is_initialized() else set()
    node = Node([f"--address={address}", "--num-cpus=2"], temp_dir)
    yield node
    node.stop()
    if ray.is_initialized():  # the cluster notices the node is gone before the next test counts CPUs
        wait_until(lambda: {n["NodeID"] for n in ray.nodes() if n["Alive"]} <= before, timeout=60, poll=0.5)


@pytest.fixture(scope="module")
def ray_runner(ray_head, tmp_path_factory):
    from ncf.jobs.ray_backend import RayJobRunner

    address, _ = ray_head
    runner = RayJobRunner(address=address, models_dir=tmp_path_factory.mktemp("shared-runs"), poll=0.1,
                          stop_grace=10)
    yield runner
    runner.shutdown(wait=True, stop_running=True)


@pytest.mark.ray
def test_two_sessions_train_on_the_cluster_one_stops_and_both_runs_are_listed(worker_node, ray_runner, monkeypatch):
    from ncf.runs import list_runs, load_run

    runner = ray_runner
    alice = runner.submit(small(epochs=10_000), owner="alice", name="alice long")
    bob = runner.submit(small(epochs=3), owner="bob", name="bob short")
    wait_until(lambda: runner.max_workers == 2, timeout=30)  # the worker node's 2 CPUs: two slots
    # A third job waits in the queue here with its position, and can be stopped before it starts.
    third = runner.submit(small(epochs=1), owner="alice")
    assert runner.status(third).state == "queued" and runner.status(third).position == 1
    with pytest.raises(ConfigError, match="another session"):
        runner.stop(alice, owner="bob")
    assert runner.stop(third, owner="alice").state == "stopped"

    wait_until(lambda: training(runner, alice), timeout=60)
    bob_st = runner.wait(bob, timeout=60)
    assert bob_st.state == "done", bob_st.error
    assert [e["event"] for e in runner.status(bob).events].count("epoch") == 3
    t0 = time.monotonic()
    runner.stop(alice, owner="alice")
    alice_st = runner.wait(alice, timeout=30)
    assert alice_st.state == "stopped", alice_st.error
    assert time.monotonic() - t0 < 10  # as in the pool: the trainer stops within a second; saving takes a moment
    assert alice_st.last_event["event"] == "done" and alice_st.last_event["stopped"] is True
    assert runner.status(third).run_id is None

    listed = {info.id for info in list_runs(runner.models_dir)}
    assert {alice_st.run_id, bob_st.run_id} <= listed
    assert load_run(runner.models_dir / alice_st.run_id).name == "alice long"
    assert load_run(runner.models_dir / bob_st.run_id).name == "bob short"

    # The app's runner is this backend when NCF_RAY_ADDRESS is set.
    import ncf.jobs
    from ncf.jobs.ray_backend import RayJobRunner

    monkeypatch.setenv("NCF_RAY_ADDRESS", runner.address)
    try:
        assert isinstance(ncf.jobs.get_runner(), RayJobRunner)
    finally:
        ncf.jobs.reset_runner()


@pytest.mark.ray
def test_a_node_dying_mid_job_fails_the_job_and_earlier_runs_still_load(worker_node, ray_runner):
    from ncf.runs import list_runs, load_run

    runner = ray_runner
    earlier = runner.wait(runner.submit(small(epochs=1), owner="carol", name="before the crash"), timeout=90)
    assert earlier.state == "done", earlier.error
    doomed = runner.submit(small(epochs=10_000), owner="carol", name="doomed")
    wait_until(lambda: training(runner, doomed), timeout=60)
    worker_node.kill()  # the whole node at once: raylet, its workers, the job's process
    st = runner.wait(doomed, timeout=60)
    assert st.state == "failed"
    assert "node training this job died" in st.error and "start it again" in st.error
    assert st.run_id is None
    runs = list_runs(runner.models_dir)
    assert earlier.run_id in {info.id for info in runs}
    for info in runs:  # every run saved before, by any test of this module, still loads
        load_run(runner.models_dir / info.id)
