"""The on-disk record of one training job, in `models_dir/.jobs/<job_id>/`:

- `job.json`   owner, name, config, state, run id, error, times (replaced atomically);
- `events.jsonl` the trainer's events (ncf.events), one JSON line each, appended and flushed as they come;
- `stop`       present once the owner asked the job to stop (the worker polls for it).

So any page, a reload or a restarted server reads the same truth. The runner (ncf.jobs.pool),
the worker (ncf.jobs.worker) and the Ray backend all read and write a job through these helpers.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ncf import events as ev

STATES = ("queued", "running", "done", "stopped", "failed", "interrupted")
FINISHED = ("done", "stopped", "failed", "interrupted")
JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")


@dataclass(frozen=True)
class JobStatus:
    """One job as read from disk. `position` is 1 for the next job to start, 2 for the one after,
    and 0 when the job is not waiting; `ahead` is the number of jobs that start before it."""

    id: str
    owner: str
    name: str
    state: str
    position: int = 0
    run_id: str | None = None
    error: str | None = None
    events: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    submitted: str = ""
    started: str | None = None
    finished: str | None = None
    last_event: dict | None = None  # the newest event (also when `events` was not read)

    @property
    def ahead(self) -> int:
        return max(0, self.position - 1)

    @property
    def progress(self) -> ev.Progress:
        """Where the job stands (ncf.events.Progress): from all its events when they were read, else
        from the newest one, which alone tells the stage, epoch, step, rate and time left."""
        return ev.progress(self.events or ([self.last_event] if self.last_event else []))

    @property
    def finished_state(self) -> bool:
        return self.state in FINISHED


# ---------------------------------------------------------------------------------------------
# Files of one job


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, obj: dict) -> None:
    """Readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def update_job(job_dir: Path, **changes) -> dict:
    info = read_json(job_dir / "job.json") or {}
    info.update(changes)
    write_json_atomic(job_dir / "job.json", info)
    return info


def read_events(job_dir: Path) -> list[dict]:
    """All complete event lines (a line being written right now is skipped)."""
    try:
        text = (job_dir / "events.jsonl").read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def read_last_event(job_dir: Path) -> dict | None:
    """The newest event, reading only the file's tail (pages poll this for every job in a list)."""
    try:
        with open(job_dir / "events.jsonl", "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


class StopFile:
    """A stop flag that is a file, so it crosses processes and survives restarts.

    Quacks like `threading.Event` as far as the trainer needs (`is_set`, `set`, `wait`). The file
    system is asked at most every `poll` seconds, which keeps a per-batch check nearly free."""

    def __init__(self, path: Path, poll: float = 0.2):
        self.path = Path(path)
        self.poll = poll
        self._checked = 0.0
        self._set = False

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._set and now - self._checked >= self.poll:
            self._checked = now
            self._set = self.path.exists()
        return self._set

    def set(self) -> None:
        self.path.touch()
        self._set = True

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll)
        return True

