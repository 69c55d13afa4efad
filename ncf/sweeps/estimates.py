"""How long a sweep will take: samples per run, and the wall-clock rates measured on earlier jobs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from ncf import events
from ncf.config import TRAIN_DEFAULTS, RunConfig, default_batch_size
from ncf.errors import NCFError
from ncf.sweeps.grids import Point


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
