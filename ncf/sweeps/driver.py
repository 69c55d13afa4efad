"""Starting, stopping and driving sweeps: the driver thread feeds each sweep's runs to the job pool
one at a time (see ncf.sweeps)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from datetime import UTC, datetime

from ncf.config import RunConfig
from ncf.errors import ConfigError, NCFError
from ncf.sweeps.grids import grid, point_label
from ncf.sweeps.store import (
    ACTIVE,
    DONE,
    FAILED,
    POINT_FINISHED,
    STOPPED,
    Sweep,
    io_lock,
    list_sweeps,
    load_sweep,
    read_info,
    utc_now,
    write_info,
)


def start_sweep(runner, base: RunConfig, models: list[str], params: dict[str, list], seeds: list[int], owner: str,
                name: str = "", search: dict | None = None) -> Sweep:
    """Validates the whole grid, writes the sweep and queues its first run. A session runs one sweep at
    a time; a second is refused while the first is running. With `search` (ncf.search.start_search) the
    grid is empty and the driver asks ncf.search for each next point when the last has finished."""
    points = grid(base, models, params, seeds) if search is None else []
    owner = str(owner)
    for sw in list_sweeps(runner.models_dir, owner):
        if sw.active:
            raise ConfigError(f"You already have a sweep running ({sw.name or sw.id}, {sw.n_finished} of "
                              f"{len(sw.points)} runs done); stop it or wait for it to finish.")
    sweep_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    name = name.strip() or " x ".join([",".join(models), *params])
    info = {
        "id": sweep_id, "owner": owner, "name": name, "state": ACTIVE, "created": utc_now(), "finished": None,
        "base": base.to_dict(), "models": list(models), "params": {k: list(v) for k, v in params.items()},
        "seeds": [int(s) for s in seeds], "note": None, "error": None,
        "driver": {"pid": os.getpid()},
        **({"search": search} if search is not None else {}),
        "points": [{"values": p.values, "config": p.config.replace(name=f"{name} · {point_label(p.values)}").to_dict(),
                    "job": None, "state": "pending", "run_id": None, "error": None} for p in points],
    }
    with io_lock:
        write_info(runner.models_dir, info)
    driver = driver_for(runner)
    driver.add(sweep_id)
    return load_sweep(runner.models_dir, sweep_id)


def stop_sweep(runner, sweep_id: str, owner: str | None = None) -> Sweep:
    """Stops a sweep as a whole: its queued or running job is stopped (a running one is saved with what it
    learned), and the runs not yet submitted never start. With `owner`, only that owner's sweep."""
    with io_lock:
        info = read_info(runner.models_dir, sweep_id)
        if owner is not None and info.get("owner") != str(owner):
            raise ConfigError("This sweep belongs to another session; only the session that started it can stop it.")
        if info["state"] == ACTIVE:
            info.update(state=STOPPED, finished=utc_now(), note=None)
            for p in info["points"]:
                if p["job"] is not None and p["state"] not in POINT_FINISHED:
                    with contextlib.suppress(NCFError):
                        runner.stop(p["job"])
                elif p["job"] is None:
                    p["state"] = "skipped"
            write_info(runner.models_dir, info)
    driver_for(runner).advance(sweep_id)  # record the stopped job's outcome once it has one
    return load_sweep(runner.models_dir, sweep_id)


# ---------------------------------------------------------------------------------------------
# The driver: one thread per runner in the server process


class SweepDriver:
    """Submits each active sweep's next run when its previous one has finished (polling the job files)."""

    def __init__(self, runner, poll: float = 0.5):
        self.runner = runner
        self.poll = poll
        self._active: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ncf-sweeps", daemon=True)
        self._adopt()
        self._thread.start()

    def add(self, sweep_id: str) -> None:
        with self._lock:
            self._active.add(sweep_id)
        self.advance(sweep_id)

    def _adopt(self) -> None:
        """Sweeps a dead server left running are resumed here (see the module docstring)."""
        from ncf.jobs.pool import pid_alive

        for sw in list_sweeps(self.runner.models_dir):
            if not sw.active:
                continue
            info = read_info(self.runner.models_dir, sw.id)
            pid = (info.get("driver") or {}).get("pid")
            if pid == os.getpid() or (isinstance(pid, int) and pid_alive(pid)):
                continue  # another live server drives it (or this process already does)
            with io_lock:
                info["driver"] = {"pid": os.getpid()}
                write_info(self.runner.models_dir, info)
            self._active.add(sw.id)

    def _loop(self) -> None:
        while not self.runner._closed:
            with self._lock:
                ids = list(self._active)
            for sweep_id in ids:
                try:
                    self.advance(sweep_id)
                except NCFError:
                    with self._lock:
                        self._active.discard(sweep_id)
                except OSError:  # the disk is full or gone: try again on the next round
                    pass
            self._wake.wait(self.poll)
            self._wake.clear()

    def advance(self, sweep_id: str) -> None:
        """Records finished jobs of the sweep and, while it is active, submits its next run."""
        with io_lock:
            info = read_info(self.runner.models_dir, sweep_id)
            changed = False
            waiting = False
            for p in info["points"]:
                if p["state"] in POINT_FINISHED:
                    continue
                if p["job"] is not None:
                    st = self.runner.status(p["job"], events=False)
                    if st.state in ("queued", "running"):
                        waiting = True
                        break
                    if st.state == "interrupted" and info["state"] == ACTIVE:
                        p["job"] = None  # a restart interrupted it: run it again
                    else:
                        p.update(state="failed" if st.state == "interrupted" else st.state, run_id=st.run_id,
                                 error=st.error)
                        changed = True
                        continue
                if info["state"] != ACTIVE:
                    p["state"] = "skipped"
                    changed = True
                    continue
                try:
                    p["job"] = self.runner.submit(RunConfig.from_dict(p["config"]), owner=info["owner"],
                                                  name=p["config"].get("name", ""))
                    p["state"] = "submitted"
                    info["note"] = None
                except ConfigError as e:  # the owner's queue is full (single runs of theirs): try again later
                    info["note"] = f"The next run waits: {e}"
                except NCFError as e:  # the models folder cannot be written: the sweep cannot go on
                    info.update(state=FAILED, finished=utc_now(), error=f"The sweep stopped: {e}")
                    p["state"] = "skipped"
                    changed = True
                    continue
                changed = True
                waiting = True
                break
            if not waiting and info["state"] == ACTIVE and info.get("search"):
                from ncf.search import next_point

                try:  # a search's next trial, from the finished ones' validation figures
                    point = next_point(info, self.runner.models_dir)
                except NCFError as e:
                    info.update(state=FAILED, finished=utc_now(), error=f"The search stopped: {e}")
                    point, changed = None, True
                if point is not None:
                    info["points"].append(point)
                    changed = waiting = True
                    self._wake.set()  # submitted on the next round, without waiting a poll
            if not waiting and info["state"] == ACTIVE:
                info.update(state=DONE, finished=utc_now())
                changed = True
            if changed:
                write_info(self.runner.models_dir, info)
            if info["state"] != ACTIVE and not waiting:
                with self._lock:
                    self._active.discard(sweep_id)


_drivers: dict[str, SweepDriver] = {}
_drivers_lock = threading.Lock()


def driver_for(runner) -> SweepDriver:
    """The driver of `runner`'s sweeps, started (and resuming sweeps from disk) on first use."""
    with _drivers_lock:
        d = _drivers.get(runner.id)
        if d is None:
            d = _drivers[runner.id] = SweepDriver(runner)
        return d


def wait_sweep(runner, sweep_id: str, timeout: float | None = None, poll: float = 0.2) -> Sweep:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        sw = load_sweep(runner.models_dir, sweep_id)
        if (not sw.active and all(p["state"] in POINT_FINISHED for p in sw.points)) or (
                deadline is not None and time.monotonic() >= deadline):
            return sw
        time.sleep(poll)
