"""A sweep's life on a shared server: a grid of runs that goes through the job pool one run at a time.

`start_sweep` expands variants (models) x one or more settings x seeds into run configurations,
validates every one and refuses a grid past the session cap (`ncf.experiments.max_runs`,
NCF_MAX_SWEEP_RUNS) before anything is queued. The sweep is then a file,
`<models_dir>/.sweeps/<id>/sweep.json` (owner, base config, each point's values, config, job id and
state), so a page, a reload, a `?sweep=<id>` link or a restarted server read the same truth.

A driver thread in the server process (one per `JobRunner`) submits a sweep's runs ONE AT A TIME, the
next when the previous has finished. So the runner's fair queue interleaves them with every other
session's single runs (the owner served least recently goes first), and a sweep never fills its
owner's per-owner queue. `stop_sweep` marks the sweep stopped and stops its queued or running job;
the points not yet submitted are never run.

After a restart a sweep that was running is resumed, not dropped: the new runner marks the job the
dead server left as interrupted, and the driver submits that point again and carries on. (Marking the
sweep interrupted would lose the rest of a long grid to a routine redeploy; a run is cheap to redo.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ncf import events, registry
from ncf.config import TRAIN_DEFAULTS, RunConfig, default_batch_size
from ncf.errors import ConfigError, NCFError, UnknownIdError
from ncf.experiments import REPORTED_METRICS, max_runs

SWEEP_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
ACTIVE, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"
POINT_FINISHED = ("done", "stopped", "failed", "skipped")


@dataclass(frozen=True)
class Setting:
    """A setting a sweep can vary: where it lives in a RunConfig, its type and a sensible default grid."""

    section: str  # "model" or "train"
    kind: type
    label: str
    default: str


# The settings the page offers; the keys are RunConfig field names (and the CLI's flags without "--").
SWEEPABLE: dict[str, Setting] = {
    "factors": Setting("model", int, "predictive factors", "8,16,32,64"),
    "n_negatives": Setting("train", int, "negatives per positive", "1,2,4,8"),
    "epochs": Setting("train", int, "epochs", "2,4,8"),
    "lr": Setting("train", float, "learning rate", "0.001,0.005,0.01"),
    "batch_size": Setting("train", int, "batch size", "256,1024,4096"),
    "weight_decay": Setting("train", float, "weight decay", "0,0.01,0.1"),
    "dropout": Setting("model", float, "dropout", "0,0.2,0.5"),
}


def variants() -> list[str]:
    """The models a sweep can compare: the ranking (implicit-feedback) ones, whose metrics share a chart."""
    return [m for m in registry.names() if registry.get(m).default_objective == "implicit"]


def parse_values(name: str, text: str) -> list:
    """'8, 16,32' -> [8, 16, 32] for a sweepable setting; a specific error otherwise."""
    if name not in SWEEPABLE:
        raise ConfigError(f"{name!r} cannot be swept here; choose one of {', '.join(SWEEPABLE)}.")
    kind = SWEEPABLE[name].kind
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"Give at least one value for {SWEEPABLE[name].label}, such as {SWEEPABLE[name].default}.")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise ConfigError(f"Values of {SWEEPABLE[name].label} are {what} separated by commas, got {text!r}.") from None
    return list(dict.fromkeys(values))  # a repeated value would only repeat runs


@dataclass(frozen=True)
class Point:
    values: dict  # {"model": "gmf", "factors": 8, "seed": 0}
    config: RunConfig


def grid(base: RunConfig, models: list[str], params: dict[str, list], seeds: list[int]) -> list[Point]:
    """Every configuration, models slowest, then the settings in the order given, seeds fastest.
    Each is validated; a grid past the session cap is refused with a message that names the cap."""
    if not models:
        raise ConfigError("Choose at least one model to sweep.")
    if not seeds:
        raise ConfigError("Give at least one seed, such as 0.")
    for name in params:
        if name not in SWEEPABLE:
            raise ConfigError(f"{name!r} cannot be swept here; choose one of {', '.join(SWEEPABLE)}.")
    n = len(models) * len(seeds)
    for values in params.values():
        n *= len(values)
    cap = max_runs()
    if n > cap:
        raise ConfigError(f"This sweep has {n} runs; a session's sweep is capped at {cap} runs on this server "
                          "(NCF_MAX_SWEEP_RUNS). Sweep fewer values, models or seeds.")
    points = []
    for model in models:
        combos: list[dict] = [{}]
        for name, values in params.items():
            combos = [{**c, name: v} for c in combos for v in values]
        for combo in combos:
            for seed in seeds:
                m, t = base.model.replace(model=model, pretrain=base.model.pretrain and model == "neumf"), base.train
                for name, value in combo.items():
                    if SWEEPABLE[name].section == "model":
                        m = m.replace(**{name: value})
                    else:
                        t = t.replace(**{name: value})
                t = t.replace(seed=int(seed))
                if "factors" in combo and base.model.layers is not None:
                    m = m.replace(layers=None)  # the tower follows the predictive factors (He et al.'s towers)
                m.validate()
                t.validate()
                values = {"model": model, **combo, "seed": int(seed)}
                points.append(Point(values, base.replace(model=m, train=t)))
    return points


def point_label(values: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


# ---------------------------------------------------------------------------------------------
# Estimates


def run_samples(cfg: RunConfig, n_train: int) -> int:
    """Training samples one run processes: observed pairs x (1 + negatives) x epochs."""
    objective = cfg.model.resolved_objective
    epochs = cfg.train.epochs or TRAIN_DEFAULTS[objective]["epochs"]
    per_epoch = n_train * (1 if objective == "explicit" else 1 + cfg.train.n_negatives)
    if cfg.model.pretrain:
        epochs *= 3  # GMF, MLP, then NeuMF
    return per_epoch * epochs


DEFAULT_RATE = 100_000.0  # samples/s assumed for a model never run on the data (a 2-core CPU, GMF)
OVERHEAD_SECONDS = 6.0  # per run, with the assumed rate: a worker loads the data, evaluates, saves


@dataclass(frozen=True)
class Estimate:
    seconds: float
    samples: int
    measured: dict  # model -> wall-clock samples/s of its newest finished run on the same data
    assumed: list  # models with no such run: DEFAULT_RATE plus OVERHEAD_SECONDS a run


def estimate(points: list[Point], n_train: int, rates: dict[str, float] | None = None) -> Estimate:
    """Wall time of running the points one after another: an estimate, not a promise (other sessions'
    jobs share the workers). A model measured on this data uses its measured rate, which includes
    loading, evaluating and saving; others use DEFAULT_RATE plus OVERHEAD_SECONDS a run."""
    rates = {m: r for m, r in (rates or {}).items() if r and r > 0}
    seconds, samples, assumed = 0.0, 0, []
    for p in points:
        n = run_samples(p.config, n_train)
        model = p.values["model"]
        if model in rates:
            seconds += n / rates[model]
        else:
            seconds += n / DEFAULT_RATE + OVERHEAD_SECONDS
            assumed.append(model)
        samples += n
    used = {m: r for m, r in rates.items() if any(p.values["model"] == m for p in points)}
    return Estimate(seconds=seconds, samples=samples, measured=used, assumed=list(dict.fromkeys(assumed)))


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def measured_rates(runner, source: str) -> dict[str, float]:
    """Per model, the wall-clock training samples/s (start to finish of the job: loading, training,
    evaluating, saving) of its newest finished job on the same data source."""
    from ncf.jobs import read_events

    rates: dict[str, float] = {}
    for job in reversed(runner.jobs()):
        cfg = job.config or {}
        model = (cfg.get("model") or {}).get("model")
        if job.state != "done" or (cfg.get("data") or {}).get("source") != source or model in rates:
            continue
        seconds = _seconds_between(job.started, job.finished)
        start = next((e for e in events.parse_all(read_events(runner.jobs_dir / job.id))
                      if isinstance(e, events.Start)), None)
        if seconds is None or seconds < 0 or not start or not start.n_train:
            continue
        seconds = max(seconds, 1.0)  # the job's times have one-second resolution: a quick run may read 0
        with contextlib.suppress(NCFError, TypeError, ValueError):
            rates[model] = run_samples(RunConfig.from_dict(cfg), int(start.n_train)) / seconds
    return rates


def batch_for(cfg: RunConfig, n_train: int) -> int:
    return cfg.train.batch_size or default_batch_size(cfg.model.resolved_objective, n_train, cfg.train.n_negatives)


# ---------------------------------------------------------------------------------------------
# The sweep on disk


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


_io_lock = threading.RLock()  # the driver and the sessions' stop buttons write the same files


def _write(models_dir, info: dict) -> None:
    from ncf.jobs.files import write_json_atomic

    path = _path(models_dir, info["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, info)


def _read(models_dir, sweep_id: str) -> dict:
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
    return _sweep(_read(models_dir, sweep_id))


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        "id": sweep_id, "owner": owner, "name": name, "state": ACTIVE, "created": _now(), "finished": None,
        "base": base.to_dict(), "models": list(models), "params": {k: list(v) for k, v in params.items()},
        "seeds": [int(s) for s in seeds], "note": None, "error": None,
        "driver": {"pid": os.getpid()},
        **({"search": search} if search is not None else {}),
        "points": [{"values": p.values, "config": p.config.replace(name=f"{name} · {point_label(p.values)}").to_dict(),
                    "job": None, "state": "pending", "run_id": None, "error": None} for p in points],
    }
    with _io_lock:
        _write(runner.models_dir, info)
    driver = driver_for(runner)
    driver.add(sweep_id)
    return load_sweep(runner.models_dir, sweep_id)


def stop_sweep(runner, sweep_id: str, owner: str | None = None) -> Sweep:
    """Stops a sweep as a whole: its queued or running job is stopped (a running one is saved with what it
    learned), and the runs not yet submitted never start. With `owner`, only that owner's sweep."""
    with _io_lock:
        info = _read(runner.models_dir, sweep_id)
        if owner is not None and info.get("owner") != str(owner):
            raise ConfigError("This sweep belongs to another session; only the session that started it can stop it.")
        if info["state"] == ACTIVE:
            info.update(state=STOPPED, finished=_now(), note=None)
            for p in info["points"]:
                if p["job"] is not None and p["state"] not in POINT_FINISHED:
                    with contextlib.suppress(NCFError):
                        runner.stop(p["job"])
                elif p["job"] is None:
                    p["state"] = "skipped"
            _write(runner.models_dir, info)
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
            info = _read(self.runner.models_dir, sw.id)
            pid = (info.get("driver") or {}).get("pid")
            if pid == os.getpid() or (isinstance(pid, int) and pid_alive(pid)):
                continue  # another live server drives it (or this process already does)
            with _io_lock:
                info["driver"] = {"pid": os.getpid()}
                _write(self.runner.models_dir, info)
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
        with _io_lock:
            info = _read(self.runner.models_dir, sweep_id)
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
                    info.update(state=FAILED, finished=_now(), error=f"The sweep stopped: {e}")
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
                    info.update(state=FAILED, finished=_now(), error=f"The search stopped: {e}")
                    point, changed = None, True
                if point is not None:
                    info["points"].append(point)
                    changed = waiting = True
                    self._wake.set()  # submitted on the next round, without waiting a poll
            if not waiting and info["state"] == ACTIVE:
                info.update(state=DONE, finished=_now())
                changed = True
            if changed:
                _write(self.runner.models_dir, info)
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


# ---------------------------------------------------------------------------------------------
# Reading results


def point_states(runner, sweep: Sweep, rows: list[dict] | None = None, metrics=("hr@10", "full_recall@10")) -> list[dict]:
    """The grid as it stands: each point's values, its job's live state (queued, running with epoch) and,
    from `rows` (`sweep_rows`), its headline figures where finished."""
    by_run = {r["run"]: r for r in rows or ()}
    out = []
    for i, p in enumerate(sweep.points):
        state, progress = p["state"], ""
        if p["job"] is not None and state not in POINT_FINISHED:
            with contextlib.suppress(NCFError):
                st = runner.status(p["job"], events=False)
                state = st.state
                if st.state == "running" and st.progress.epoch:
                    progress = f"epoch {st.progress.epoch}"
                elif st.state == "queued" and st.position:
                    progress = f"{st.ahead} ahead in the queue"
        row = by_run.get(p["run_id"], {})
        out.append({"#": i + 1, **p["values"], "state": state, "progress": progress,
                    **{m: row.get(m) for m in metrics}, "run": p["run_id"] or ""})
    return out


def sweep_rows(sweep: Sweep, models_dir) -> list[dict]:
    """One row per finished run (as `ncf.experiments.result_row`): the swept values, the metrics,
    training seconds and the run id. Runs that cannot be read are left out."""
    from ncf.runs import list_runs

    wanted = {p["run_id"] for p in sweep.points if p["run_id"]}
    if not wanted:
        return []
    infos = {r.id: r for r in list_runs(models_dir) if r.id in wanted and r.error is None}
    rows = []
    for p in sweep.points:
        info = infos.get(p["run_id"]) if p["run_id"] else None
        if info is None:
            continue
        row = {**p["values"]}
        row.update({k: info.metrics[k] for k in REPORTED_METRICS if k in info.metrics})
        row.update(epochs=info.epochs, train_seconds=round(info.train_seconds or 0.0, 2), stopped=info.stopped,
                   run=info.id)
        rows.append(row)
    return rows


def parse_seeds(text: str) -> list[int]:
    """'0, 1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(p) for p in str(text).replace(" ", "").split(",") if p]
    except ValueError:
        raise ConfigError(f"Seeds are whole numbers separated by commas, such as 0,1,2; got {text!r}.") from None
    if not seeds:
        raise ConfigError("Give at least one seed, such as 0.")
    return list(dict.fromkeys(seeds))


def chart_rows(sweep: Sweep, rows: list[dict]) -> tuple[list[dict], str | None]:
    """The rows with a "series" column (the model, and the second swept setting's value where there is
    one) and the setting for the x axis (the first swept one; None for a sweep over models only)."""
    names = list(sweep.params)
    x = names[0] if names else None
    second = names[1] if len(names) > 1 else None
    out = [{**r, "series": r["model"] if second is None else f"{r['model']} · {second}={r.get(second)}"} for r in rows]
    return out, x


def runs_at(rows: list[dict], series: str, x: str, value) -> list[str]:
    """The run ids behind one point of a sweep chart (one per seed)."""
    return [r["run"] for r in rows if r.get("series") == series and r.get(x) == value]
