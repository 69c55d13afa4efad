"""The vectorised trainer: every interaction lives in a tensor on the device, each epoch draws its
negatives with a few tensor ops and shuffles with one permutation, and batches are slices.

It reports through typed events (ncf.events) to whoever listens, checks a stop flag at every
batch, and never imports anything of the app. Where the time goes and what it does about it (see
benchmarks/results_engine.md): embedding gradients by one `index_add_` (ncf.models.Embedding), fused
Adam, no concatenations in the towers; for tables far larger than a batch, row-wise Adam(W) that
updates only the batch's rows (ncf.rowwise), so a step's cost does not grow with the catalogue.

The package, by concern: fitter.py (sampling, the step, optimisers), stages.py (the stage loop,
pre-training, best epoch on validation), direct.py (models fitted by their own `fit`),
lr_finder.py (lr_find), cuda_graph.py (a step replayed as a CUDA graph). `train` below is the one entry point for every model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ncf import distributed, registry
from ncf.config import RunConfig, TrainConfig
from ncf.data import Split
from ncf.data.features import for_split as feature_tables
from ncf.device import configure_threads, pick_device
from ncf.errors import ConfigError
from ncf.evaluate import evaluate
from ncf.events import Done, TrainEvent
from ncf.models import Recommender, build_model
from ncf.train.direct import fit_direct
from ncf.train.fitter import Fitter, one_cycle_lr, resolve_train_config
from ncf.train.lr_finder import LRFinderResult, lr_find
from ncf.train.stages import (
    PRETRAIN_STAGE_EPOCHS,
    PRETRAINED_NEUMF_LR,
    PRETRAINED_NEUMF_OPTIMIZER,
    Stage,
    pretrain_pipeline,
)

__all__ = [
    "PRETRAIN_STAGE_EPOCHS",
    "PRETRAINED_NEUMF_LR",
    "PRETRAINED_NEUMF_OPTIMIZER",
    "Fitter",
    "LRFinderResult",
    "TrainResult",
    "lr_find",
    "one_cycle_lr",
    "resolve_train_config",
    "train",
]


@dataclass
class TrainResult:
    model: Recommender
    history: list[dict]
    metrics: dict
    epochs: int  # epochs completed (of the final stage when pre-training)
    train_seconds: float
    samples_per_second: float
    stopped: bool
    device: str
    train_config: TrainConfig | None = None  # the resolved settings actually used
    best_epoch: int | None = None  # with a validation hold-out: the epoch kept (0: as initialised)



def train(cfg: RunConfig, split: Split, *, on_event: Callable[[TrainEvent], None] | None = None, stop=None,
          model: Recommender | None = None) -> TrainResult:
    """Fits `cfg.model` on `split` (or continues `model`), emitting typed events (ncf.events) to
    `on_event`; the result's `history` holds them as JSON objects, as a run saves them.

    `cfg.model.pretrain` runs He et al.'s pipeline in one call: GMF, then MLP, then NeuMF
    initialised from both and fine-tuned (see PRETRAINED_NEUMF_OPTIMIZER). A set `stop` event ends the run within
    a batch; the model trained so far is returned with `stopped=True`.
    """
    cfg.model.validate()
    model_cfg, features = feature_tables(cfg.model, split)  # side features: names resolved, tables built
    cfg = cfg.replace(model=model_cfg)
    tcfg = resolve_train_config(cfg, split)
    device = pick_device(tcfg.device)
    if device.type == "cpu":
        configure_threads()
    torch.manual_seed(tcfg.seed)  # model initialisation and dropout; sampling has its own generator
    history: list[dict] = []
    ctx = distributed.current()
    if not ctx.is_main:  # a job of many: rank 0 alone reports
        on_event = None

    def emit(event: TrainEvent) -> None:
        history.append(event.to_dict())
        if on_event is not None:
            on_event(event)

    clock = time.perf_counter()
    fit_seconds = 0.0
    stages: list[Stage] = []
    stopped = False
    if not registry.get(cfg.model.model).gradient:
        if model is not None:
            raise ConfigError(f"{registry.get(cfg.model.model).label} is fitted in one go, not epoch by epoch, "
                              f"so a run of it cannot be continued; train a new run instead.")
        result_model = build_model(cfg.model, split.n_users, split.n_items, features).to(device)
        stopped, metrics, epochs, fit_seconds = fit_direct(result_model, split, tcfg, emit, stop, clock, device)
    elif cfg.model.pretrain and cfg.model.model == "neumf" and model is None:
        result_model, stopped = pretrain_pipeline(cfg, split, tcfg, device, emit, stop, clock, stages)
    else:
        result_model = model if model is not None else build_model(cfg.model, split.n_users, split.n_items, features)
        fitter = Fitter(result_model, split, tcfg, device)
        # A model trained before (continued for more epochs) competes as it was.
        stage = Stage(fitter, split, tcfg, cfg.model.model, emit, stop, clock, start_is_candidate=model is not None)
        stages.append(stage)
        try:
            stopped = stage.run()
        finally:
            fitter.finish()
    if stages:
        last = stages[-1]
        if ctx.is_main and (not last.metrics or (stopped and not last.metrics_current)):
            # Quick metrics of what was kept: sampled only where the split has them, to end promptly.
            # (A stop that lands during an epoch's evaluation keeps those metrics: evaluating the
            # same weights twice would double the time to stop.)
            last.metrics = evaluate(result_model, split, k=tcfg.k, full=split.test_negatives is None)
        # A stopped run keeps what it had when stopped, not its best epoch: report no kept epoch then.
        metrics, epochs, best_epoch = last.metrics, last.epochs_done, None if stopped else last.best_epoch
        # A job of many: the samples of all ranks, over the slowest rank's time.
        train_seconds = distributed.total(sum(s.train_seconds for s in stages), device, op="max")
        samples = int(distributed.total(sum(s.samples for s in stages), device))
    else:
        train_seconds, samples, best_epoch = fit_seconds, 0, None
    result_model.eval()
    rate = samples / train_seconds if train_seconds > 0 else 0.0
    emit(Done(metrics=metrics, stopped=stopped, epochs=epochs, best_epoch=best_epoch, train_seconds=train_seconds,
              samples_per_second=rate, elapsed=time.perf_counter() - clock))
    return TrainResult(model=result_model, history=history, metrics=metrics, epochs=epochs,
                       train_seconds=train_seconds, samples_per_second=rate, stopped=stopped,
                       device=str(device), train_config=tcfg, best_epoch=best_epoch)
