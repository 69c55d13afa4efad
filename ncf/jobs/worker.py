"""What runs a training job in a worker process (spawned by the pool, or a Ray task's process).

`run_job` trains one job from its folder (ncf.jobs.files) and saves its run; it never raises, so
a failure stays that job's. `worker_init` prepares a spawned pool worker.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
import traceback
from pathlib import Path

from ncf import events as ev
from ncf.config import RunConfig
from ncf.data.sources import load_split
from ncf.errors import NCFError
from ncf.jobs.files import StopFile, update_job, utc_now


def worker_init(threads: int, parent_pid: int) -> None:
    """Shares the cores between workers and ends the worker if the server dies (kill -9), so no
    orphan keeps training or holding memory; a half-saved run is impossible (saves are atomic)."""
    os.environ.setdefault("NCF_THREADS", str(threads))  # read by ncf.device.configure_threads
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch_parent, name="ncf-parent-watch", daemon=True).start()


def error_message(exc: BaseException) -> str:
    if isinstance(exc, NCFError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"Cannot write to disk: {exc.strerror}{where}. Free some space or make the models folder writable."
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return f"Out of memory: {exc or 'the job needed more memory than is free'}. Try a smaller batch size or model."
    return f"{type(exc).__name__}: {exc}"


def run_job(job_dir: str, cfg_dict: dict, name: str, models_dir: str, resume: str | None = None) -> dict:
    """Trains one job and saves its run. Never raises: the outcome is written to job.json and
    returned (an exception would have to be pickled back, and a failure must stay this job's)."""
    jdir = Path(job_dir)
    stop = StopFile(jdir / "stop", poll=0.1)
    if stop.is_set():  # stopped while it waited for a worker
        return update_job(jdir, state="stopped", finished=utc_now())
    update_job(jdir, state="running", started=utc_now(), worker_pid=os.getpid())
    events_file = open(jdir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in finally

    def on_event(event: ev.TrainEvent) -> None:
        events_file.write(json.dumps(event.to_dict(), default=float) + "\n")
        events_file.flush()

    try:
        cfg = RunConfig.from_dict(cfg_dict)
        cfg.model.validate()
        cfg.train.validate()
        from ncf.runs import load_run, save_run
        from ncf.train import train

        model = None
        if resume is not None:
            on_event(ev.Job(f"Loading run {resume}"))
            run = load_run(resume, models_dir=Path(models_dir))
            split, model = run.split(), run.model_copy()
            cfg = cfg.replace(model=run.config.model, data=run.config.data)  # the weights decide these
        else:
            on_event(ev.Job(f"Loading {cfg.data.source}"))
            split = load_split(cfg.data, cfg.model.resolved_objective,
                               on_stage=lambda stage: on_event(ev.Job(f"Loading {cfg.data.source}: {stage}")))
        result = train(cfg, split, on_event=on_event, stop=stop, model=model)
        run = save_run(result, cfg, split, name=name or cfg.name, models_dir=Path(models_dir))
        state = "stopped" if result.stopped else "done"
        return update_job(jdir, state=state, run_id=run.id, finished=utc_now(), metrics=dict(result.metrics))
    except BaseException as exc:  # noqa: BLE001 - recorded as this job's failure; the worker lives on
        (jdir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return update_job(jdir, state="failed", error=error_message(exc), finished=utc_now())
    finally:
        events_file.close()
