"""The job runner on a Ray cluster: the same queue, events, Stop and run folders, other machines.

`RayJobRunner` is the embedded `JobRunner` with its process pool swapped for Ray: the fair queue
across owners, the queue positions, the job files in `models_dir/.jobs/<job_id>/` and `stop()`
are the pool's own code. Only what a worker process did locally crosses the network instead:

- each job is a Ray task (`_ray_job`) that runs the pool workers' own `run_job` in a scratch folder on
  its node, so a job trains, saves and reports exactly as it would in the pool;
- its events go to one small actor per runner (the "board", placed on the server's node) with a
  push every 0.1 s; the server drains the board every `poll` seconds and appends the events to the
  job's `events.jsonl`, so pages read progress from disk as before. The server is the only writer
  of `job.json` and `events.jsonl`: appends to a file on NFS from another machine show up late
  there (an NFS client sends a writer's data at close or fsync, and readers cache attributes);
- Stop: `stop()` writes the job's stop file as in the pool; the server forwards it to the board,
  and the board's answer to the task's next push sets the task's local stop file. A job that has
  not started on the cluster is cancelled (`ray.cancel`); one that does not end within
  `stop_grace` seconds after Stop is cancelled too (KeyboardInterrupt in the task, then a kill);
- the run is saved by the task to `models_dir`, which on a cluster must be storage every node
  mounts at the same path (an NFS export as NCF_MODELS_DIR everywhere); the server's
  NCF_CACHE_DIR and NCF_DATA_DIR travel with each job (kept uploads and datasets: put them there
  too);
- a job asks Ray for one GPU when it says `cuda`, or `auto` on a cluster that has GPUs;
- a task whose worker or node dies is not retried (`max_retries=0`: a retry would start the
  training over unseen); the job is marked failed with what Ray reported.

Ray is imported by this module only, and this module only when NCF_RAY_ADDRESS is set.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path

import ray

from ncf.errors import ConfigError, RunError
from ncf.jobs.files import update_job, utc_now
from ncf.jobs.pool import LIVE_RUNNERS, JobRunner
from ncf.jobs.worker import run_job

_PUSH_EVERY = 0.1  # seconds between a task's pushes of its new events (and looks at the stop flag)
# Where a job finds its data: the server's settings travel with each job (paths on the shared
# volume are the same on every node), so a worker node needs none of its own.
_FORWARDED_ENV = ("NCF_CACHE_DIR", "NCF_DATA_DIR", "NCF_MOVIELENS_URL")


# ---------------------------------------------------------------------------------------------
# On the cluster


@ray.remote(num_cpus=0, max_restarts=0)
class _Board:
    """Events and stop flags of one runner's jobs. Lives on the server's node, so a worker node's
    death loses no event that was already pushed."""

    def __init__(self):
        self.events: dict[str, list[dict]] = {}
        self.begun: dict[str, dict] = {}
        self.stops: set[str] = set()

    def begin(self, job_id: str, info: dict) -> bool:
        self.begun[job_id] = info
        return job_id in self.stops

    def push(self, job_id: str, events: list[dict]) -> bool:
        """Stores events; returns whether the job was asked to stop."""
        if events:
            self.events.setdefault(job_id, []).extend(events)
        return job_id in self.stops

    def stop(self, job_id: str) -> None:
        self.stops.add(job_id)

    def drain(self) -> tuple[dict[str, list[dict]], dict[str, dict]]:
        events, begun = self.events, self.begun
        self.events, self.begun = {}, {}
        return events, begun

    def forget(self, job_id: str) -> None:
        self.stops.discard(job_id)


def _ray_job(job_id: str, board, cfg_dict: dict, name: str, models_dir: str, resume: str | None,
             threads: int, env: dict[str, str]) -> dict:
    """One job on a cluster node: the pool workers' `run_job` in a scratch folder, with a thread that
    relays the folder's new event lines to the board and the board's stop flag to the folder."""
    os.environ.update(env)
    os.environ["NCF_THREADS"] = str(threads)  # read by ncf.device.configure_threads
    import torch

    torch.set_num_threads(threads)
    scratch = Path(tempfile.mkdtemp(prefix=f"ncf-job-{job_id}-"))
    (scratch / "events.jsonl").touch()
    begin = {"started": utc_now(), "host": socket.gethostname(), "worker_pid": os.getpid(),
             "node_id": ray.get_runtime_context().get_node_id()}
    if ray.get(board.begin.remote(job_id, begin)):
        (scratch / "stop").touch()  # stopped while it waited for a free node
    finished = threading.Event()

    def relay() -> None:
        offset = 0
        while True:
            last = finished.is_set()  # read before the file, so the final lines are always sent
            with open(scratch / "events.jsonl", "rb") as f:
                f.seek(offset)
                chunk = f.read()
            chunk = chunk[: chunk.rfind(b"\n") + 1]  # complete lines only
            offset += len(chunk)
            events = []
            for line in chunk.decode("utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
            if ray.get(board.push.remote(job_id, events)):  # acknowledged: in order, none lost
                (scratch / "stop").touch()
            if last:
                return
            finished.wait(_PUSH_EVERY)

    relay_thread = threading.Thread(target=relay, name="ncf-event-relay", daemon=True)
    relay_thread.start()
    try:
        info = run_job(str(scratch), cfg_dict, name, models_dir, resume)
    finally:
        finished.set()
        relay_thread.join(timeout=30)
    with contextlib.suppress(OSError):
        info["traceback"] = (scratch / "error.txt").read_text(encoding="utf-8")
    shutil.rmtree(scratch, ignore_errors=True)
    return info


_RAY_JOB = ray.remote(_ray_job)


# ---------------------------------------------------------------------------------------------
# On the server


def _wants_gpu(cfg_dict: dict, cluster_has_gpus: bool) -> bool:
    """A job asks Ray for a GPU when it says `cuda`, or `auto` (the app's setting) on a cluster
    with GPUs: then it waits for a GPU node rather than training on a CPU node."""
    device = str((cfg_dict.get("train") or {}).get("device", "auto"))
    return device.startswith("cuda") or (device == "auto" and cluster_has_gpus)


def _failure_message(exc: BaseException) -> str:
    """What a page shows for a job Ray lost: what happened and what to do."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ray.exceptions.NodeDiedError):
        return ("The cluster node training this job died (shut down, lost from the network, or out of "
                f"memory); nothing of this job was saved. Other jobs go on; start it again. Ray: {first}")
    if isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.LocalRayletDiedError):
        return ("The Ray worker process training this job ended abruptly (killed, or out of memory); "
                f"nothing of this job was saved. Other jobs go on; try a smaller batch size or model. Ray: {first}")
    if isinstance(exc, ray.exceptions.TaskUnschedulableError):
        return f"No node of the Ray cluster can run this job (does it ask for a GPU the cluster lacks?). Ray: {first}"
    return f"The Ray cluster lost this job ({type(exc).__name__}): {first}"


class _RayExecutor:
    """The slice of `concurrent.futures.Executor` that `JobRunner` uses (`submit`, `shutdown`),
    backed by Ray tasks. A thread polls the cluster and resolves each job's future when it ends;
    the job's outcome is already in its `job.json` then, as with the pool's workers."""

    def __init__(self, runner: RayJobRunner):
        self.runner = runner
        node = ray.get_runtime_context().get_node_id()
        strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        self.board = _Board.options(name=f"ncf-jobs-{runner.id.split('@')[0]}", scheduling_strategy=strategy).remote()
        self._lock = threading.Lock()
        self._jobs: dict[ray.ObjectRef, tuple[str, cf.Future]] = {}
        self._begun: set[str] = set()
        self._stop_sent: dict[str, float] = {}  # job id -> when the stop was forwarded
        self._cancelled: dict[str, str] = {}  # job id -> "waiting" (never began), "interrupt", "force"
        self._closing = False
        self._thread = threading.Thread(target=self._poll_loop, name="ncf-ray-poll", daemon=True)
        self._thread.start()

    def submit(self, fn, job_dir: str, cfg_dict: dict, name: str, models_dir: str, resume: str | None) -> cf.Future:
        if fn is not run_job:
            raise TypeError("the Ray backend runs training jobs only")
        if self._closing:
            raise RuntimeError("cannot schedule new jobs after shutdown")
        job_id = Path(job_dir).name
        r = self.runner
        task = _RAY_JOB.options(
            num_cpus=r.cpus_per_job, num_gpus=1 if _wants_gpu(cfg_dict, r.cluster_gpus() > 0) else 0, max_retries=0,
            name=f"ncf-job-{job_id}")
        # Shown as "Starting…" (queued, no position) until the task begins on a node: a GPU job may
        # wait in Ray's own queue for a free GPU.
        update_job(Path(job_dir), state="queued", started=None, backend="ray")
        env = {k: os.environ[k] for k in _FORWARDED_ENV if os.environ.get(k)}
        ref = task.remote(job_id, self.board, cfg_dict, name, models_dir, resume, max(1, int(r.cpus_per_job)), env)
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._jobs[ref] = (job_id, future)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Takes no more jobs; with `wait`, returns once every job handed to Ray has ended."""
        self._closing = True
        if wait:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)

    # -- the polling thread ---------------------------------------------------------------

    def _poll_loop(self) -> None:
        last_error = None
        while True:
            with self._lock:
                idle = not self._jobs
            if idle and self._closing:
                break
            try:
                if not idle:
                    self._poll_once()
                if self.runner._pending:  # nodes may have joined since: more jobs fit on the cluster
                    self.runner._dispatch()
            except Exception as exc:  # noqa: BLE001 - the cluster hiccuped; the next poll tries again
                if repr(exc) != last_error:  # once per kind of trouble, not five times a second
                    traceback.print_exc()
                    last_error = repr(exc)
            time.sleep(self.runner.poll)
        with contextlib.suppress(Exception):
            ray.kill(self.board)

    def _poll_once(self) -> None:
        with self._lock:
            jobs = dict(self._jobs)
        refs = list(jobs)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)  # before the drain: see _ray_job
        try:
            events, begun = ray.get(self.board.drain.remote(), timeout=30)
        except ray.exceptions.RayError:
            if not ready:
                raise
            events, begun = {}, {}  # the board is gone: the ended jobs still get their outcome
        jobs_dir = self.runner.jobs_dir
        for job_id, info in begun.items():
            self._begun.add(job_id)
            with contextlib.suppress(OSError):
                update_job(jobs_dir / job_id, state="running", **info)
        for job_id, evs in events.items():
            with contextlib.suppress(OSError), open(jobs_dir / job_id / "events.jsonl", "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(e, default=float) + "\n" for e in evs))
        for ref in ready:
            self._finish(ref, *jobs[ref])
        now = time.monotonic()
        for ref, (job_id, _) in jobs.items():
            if ref not in ready:
                self._forward_stop(ref, job_id, now)

    def _forward_stop(self, ref, job_id: str, now: float) -> None:
        """A stop file (written by `stop()`, a shutdown, or another process) reaches the task."""
        sent = self._stop_sent.get(job_id)
        if sent is None:
            if not (self.runner.jobs_dir / job_id / "stop").exists():
                return
            self._stop_sent[job_id] = now
            self.board.stop.remote(job_id)
            if job_id not in self._begun:  # still waiting for a node (a GPU): it never starts
                self._cancelled[job_id] = "waiting"
                ray.cancel(ref, force=False)
        elif now - sent > self.runner.stop_grace and self._cancelled.get(job_id) in (None, "waiting"):
            self._cancelled[job_id] = "interrupt"
            ray.cancel(ref, force=False)  # KeyboardInterrupt in the task
        elif now - sent > 2 * self.runner.stop_grace and self._cancelled.get(job_id) == "interrupt":
            self._cancelled[job_id] = "force"
            ray.cancel(ref, force=True)

    def _finish(self, ref, job_id: str, future: cf.Future) -> None:
        job_dir = self.runner.jobs_dir / job_id
        cancelled = self._cancelled.get(job_id)
        forced = ("Stopped by force: the job did not end within "
                  f"{self.runner.stop_grace:.0f} s of Stop; nothing of it was saved.")
        try:
            info = ray.get(ref, timeout=30)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError) as exc:
            if cancelled:
                info = {"state": "stopped", "finished": utc_now(), "error": None if cancelled == "waiting" else forced}
            else:
                info = {"state": "failed", "finished": utc_now(), "error": _failure_message(exc)}
        except ray.exceptions.RayError as exc:
            info = {"state": "failed", "finished": utc_now(), "error": _failure_message(exc)}
        else:
            trace = info.pop("traceback", None)
            if trace:
                with contextlib.suppress(OSError):
                    (job_dir / "error.txt").write_text(trace, encoding="utf-8")
            if cancelled and info.get("state") == "failed" and "KeyboardInterrupt" in str(info.get("error")):
                info = {**info, "state": "stopped", "error": None if cancelled == "waiting" else forced}
        info.pop("worker_pid", None)  # the task's pid on its node, already recorded from `begin`
        info.pop("started", None)
        with contextlib.suppress(OSError):
            info = update_job(job_dir, **info)
        self.board.forget.remote(job_id)
        with self._lock:
            self._jobs.pop(ref, None)
        self._begun.discard(job_id)
        self._stop_sent.pop(job_id, None)
        self._cancelled.pop(job_id, None)
        future.set_result(info)  # JobRunner._on_done: the queue moves on


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A head that is down or mistyped fails here in seconds; `ray.init` would wait for minutes."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except ValueError:
        raise ConfigError(f"NCF_RAY_ADDRESS must be host:port (e.g. head-node:6379), got {address!r}.") from None
    except OSError as exc:
        raise RunError(f"Cannot reach the Ray cluster at NCF_RAY_ADDRESS={address!r}: {exc.strerror or exc}. "
                       "Start its head with `ray start --head --port=6379`, or unset NCF_RAY_ADDRESS to train "
                       "on this machine.") from None


class RayJobRunner(JobRunner):
    """`JobRunner` whose jobs run as Ray tasks on the cluster at `address`.

    `max_workers`: jobs handed to the cluster at once (the rest wait in the fair queue here, with
    their positions); by default NCF_WORKERS if set, else the cluster's CPUs / `cpus_per_job`,
    counted again as nodes join or leave (one per GPU on a cluster with GPUs). `cpus_per_job`
    (NCF_RAY_CPUS_PER_JOB, default 1): the CPUs each task asks for, and its torch threads. A job that
    says `device="cuda"`, or `"auto"` on a cluster with GPUs, also asks for one GPU, so it runs on a
    GPU node (Ray then shows it only its GPU); `"cpu"` jobs never do."""

    def __init__(self, address: str, max_workers: int | None = None, max_queued_per_owner: int = 3,
                 models_dir=None, cpus_per_job: float | None = None, poll: float = 0.2, stop_grace: float = 20.0):
        if not ray.is_initialized():
            _check_reachable(address)
            try:
                ray.init(address=address, namespace="ncf", log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RunError(f"Cannot reach the Ray cluster at NCF_RAY_ADDRESS={address!r}: {exc}. "
                               "Start it with `ray start --head`, or unset NCF_RAY_ADDRESS to train on "
                               "this machine.") from None
        self.address = address
        self.poll = poll
        self.stop_grace = stop_grace
        env = os.environ.get("NCF_RAY_CPUS_PER_JOB", "").strip()
        try:
            self.cpus_per_job = float(cpus_per_job if cpus_per_job is not None else (env or 1))
        except ValueError:
            raise ConfigError(f"NCF_RAY_CPUS_PER_JOB must be a number of CPUs, got {env!r}.") from None
        self._fixed_workers = max_workers or (int(os.environ["NCF_WORKERS"]) if
                                              os.environ.get("NCF_WORKERS", "").strip() else None)
        self._slots: tuple[float, dict] = (0.0, {})  # (when counted, the cluster's resources)
        self._host = socket.gethostname()
        super().__init__(max_workers=1, max_queued_per_owner=max_queued_per_owner, models_dir=models_dir)
        # Several servers may share one runs folder over NFS: a runner's id names its host, so a
        # server never judges another machine's jobs by a process id of its own machine.
        LIVE_RUNNERS.discard(self.id)
        self.id = f"{self.id}@{self._host}"
        LIVE_RUNNERS.add(self.id)

    def _resources(self) -> dict:
        """The cluster's resources, counted again at most every 2 s (nodes join and leave)."""
        when, res = self._slots
        if time.monotonic() - when > 2.0:
            with contextlib.suppress(Exception):
                res = ray.cluster_resources()
            self._slots = (time.monotonic(), res)
        return res

    def cluster_gpus(self) -> int:
        return int(self._resources().get("GPU", 0))

    @property
    def max_workers(self) -> int:
        """Jobs handed to the cluster at once: NCF_WORKERS if set; else one per GPU on a cluster
        with GPUs (the app's jobs say `auto` and so ask for one), else its CPUs / `cpus_per_job`."""
        if self._fixed_workers:
            return self._fixed_workers
        res = self._resources()
        if res.get("GPU", 0) >= 1:
            return int(res["GPU"])
        return max(1, int(res.get("CPU", 0.0) // self.cpus_per_job))

    @max_workers.setter
    def max_workers(self, value: int) -> None:  # JobRunner.__init__ assigns it; the cluster decides
        pass

    def _pool(self) -> _RayExecutor:
        if self._executor is None:
            self._executor = _RayExecutor(self)
        return self._executor

    def _runner_alive(self, runner: dict) -> bool:
        """As the pool's, but a runner on another host (a server sharing the runs folder) is not ours to
        judge: its process ids mean nothing here."""
        host = runner.get("host") or (runner.get("id", "").partition("@")[2] or self._host)
        return host != self._host or super()._runner_alive(runner)
