"""Training jobs: the contract every backend keeps, and the choice of backend.

The contract (what pages, sweeps and the CLI rely on): `submit(cfg, owner)` queues a job and
returns its id; jobs start in a fair order across owners (`JobStatus.position`); a job's state,
events and run id live in `models_dir/.jobs/<job_id>/` (`job.json`, `events.jsonl`), so any page,
a reload or a restarted server reads the same truth; `stop(job_id, owner)` ends a waiting job at
once and a running one within a second or two, saving what it trained; a finished job names its
run folder under `models_dir`.

Backends:

- `pool` (the default): a bounded pool of spawned worker processes on this machine.
"""

from __future__ import annotations

from ncf.jobs import pool
from ncf.jobs.pool import (  # noqa: F401 - the public API (and helpers sweeps use) stay at ncf.jobs
    FINISHED,
    STATES,
    JobRunner,
    JobStatus,
    StopFile,
    _pid_alive,
    _read_json,
    _write_json_atomic,
    default_workers,
    load_split,
    read_events,
)

get_runner = pool.get_runner
reset_runner = pool.reset_runner
