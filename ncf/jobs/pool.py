"""The bounded runner of training jobs: many sessions submit, a small pool of processes trains.

Thirty "Train" clicks on a 2-core machine must queue, not thrash. Jobs run in a
`concurrent.futures.ProcessPoolExecutor` (spawned processes, so a crash or an out-of-memory
kill takes down a worker, never the server). The runner hands the pool only as many jobs as
it has workers; the rest wait in the runner's queue, from which the next job is taken fairly
across owners (the owner served least recently goes first, then oldest submission), so one
session's five clicks cannot starve everyone else.

Everything a page needs to show lives on disk, in `models_dir/.jobs/<job_id>/` (ncf.jobs.files),
so any page, a reload or a restarted server reads the same truth. Jobs that a dead server left
queued or running are shown as "interrupted" by the next runner. What a worker process runs is
ncf.jobs.worker.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import concurrent.futures.process  # noqa: F401 - registers its exit hook before ours (see at_exit)
import contextlib
import multiprocessing
import os
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ncf.config import RunConfig
from ncf.errors import ConfigError, NCFError, RunError, UnknownIdError
from ncf.jobs.files import (
    FINISHED,
    JOB_ID,
    JobStatus,
    StopFile,
    read_events,
    read_json,
    read_last_event,
    update_job,
    utc_now,
    write_json_atomic,
)
from ncf.jobs.worker import error_message, run_job, worker_init


def default_workers() -> int:
    """NCF_WORKERS if set, else one worker per two cores, at most two (each worker trains with
    the cores left to it; more workers than that only thrash the caches)."""
    env = os.environ.get("NCF_WORKERS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ConfigError(f"NCF_WORKERS must be a whole number of worker processes, got {env!r}.") from None
        if n < 1:
            raise ConfigError(f"NCF_WORKERS must be at least 1, got {n}.")
        return n
    return max(1, min(2, (os.cpu_count() or 1) // 2))


# ---------------------------------------------------------------------------------------------
# The server side

def _default_models_dir() -> Path:
    from ncf.runs import models_dir

    return models_dir()


LIVE_RUNNERS: set[str] = set()  # ids of the runners alive in this process


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    """Thread-safe: every session of the app may call it at once."""

    def __init__(self, max_workers: int | None = None, max_queued_per_owner: int = 3, models_dir=None):
        self.max_workers = max_workers or default_workers()
        self.max_queued_per_owner = max_queued_per_owner
        self.models_dir = Path(models_dir) if models_dir is not None else _default_models_dir()
        self.jobs_dir = self.models_dir / ".jobs"
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Cannot keep training jobs in {self.jobs_dir}: {exc.strerror or exc}. "
                           "Make the models folder writable (or set NCF_MODELS_DIR).") from None
        self.id = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._pending: list[str] = []  # job ids waiting for a worker, in submission order
        self._owner_of: dict[str, str] = {}
        self._last_served: dict[str, int] = {}  # owner -> dispatch counter when last served
        self._served = 0
        self._inflight: dict[cf.Future, tuple[str, cf.ProcessPoolExecutor]] = {}
        self._starting = 0  # jobs taken from the queue and being handed to the pool right now
        self._executor: cf.ProcessPoolExecutor | None = None
        self._closed = False
        LIVE_RUNNERS.add(self.id)
        self._mark_interrupted()
        self.prune()
        self._clean_interrupted_saves()

    # -- public API -------------------------------------------------------------------------

    def submit(self, cfg: RunConfig, owner: str, name: str = "", resume: str | None = None) -> str:
        """Queues a training job and returns its id. Raises ConfigError for an impossible
        configuration or when the owner already has `max_queued_per_owner` jobs waiting.

        `resume`: the id of a saved run to continue (its model and split; `cfg.train` says how many
        more epochs and how). The continued model is saved as a new run."""
        cfg.model.validate()
        cfg.train.validate()
        if resume is not None:
            from ncf.runs import validate_run_id

            validate_run_id(resume)
        owner = str(owner)
        with self._lock:
            if self._closed:
                raise ConfigError("The job runner has shut down; restart the app to train again.")
            waiting = sum(1 for j in self._pending if self._owner_of[j] == owner)
            if waiting >= self.max_queued_per_owner:
                raise ConfigError(f"You already have {waiting} jobs waiting; wait for one to finish or stop one.")
            job_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
            job_dir = self.jobs_dir / job_id
            try:
                job_dir.mkdir()
                write_json_atomic(job_dir / "job.json", {
                    "id": job_id, "owner": owner, "name": name or cfg.name, "config": cfg.to_dict(),
                    "state": "queued", "run_id": None, "error": None, "submitted": utc_now(),
                    "started": None, "finished": None, "runner": {"id": self.id, "pid": os.getpid()},
                    "resume": resume,
                })
                (job_dir / "events.jsonl").touch()
            except OSError as exc:
                shutil.rmtree(job_dir, ignore_errors=True)
                raise RunError(f"Cannot queue the job: writing to {self.jobs_dir} failed ({exc.strerror or exc}). "
                               "Free some disk space or make the models folder writable.") from None
            self._pending.append(job_id)
            self._owner_of[job_id] = owner
        self._dispatch()
        return job_id

    def status(self, job_id: str, events: bool = True) -> JobStatus:
        job_dir = self._job_dir(job_id)
        with self._lock:
            order = self._queue_order()
        info = read_json(job_dir / "job.json")
        if info is None:
            raise UnknownIdError(f"Unknown job {job_id!r}: it was never submitted here or has been removed.")
        return self._status_from(info, job_dir, order, events)

    def jobs(self, owner: str | None = None, events: bool = False) -> list[JobStatus]:
        """Every job on disk (all runners, earlier servers too), oldest first; `owner` filters.
        Events are read only when asked (`last_event` is always there)."""
        with self._lock:
            order = self._queue_order()
        infos = [(job_dir, read_json(job_dir / "job.json"))
                 for job_dir in sorted(p for p in self.jobs_dir.iterdir() if JOB_ID.match(p.name))]
        return [self._status_from(info, job_dir, order, events) for job_dir, info in infos
                if info is not None and (owner is None or info.get("owner") == owner)]

    def stop(self, job_id: str, owner: str | None = None) -> JobStatus:
        """Stops a job: a waiting one never starts; a running one ends within a second and its run
        is saved with what was trained so far. Stopping a finished job changes nothing. With `owner`,
        only that owner's job can be stopped (a session passes its own id)."""
        job_dir = self._job_dir(job_id)
        info = read_json(job_dir / "job.json")
        if info is None:
            raise UnknownIdError(f"Unknown job {job_id!r}: it was never submitted here or has been removed.")
        if owner is not None and info.get("owner") != str(owner):
            raise ConfigError("This job belongs to another session; only the session that started it can stop it.")
        StopFile(job_dir / "stop").set()
        with self._lock:
            if job_id in self._pending:
                self._pending.remove(job_id)
                self._owner_of.pop(job_id, None)
                update_job(job_dir, state="stopped", finished=utc_now())
        return self.status(job_id, events=False)

    def owner_of_run(self, run_id: str) -> str | None:
        """The owner of the job that saved `run_id`; None for a run no job here made (the CLI's, or
        one whose job record was pruned)."""
        for job_dir in sorted(p for p in self.jobs_dir.iterdir() if JOB_ID.match(p.name)):
            info = read_json(job_dir / "job.json")
            if info is not None and info.get("run_id") == run_id:
                return info.get("owner")
        return None

    def prune(self, older_than_days: float = 7.0) -> list[str]:
        """Removes the folders of jobs that finished more than `older_than_days` ago (their runs stay:
        a run folder holds its own history), so a server up for weeks keeps a short job list."""
        cutoff = time.time() - older_than_days * 86400
        removed = []
        for job_dir in self.jobs_dir.iterdir():
            if not JOB_ID.match(job_dir.name):
                continue
            info = read_json(job_dir / "job.json")
            try:
                old = (job_dir / "job.json").stat().st_mtime < cutoff
            except OSError:
                continue
            if info is not None and info.get("state") in FINISHED and old:
                shutil.rmtree(job_dir, ignore_errors=True)
                removed.append(job_dir.name)
        return removed

    def _clean_interrupted_saves(self) -> None:
        """Temporary folders of saves a killed server left behind (older than a minute) go away."""
        with contextlib.suppress(ImportError, OSError, NCFError):
            from ncf.runs import clean_incomplete

            clean_incomplete(self.models_dir)

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.1) -> JobStatus:
        """Blocks until the job has finished (or `timeout` seconds passed) and returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            st = self.status(job_id, events=False)
            if st.finished_state or (deadline is not None and time.monotonic() >= deadline):
                return st
            time.sleep(poll)

    def shutdown(self, wait: bool = True, stop_running: bool = False) -> None:
        """Stops taking jobs. Waiting jobs are marked interrupted; running ones finish (or are asked
        to stop and saved, with `stop_running`) before this returns when `wait`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for job_id in self._pending:
                update_job(self.jobs_dir / job_id, state="interrupted", finished=utc_now(),
                            error="The server shut down before this job started.")
            self._pending.clear()
            self._owner_of.clear()
            running = [job_id for job_id, _ in self._inflight.values()]
            executor = self._executor
        if stop_running:
            for job_id in running:
                StopFile(self.jobs_dir / job_id / "stop").set()
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)
        LIVE_RUNNERS.discard(self.id)

    # -- scheduling -------------------------------------------------------------------------

    def _queue_order(self) -> list[str]:
        """The order in which the waiting jobs will start: repeatedly the owner served least
        recently (never served first), that owner's oldest job. Call with the lock held."""
        last = dict(self._last_served)
        by_owner: dict[str, list[str]] = {}
        for job_id in self._pending:
            by_owner.setdefault(self._owner_of[job_id], []).append(job_id)
        order, turn = [], self._served
        while by_owner:
            owner = min(by_owner, key=lambda o: (last.get(o, -1), self._pending.index(by_owner[o][0])))
            order.append(by_owner[owner].pop(0))
            if not by_owner[owner]:
                del by_owner[owner]
            last[owner] = turn
            turn += 1
        return order

    def _dispatch(self) -> None:
        """Hands waiting jobs to the pool while a worker is free. Call *without* the lock held.

        Only the choice of the next job happens under the lock; writing its file and submitting it
        (which spawns a worker process the first time: seconds of work) happen outside, so no
        session's `status()` ever waits behind a process start. A job between the two shows as
        queued with no position ("Starting…")."""
        while True:
            with self._lock:
                if self._closed or not self._pending or len(self._inflight) + self._starting >= self.max_workers:
                    return
                job_id = self._queue_order()[0]
                self._pending.remove(job_id)
                owner = self._owner_of.pop(job_id)
                self._last_served[owner] = self._served
                self._served += 1
                self._starting += 1
                pool = self._pool()  # the executor object only: its processes start on submit
            job_dir = self.jobs_dir / job_id
            future = None
            try:
                info = update_job(job_dir, state="running", started=utc_now())
                future = pool.submit(run_job, str(job_dir), info["config"], info.get("name", ""),
                                     str(self.models_dir), info.get("resume"))
            except OSError:  # the disk is full or gone: this job cannot be tracked, so it does not run
                pass
            except Exception as exc:  # noqa: BLE001 - the pool broke or shut down meanwhile
                with self._lock:
                    if self._executor is pool:  # a fresh pool for the next job
                        self._executor = None
                    closed = self._closed
                with contextlib.suppress(OSError):
                    if closed:
                        update_job(job_dir, state="interrupted", finished=utc_now(),
                                    error="The server shut down before this job started.")
                    else:
                        update_job(job_dir, state="failed", finished=utc_now(),
                                    error=f"Could not start the job: {error_message(exc)}")
            with self._lock:
                self._starting -= 1
                if future is not None:
                    self._inflight[future] = (job_id, pool)
            if future is not None:
                future.add_done_callback(self._on_done)  # runs at once if the job already ended

    def _pool(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            threads = max(1, (os.cpu_count() or 1) // self.max_workers)
            self._executor = cf.ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_init, initargs=(threads, os.getpid()))
        return self._executor

    def _on_done(self, future: cf.Future) -> None:
        """Runs in the pool's management thread when a job ends, however it ended."""
        with self._lock:
            entry = self._inflight.pop(future, None)
            if entry is None:
                return
            job_id, pool = entry
            with contextlib.suppress(OSError):  # the disk is full or gone: the file keeps its last state
                self._record_outcome(future, self.jobs_dir / job_id, pool)
        self._dispatch()  # whatever happened to this job, the queue moves on

    def _record_outcome(self, future: cf.Future, job_dir: Path, pool: cf.ProcessPoolExecutor) -> None:
        """The worker records a normal end itself; here only what it could not record."""
        exc = None if future.cancelled() else future.exception()
        if future.cancelled():
            update_job(job_dir, state="interrupted", finished=utc_now(),
                        error="The server shut down before this job started.")
        elif isinstance(exc, cf.process.BrokenProcessPool):
            # A worker died (killed, out of memory): the pool is unusable and every job it held is
            # lost. Record why; the next dispatch starts a fresh pool for the jobs still waiting.
            if self._executor is pool:  # the first of its jobs to report it replaces it
                pool.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            update_job(job_dir, state="failed", finished=utc_now(),
                        error="The worker process training this job ended abruptly (killed, or out of "
                              "memory). Other jobs go on; try a smaller batch size or model.")
        elif exc is not None:
            update_job(job_dir, state="failed", finished=utc_now(), error=error_message(exc))

    # -- reading ----------------------------------------------------------------------------

    def _job_dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise UnknownIdError(f"Unknown job {job_id!r}: job ids look like 20250101-120000-0123abcd.")
        return self.jobs_dir / job_id

    def _status_from(self, info: dict, job_dir: Path, order: list[str], events: bool) -> JobStatus:
        job_id = info.get("id", job_dir.name)
        state = info.get("state", "failed")
        position = order.index(job_id) + 1 if job_id in order else 0
        evs = read_events(job_dir) if events else []
        return JobStatus(
            id=job_id, owner=info.get("owner", ""), name=info.get("name", ""), state=state, position=position,
            run_id=info.get("run_id"), error=info.get("error"), events=evs, config=info.get("config", {}),
            submitted=info.get("submitted", ""), started=info.get("started"), finished=info.get("finished"),
            last_event=evs[-1] if evs else read_last_event(job_dir),
        )

    def _mark_interrupted(self) -> None:
        """Jobs a dead runner left queued or running will never finish: say so."""
        for job_dir in self.jobs_dir.iterdir():
            if not JOB_ID.match(job_dir.name):
                continue
            info = read_json(job_dir / "job.json")
            if info is None or info.get("state") not in ("queued", "running"):
                continue
            if not self._runner_alive(info.get("runner") or {}):
                update_job(job_dir, state="interrupted", finished=info.get("finished") or utc_now(),
                            error="The server stopped before this job finished; start it again.")

    def _runner_alive(self, runner: dict) -> bool:
        """Whether the runner a job.json names (its id and process) is still alive."""
        pid = runner.get("pid")
        if pid == os.getpid():
            return runner.get("id") in LIVE_RUNNERS
        return isinstance(pid, int) and pid_alive(pid)


_runner: JobRunner | None = None
_runner_lock = threading.Lock()
_exit_hook = False


def get_runner() -> JobRunner:
    """The process-wide runner the app shares between all sessions (created on first use)."""
    global _runner
    with _runner_lock:
        global _exit_hook
        if _runner is None or _runner._closed:
            if not _exit_hook:  # once per process: the hook shuts down whichever runner is current
                at_exit(_shutdown_runner)
                _exit_hook = True
            _runner = JobRunner()
        return _runner


def reset_runner(wait: bool = True) -> None:
    """Shuts down the process-wide runner, if any (its running jobs stop and save what they trained);
    the next `get_runner` builds a new one from the environment (NCF_MODELS_DIR, NCF_WORKERS)."""
    global _runner
    with _runner_lock:
        runner, _runner = _runner, None
    if runner is not None:
        runner.shutdown(wait=wait, stop_running=True)


def at_exit(hook) -> None:
    """Runs `hook` when the interpreter exits, before concurrent.futures joins its pools (which
    would otherwise wait for every running job to finish training before the server can exit)."""
    register = getattr(threading, "_register_atexit", None)  # what concurrent.futures itself uses
    if register is None:  # pragma: no cover - other Python implementations
        atexit.register(hook)
    else:
        register(hook)


def _shutdown_runner() -> None:
    """At exit: running jobs are asked to stop, so they save what they trained within a second or
    two; waiting jobs are marked interrupted."""
    with contextlib.suppress(Exception):
        if _runner is not None:
            _runner.shutdown(wait=False, stop_running=True)
