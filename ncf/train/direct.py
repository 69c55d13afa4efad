"""Models fitted by their own `fit` (ncf.classical), not by the gradient loop, reported through the
same events as the loop."""

from __future__ import annotations

import time

from ncf import distributed
from ncf.config import TrainConfig
from ncf.data import Split
from ncf.evaluate import evaluate, evaluate_validation
from ncf.events import Epoch, Start


def fit_direct(model, split: Split, tcfg: TrainConfig, emit, stop, clock: float,
                device) -> tuple[bool, dict, int, float]:
    """A model fitted by its own `fit` (ncf.classical), with the loop's events: start, one "epoch"
    event per step it reports (its sweep, or the λ tried, described in "info"; no loss), the last
    carrying the metrics. A model fitted before is not continued: its fit starts afresh. Returns
    (stopped, metrics, steps done, seconds fitting)."""
    stage = model.config.model
    total = model.fit_steps
    emit(Start(device=str(device), n_train=split.n_train, steps_per_epoch=1, epochs=total, stage=stage))
    started = time.perf_counter()
    done = {"steps": 0}
    last_info: dict = {}

    def progress(step: int, info: dict) -> None:
        done["steps"] = step
        if step < total:
            emit(Epoch(epoch=step, epochs=total, metrics={}, info=info, elapsed=time.perf_counter() - clock,
                       eta=(time.perf_counter() - started) / step * (total - step), samples_per_second=0.0, stage=stage))
        else:
            last_info.update(info)

    stopped = model.fit(split, tcfg, progress=progress, stop=stop)
    seconds = time.perf_counter() - started
    model.eval()
    metrics: dict = {}
    if distributed.current().is_main:  # in a job of many, rank 0 alone evaluates
        metrics = evaluate(model, split, k=tcfg.k, full=not stopped or split.test_negatives is None)
        metrics.update(evaluate_validation(model, split, k=tcfg.k))  # what a sweep or search may choose on
    if not stopped:
        emit(Epoch(epoch=total, epochs=total, metrics=metrics, info=last_info, elapsed=time.perf_counter() - clock,
                   eta=0.0, samples_per_second=0.0, stage=stage))
    return stopped, metrics, done["steps"], seconds
