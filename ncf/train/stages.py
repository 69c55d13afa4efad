"""The stage loop: the epochs of one model (one stage of a pipeline) with their events, a stop flag
checked at every batch, and the weights of the best validation epoch kept; and He et al.'s
pre-training pipeline (GMF -> MLP -> NeuMF initialised from both, fine-tuned) built from stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ncf import distributed
from ncf.config import RunConfig, TrainConfig
from ncf.data import Split
from ncf.evaluate import evaluate, evaluate_validation
from ncf.events import Batch, Epoch, Start, TrainEvent, eta_seconds
from ncf.models import GMF, MLP, Recommender, build_model, neumf_from_pretrained
from ncf.train.fitter import Fitter, one_cycle_lr

# A batch event (the live loss curve) every BATCH_EVENT_SECONDS, and at least BATCH_EVENTS_PER_EPOCH
# times an epoch: a short epoch (synthetic data: a quarter of a second) still draws a curve.
BATCH_EVENT_SECONDS = 0.3
BATCH_EVENTS_PER_EPOCH = 8

# Pre-training (GMF -> MLP -> NeuMF): epochs of each stage when the configuration leaves epochs unset,
# where each stage ranked a validation hold-out of ML-1M best (benchmarks/results_engine.md).
PRETRAIN_STAGE_EPOCHS = {"gmf": 8, "mlp": 10, "neumf": 3}
# Fine-tuning the initialised NeuMF, as He et al.: plain SGD at a gentle constant rate, so the two halves
# do not co-adapt and lose the ensemble initialisation built (rates compared in benchmarks/results_engine.md).
# A configuration that names an optimizer gets that one at its own rate (e.g. `--optimizer adam --lr 1e-5`).
PRETRAINED_NEUMF_OPTIMIZER = "sgd"
PRETRAINED_NEUMF_LR = 0.001


def _is_set(stop) -> bool:
    return stop is not None and stop.is_set()


class Stage:
    """Runs the epochs of one model (one stage of a pipeline), emitting events."""

    def __init__(self, fitter: Fitter, split: Split, tcfg: TrainConfig, stage: str, emit: Callable[[TrainEvent], None],
                 stop, clock_start: float, start_is_candidate: bool = False):
        self.fitter, self.split, self.tcfg, self.stage = fitter, split, tcfg, stage
        self.emit, self.stop, self.clock_start = emit, stop, clock_start
        # With a validation hold-out, the weights of the epoch that ranks it best (by sampled HR@k) are
        # kept, and restored when training ends; `start_is_candidate` lets the untrained start compete
        # (a pre-trained NeuMF that fine-tuning makes worse).
        self.start_is_candidate = start_is_candidate
        self.best_epoch: int | None = None
        self._best: tuple[float, dict] | None = None
        self.train_seconds = 0.0
        self.samples = 0
        self.epochs_done = 0
        self.eval_seconds: list[float] = []
        self.metrics: dict = {}
        self.metrics_current = False  # no step since `metrics` were computed: a stop need not evaluate again

    def run(self) -> bool:
        """Trains all epochs; returns True when stopped early."""
        f, t = self.fitter, self.tcfg
        steps = f.steps_per_epoch(t.batch_size)
        total_steps = steps * t.epochs
        start_metrics = None
        if self.start_is_candidate and self.split.has_validation and f.dist.is_main:
            with f.evaluating() as model:
                start_metrics = evaluate_validation(model, self.split, k=t.k)
            self._consider(0, start_metrics)
        self.emit(Start(device=str(f.device), n_train=len(f.users), steps_per_epoch=steps, epochs=t.epochs,
                        stage=self.stage, batch_size=t.batch_size, lr=f.lr, optimizer=f.optimizer_name,
                        sparse_embeddings=f.sparse, row_wise_embeddings=f.rowwise, start_metrics=start_metrics))
        epochs = f.epochs(t.epochs, t.batch_size)
        try:
            return self._run(epochs, steps, total_steps)
        finally:
            epochs.close()  # a stop mid-way: an epoch being drawn ahead is dropped

    def _run(self, epochs, steps: int, total_steps: int) -> bool:
        f, t = self.fitter, self.tcfg
        last_event = time.perf_counter()
        event_every = max(1, steps // BATCH_EVENTS_PER_EPOCH)
        f.model.train()
        for epoch in range(1, t.epochs + 1):
            epoch_start = time.perf_counter()
            batches = None  # the last epoch's data goes before the next is handed over
            batches = next(epochs)
            loss_sum = torch.zeros((), device=f.device)
            n_seen = 0
            for step in range(steps):
                if self._stop_now(step):
                    self._account(epoch_start, n_seen)
                    return True
                if t.one_cycle:
                    f.set_schedule(*one_cycle_lr((epoch - 1) * steps + step, total_steps, f.lr))
                users, items, target, context = next(batches)
                loss = f.step(users, items, target, context)
                self.metrics_current = False
                n_batch = len(users)
                loss_sum += loss * n_batch
                n_seen += n_batch
                now = time.perf_counter()
                if now - last_event >= BATCH_EVENT_SECONDS or (step + 1) % event_every == 0:
                    last_event = now
                    rate = (self.samples + n_seen) / max(1e-9, self.train_seconds + now - epoch_start)
                    done = (epoch - 1) * steps + step + 1
                    self.emit(Batch(epoch=epoch, step=step + 1, steps=steps, epochs=t.epochs,
                                    loss=float(loss), samples_per_second=rate * f.dist.world_size,
                                    elapsed=now - self.clock_start, eta=self._eta(done, total_steps, rate, epoch),
                                    stage=self.stage))
            self._account(epoch_start, n_seen)
            self.epochs_done = epoch
            final = epoch == t.epochs
            metrics: dict = {}
            if final or epoch % t.eval_every == 0:
                metrics = self._evaluate(final)
                self._consider(epoch, metrics)
                distributed.barrier()  # a job of many: the other ranks wait while rank 0 evaluates
            rate = self.samples / max(1e-9, self.train_seconds)
            now = time.perf_counter()
            self.emit(Epoch(epoch=epoch, epochs=t.epochs, train_loss=float(loss_sum) / max(1, n_seen),
                            metrics=metrics, elapsed=now - self.clock_start,
                            eta=self._eta(epoch * steps, total_steps, rate, epoch),
                            samples_per_second=rate * f.dist.world_size,  # a job of many: every rank's samples
                            stage=self.stage))
        self._restore_best()
        distributed.broadcast_weights(f.model)  # only rank 0 knows the best epoch; it restored it alone
        return False

    def _stop_now(self, step: int) -> bool:
        """The stop flag; in a job of many, agreed by all ranks every STOP_SYNC_STEPS steps, so that
        all stop at the same step (a rank that stopped alone would leave the others at an all-reduce)."""
        if not self.fitter.dist.active:
            return _is_set(self.stop)
        return step % distributed.STOP_SYNC_STEPS == 0 and distributed.any_set(_is_set(self.stop), self.fitter.device)

    def _consider(self, epoch: int, metrics: dict) -> None:
        """Keeps a copy of the weights when `epoch` ranks the validation items best so far."""
        score = metrics.get(f"val_hr@{self.tcfg.k}")
        if score is None or (self._best is not None and score <= self._best[0]):
            return
        state = {name: value.detach().clone() for name, value in self.fitter.model.state_dict().items()}
        self._best = (score, state)
        self.best_epoch = epoch

    def _restore_best(self) -> None:
        """At the end of a completed stage: back to the best validation epoch, if it was not the last."""
        if self._best is None or self.best_epoch == self.epochs_done:
            return
        self.fitter.model.load_state_dict(self._best[1])
        self._evaluate(final=True)

    def _account(self, epoch_start: float, n_seen: int) -> None:
        self.train_seconds += time.perf_counter() - epoch_start
        self.samples += n_seen

    def _evaluate(self, final: bool) -> dict:
        """Per-epoch: the fast sampled metrics where the split has them; full ranking at the end.
        In a job of many, rank 0 alone evaluates (the weights are the same on every rank)."""
        if not self.fitter.dist.is_main:
            return {}
        start = time.perf_counter()
        full = final or self.split.test_negatives is None
        with self.fitter.evaluating() as model:
            self.metrics = evaluate(model, self.split, k=self.tcfg.k, full=full)
            self.metrics.update(evaluate_validation(model, self.split, k=self.tcfg.k))
        self.eval_seconds.append(time.perf_counter() - start)
        self.metrics_current = True
        return self.metrics

    def _eta(self, steps_done: int, total_steps: int, rate: float, epoch: int) -> float:
        samples_left = (total_steps - steps_done) * self.tcfg.batch_size
        evals_left = max(0, self.tcfg.epochs - epoch) / self.tcfg.eval_every
        return eta_seconds(samples_left, rate, evals_left, self.eval_seconds[-1] if self.eval_seconds else 0.0)


def _stage_model(cfg: RunConfig, name: str, split: Split) -> Recommender:
    return build_model(cfg.model.replace(model=name, pretrain=False), split.n_users, split.n_items)


def pretrain_pipeline(cfg: RunConfig, split: Split, tcfg: TrainConfig, device, emit, stop, clock,
                       stages: list[Stage]) -> tuple[Recommender, bool]:
    """GMF -> MLP -> NeuMF(initialised from both) -> fine-tuning. Stopping in any stage still
    returns a NeuMF: built from whatever the earlier stages had learnt by then."""
    trained: dict[str, Recommender] = {}

    def stage_config(name: str) -> TrainConfig:
        return tcfg if cfg.train.epochs is not None else tcfg.replace(epochs=PRETRAIN_STAGE_EPOCHS[name])

    for name in ("gmf", "mlp"):
        # Each stage starts from the seed, as if run on its own: the pipeline's GMF and MLP are exactly
        # `--model gmf` and `--model mlp` with the same settings.
        torch.manual_seed(tcfg.seed)
        model = _stage_model(cfg, name, split)
        stage_cfg = stage_config(name)
        fitter = Fitter(model, split, stage_cfg, device)
        stage = Stage(fitter, split, stage_cfg, name, emit, stop, clock)
        stages.append(stage)
        try:
            stopped = stage.run()
        finally:
            trained[name] = fitter.finish()
        if stopped:
            gmf = trained.get("gmf") or _stage_model(cfg, "gmf", split)
            mlp = trained.get("mlp") or _stage_model(cfg, "mlp", split).to(device)
            return neumf_from_pretrained(gmf.to(device), mlp.to(device), cfg.model), True
    gmf, mlp = trained["gmf"], trained["mlp"]
    assert isinstance(gmf, GMF) and isinstance(mlp, MLP)
    neumf = neumf_from_pretrained(gmf, mlp, cfg.model)
    final_cfg = stage_config("neumf").replace(one_cycle=False)  # a constant small rate keeps what was learnt
    if cfg.train.optimizer is not None:
        optimizer, lr = tcfg.optimizer, tcfg.lr
    else:
        optimizer, lr = PRETRAINED_NEUMF_OPTIMIZER, PRETRAINED_NEUMF_LR
        if cfg.train.weight_decay is None:
            # The recipe's decay is AdamW's decoupled one; under SGD it becomes an L2 penalty that would
            # shrink every weight by lr * 0.1 = 0.5% a step and undo the pre-training in a few hundred steps.
            final_cfg = final_cfg.replace(weight_decay=0.0)
    fitter = Fitter(neumf, split, final_cfg, device, optimizer=optimizer, lr=lr)
    stage = Stage(fitter, split, final_cfg, "neumf", emit, stop, clock, start_is_candidate=True)
    stages.append(stage)
    try:
        stopped = stage.run()
    finally:
        fitter.finish()
    return neumf, stopped
