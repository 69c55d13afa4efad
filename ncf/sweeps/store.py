"""A sweep on disk: `<models_dir>/.sweeps/<id>/sweep.json` (owner, base config, each point's values,
config, job id and state), so a page, a reload, a `?sweep=<id>` link or a restarted server read the
same truth. The driver and the sessions' stop buttons write it under `io_lock`."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ncf.config import RunConfig
from ncf.errors import NCFError, UnknownIdError

SWEEP_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
ACTIVE, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"
POINT_FINISHED = ("done", "stopped", "failed", "skipped")


@dataclass(frozen=True)
class Sweep:
    id: str
    owner: str
    name: str
    state: str
    created: str
    base: dict
    params: dict  # {"factors": [8, 16]}
    models: list
    seeds: list
    points: list[dict]  # {"values", "config", "job", "state", "run_id", "error"}
    finished: str | None = None
    note: str | None = None  # why the next run waits (e.g. the owner's queue is full)
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_finished(self) -> int:
        return sum(1 for p in self.points if p["state"] in POINT_FINISHED)

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def is_search(self) -> bool:
        """An Optuna search (ncf.search): its points come one at a time, judged on validation only."""
        return bool(self.extra.get("search"))

    @property
    def base_config(self) -> RunConfig:
        return RunConfig.from_dict(self.base)


def sweeps_dir(models_dir) -> Path:
    return Path(models_dir) / ".sweeps"


def _path(models_dir, sweep_id: str) -> Path:
    if not isinstance(sweep_id, str) or not SWEEP_ID.match(sweep_id):
        raise UnknownIdError(f"Unknown sweep {str(sweep_id)[:40]!r}: sweep ids look like 20250101-120000-0123ab.")
    return sweeps_dir(models_dir) / sweep_id / "sweep.json"


io_lock = threading.RLock()  # the driver and the sessions' stop buttons write the same files


def write_info(models_dir, info: dict) -> None:
    from ncf.jobs.files import write_json_atomic

    path = _path(models_dir, info["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, info)


def read_info(models_dir, sweep_id: str) -> dict:
    path = _path(models_dir, sweep_id)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UnknownIdError(f"Unknown sweep {sweep_id!r}: it was never started here or has been removed.") from None
    return info


def _sweep(info: dict) -> Sweep:
    known = {k: info.get(k) for k in ("id", "owner", "name", "state", "created", "base", "params", "models", "seeds",
                                      "points", "finished", "note", "error")}
    return Sweep(**known, extra={"search": info["search"]} if info.get("search") else {})


def load_sweep(models_dir, sweep_id: str) -> Sweep:
    return _sweep(read_info(models_dir, sweep_id))


def list_sweeps(models_dir, owner: str | None = None) -> list[Sweep]:
    """Every sweep on disk, newest first; `owner` filters."""
    folder = sweeps_dir(models_dir)
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir(), reverse=True):
        if SWEEP_ID.match(p.name):
            with contextlib.suppress(NCFError):
                sw = load_sweep(models_dir, p.name)
                if owner is None or sw.owner == owner:
                    out.append(sw)
    return out


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

