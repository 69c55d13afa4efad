"""Training jobs: the contract every backend keeps, and the choice of backend.

The contract (what pages, sweeps and the CLI rely on): `submit(cfg, owner)` queues a job and
returns its id; jobs start in a fair order across owners (`JobStatus.position`); a job's state,
events and run id live in `models_dir/.jobs/<job_id>/` (`job.json`, `events.jsonl`), so any page,
a reload or a restarted server reads the same truth; `stop(job_id, owner)` ends a waiting job at
once and a running one within a second or two, saving what it trained; a finished job names its
run folder under `models_dir`.

Backends:

- `pool` (the default): a bounded pool of spawned worker processes on this machine; what a worker
  runs is `worker`, a job's files on disk are `files`.
- `ray_backend`: with `NCF_RAY_ADDRESS` set, each job is a Ray task on a cluster. Ray is imported
  only then; without the variable nothing of Ray is imported or started.
"""

from __future__ import annotations

import os
import threading

from ncf.data.sources import load_split  # noqa: F401 - what a job loads, as benchmarks call it
from ncf.jobs import pool
from ncf.jobs.files import FINISHED, STATES, JobStatus, StopFile, read_events  # noqa: F401 - the public API
from ncf.jobs.pool import JobRunner, default_workers  # noqa: F401 - the public API

_ray_runner = None
_ray_lock = threading.Lock()
_ray_exit_hook = False


def ray_address() -> str | None:
    """NCF_RAY_ADDRESS (e.g. `head-node:6379`, or `auto` on a cluster node), or None."""
    return os.environ.get("NCF_RAY_ADDRESS", "").strip() or None


def get_runner():
    """The process-wide runner the app shares between all sessions (created on first use): a
    `RayJobRunner` when NCF_RAY_ADDRESS is set, else the embedded pool's `JobRunner`."""
    global _ray_runner, _ray_exit_hook
    address = ray_address()
    if address is None:
        return pool.get_runner()
    with _ray_lock:
        if _ray_runner is None or _ray_runner._closed:
            from ncf.jobs.ray_backend import RayJobRunner  # the only place Ray is imported

            if not _ray_exit_hook:
                pool.at_exit(_shutdown_ray_runner)
                _ray_exit_hook = True
            _ray_runner = RayJobRunner(address=address)
        return _ray_runner


def reset_runner(wait: bool = True) -> None:
    """Shuts down the process-wide runner(s), if any (their running jobs stop and save what they
    trained); the next `get_runner` builds a new one from the environment."""
    global _ray_runner
    pool.reset_runner(wait=wait)
    with _ray_lock:
        runner, _ray_runner = _ray_runner, None
    if runner is not None:
        runner.shutdown(wait=wait, stop_running=True)


def _shutdown_ray_runner() -> None:
    runner = _ray_runner
    if runner is not None:
        runner.shutdown(wait=False, stop_running=True)
