"""The vectorised trainer: every interaction lives in a tensor on the device, each epoch draws its
negatives with a few tensor ops and shuffles with one permutation, and batches are slices.

It reports through typed events (ncf.events) to whoever listens, checks a stop flag at every
batch, and never imports anything of the app. Where the time goes and what it does about it (see
benchmarks/results_engine.md): embedding gradients by one `index_add_` (ncf.models.Embedding), fused
Adam, no concatenations in the towers; for tables far larger than a batch, row-wise Adam(W) that
updates only the batch's rows (ncf.rowwise), so a step's cost does not grow with the catalogue.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ncf import distributed, registry
from ncf.config import TRAIN_DEFAULTS, RunConfig, TrainConfig, default_batch_size
from ncf.cuda_graph import CapturedStep
from ncf.data import Split
from ncf.data.features import for_split as feature_tables
from ncf.data.features import train_context
from ncf.device import configure_threads, pick_device
from ncf.errors import ConfigError
from ncf.evaluate import evaluate, evaluate_validation
from ncf.events import Batch, Done, Epoch, Start, TrainEvent, eta_seconds
from ncf.memory import check_training_fits
from ncf.models import GMF, MLP, Recommender, build_model, neumf_from_pretrained
from ncf.rowwise import RowAdamW, RowGrad

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
# Negatives checked against the training positives this many at a time (bounds the int64 keys).
NEGATIVE_CHUNK = 1 << 23
# Largest user x item grid kept as a dense "seen" mask for excluding positives from negatives (128 MB).
SEEN_MASK_MAX_CELLS = 1 << 27
# Embedding rows per batch sample above which sparse gradients beat a dense fused update on the CPU.
SPARSE_ROWS_PER_SAMPLE = 32
# Embedding rows per batch sample above which the CPU uses row-wise AdamW (ncf.rowwise): a dense step's
# cost grows with the rows, a row-wise one's does not, and below this they are level (measured in
# benchmarks/results_engine.md, "large data on one machine").
ROWWISE_ROWS_PER_SAMPLE = 16


def resolve_train_config(cfg: RunConfig, split: Split | None = None) -> TrainConfig:
    """The training settings with every `None` replaced by the default for this model's objective.

    Given the split, a default batch size shrinks (by powers of two, not below 256) until an epoch
    has at least MIN_STEPS_PER_EPOCH steps: a small dataset needs more, smaller steps, a large one
    keeps the fast large batches."""
    objective = cfg.model.resolved_objective
    defaults = dict(TRAIN_DEFAULTS[objective])
    t = cfg.train
    if t.batch_size is None and split is not None:
        defaults["batch_size"] = default_batch_size(objective, split.n_train, t.n_negatives)
    return t.replace(**{name: (value if (value := getattr(t, name)) is not None else defaults[name])
                        for name in defaults}).validate()


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


@dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # smoothed (exponential moving average, debiased), as fastai plots them
    suggestion: float
    raw_losses: list[float] = field(default_factory=list)


class _Stopped(Exception):
    """Internal: the stop flag was set; unwinds to `train`, which keeps the model trained so far."""


def one_cycle_lr(step: int, total: int, max_lr: float, pct_start: float = 0.25, div: float = 25.0,
                 div_final: float = 1e5) -> tuple[float, float]:
    """fastai's fit_one_cycle: (learning rate, Adam beta1) at `step` of `total`. The rate rises on a
    cosine from max_lr/div to max_lr over the first pct_start, then falls to max_lr/div_final, while
    beta1 (momentum) moves the opposite way between 0.95 and 0.85."""
    def cos(a: float, b: float, pct: float) -> float:
        return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))

    warm = max(1, int(total * pct_start))
    if step < warm:
        pct = step / warm
        return cos(max_lr / div, max_lr, pct), cos(0.95, 0.85, pct)
    pct = (step - warm) / max(1, total - warm)
    return cos(max_lr, max_lr / div_final, pct), cos(0.85, 0.95, pct)


class Fitter:
    """One model, one split, one optimiser set-up: draws epochs and takes steps. `train` and the
    throughput benchmark both drive it, so the benchmark measures exactly the trainer's loop."""

    def __init__(self, model: Recommender, split: Split, tcfg: TrainConfig, device: torch.device,
                 optimizer: str | None = None, lr: float | None = None):
        self.model = model.to(device)
        self.device = device
        self.tcfg = tcfg
        self.explicit = model.explicit
        self.n_items = model.n_items
        # int32 indices where they fit: an epoch's users and items take half the memory (and the same
        # random draws: torch draws int32 and int64 alike from one generator).
        index = torch.int32 if max(model.n_users, model.n_items) < 2**31 else torch.long
        self.users = torch.as_tensor(split.train_user, device=device).to(index)
        self.items = torch.as_tensor(split.train_item, device=device).to(index)
        # Time features (EmbeddingNN): each training interaction's (hour, weekday, time) context; an epoch
        # sample carries the row of its positive (a negative shares its positive's moment), and a batch
        # gathers its contexts by those rows. Without timestamps in the split (a saved run's), the model
        # falls back to each user's last training time.
        self.context = None
        self.epoch_rows: torch.Tensor | None = None
        if getattr(model, "time_features", None) is not None and (ctx := train_context(split)) is not None:
            self.context = torch.as_tensor(ctx, device=device)  # (n_train, 3)
        if self.explicit:
            if split.train_rating is None:
                raise ConfigError("The explicit objective fits ratings, but this dataset has none (implicit "
                                  "feedback); choose the implicit objective.")
            self.ratings = torch.as_tensor(split.train_rating, dtype=torch.float32, device=device)
        if device.type == "cpu":  # refused up front rather than killed by the OOM killer mid-epoch
            n_emb = sum(e.weight.numel() for e in model.embeddings())
            check_training_fits(len(split.train_user), 0 if self.explicit else tcfg.n_negatives,
                                sum(p.numel() for p in model.parameters()), n_emb, self._large_tables(model, tcfg))
        # A job on many processes (ncf.distributed): each rank draws its own negatives and batches from its
        # own seed, and takes its share of the positives through a permutation every rank draws alike.
        self.dist = distributed.current()
        seed = tcfg.seed + 7919 * (self.dist.rank + 1) if self.dist.active else tcfg.seed
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.shard_generator = torch.Generator(device=device).manual_seed(tcfg.seed) if self.dist.active else None
        self.seen_keys = None  # sorted user * n_items + item keys, for large catalogues
        self.seen_mask = None  # (n_users * n_items,) bool, where it fits: one gather instead of a binary search
        if tcfg.exclude_seen and not self.explicit:
            keys = self.users.long() * self.n_items + self.items
            if model.n_users * self.n_items <= SEEN_MASK_MAX_CELLS:
                self.seen_mask = torch.zeros(model.n_users * self.n_items, dtype=torch.bool, device=device)
                self.seen_mask[keys] = True
            else:
                self.seen_keys = torch.unique(keys)
        self.optimizer_name = optimizer or tcfg.optimizer
        self.lr = lr if lr is not None else tcfg.lr
        # DDP all-reduces dense gradients: a job of many takes the plain dense optimizer path.
        # Per-example L2 looks each row up a second time, which would split RowAdamW's grouped tables
        # (they share one set of unique rows): that path keeps the dense update, always correct.
        self.rowwise = self._use_rowwise() and not self.dist.active and not tcfg.example_l2
        self.sparse = not self.rowwise and self._use_sparse() and not self.dist.active
        self._attach_tables()
        # A CUDA graph needs capturable optimizers (step count and rate on the device) and a constant
        # beta1, so one-cycle runs (which move beta1 every step) stay eager.
        self.graphed = (device.type == "cuda" and tcfg.cuda_graph is not False and not tcfg.one_cycle
                        and not self.sparse and not self.rowwise and self.optimizer_name in ("adam", "adamw")
                        and not self.dist.active and self.context is None)
        self.optimizers = self._make_optimizers()
        self.net = distributed.wrap(model, device)  # what a step calls: DDP in a job of many, else the model
        self.amp = device.type == "cuda" and tcfg.mixed_precision
        self.captured = CapturedStep(self, tcfg.batch_size) if self.graphed else None
        if self.graphed:
            for emb in model.embeddings():  # index_add_ backward: no host sync, so it can be captured
                emb.index_add_backward = True

    # -- optimisers -------------------------------------------------------------------------------
    def _use_rowwise(self) -> bool:
        """Row-wise AdamW (ncf.rowwise) for large tables on the CPU: a step then costs what the batch
        touches, whatever the catalogue's size, with the recipe's decay applied lazily. Small tables
        (ML-1M) keep the fused dense step, which is faster while a batch touches a good share of the
        rows; on a GPU the tables are small against the device and the fused dense step stays."""
        if self.device.type != "cpu" or self.optimizer_name not in ("adam", "adamw"):
            return False
        return self._large_tables(self.model, self.tcfg)

    @staticmethod
    def _large_tables(model: Recommender, tcfg: TrainConfig) -> bool:
        rows = sum(e.num_embeddings for e in model.embeddings())
        return rows > ROWWISE_ROWS_PER_SAMPLE * tcfg.batch_size

    def _attach_tables(self) -> None:
        if not hasattr(self, "_sinks"):
            self._sinks = {id(e): RowGrad() for e in self.model.embeddings()}
        for emb in self.model.embeddings():
            emb.sparse = self.sparse
            emb.row_sink = self._sinks[id(emb)] if self.rowwise else None

    def _use_sparse(self) -> bool:
        """Sparse embedding gradients (only touched rows updated, "lazy" Adam) pay off only when the
        tables are much larger than a batch: below that, coalescing the sparse gradient costs more
        than a fused dense update of every row (benchmarks/results_engine.md). Weight decay
        must shrink every row at every step, which a sparse update cannot do honestly, so any weight
        decay keeps the embeddings dense."""
        if self.device.type != "cpu" or self.tcfg.weight_decay or not self.model.embeddings():
            return False
        rows = sum(e.num_embeddings for e in self.model.embeddings())
        return rows > SPARSE_ROWS_PER_SAMPLE * self.tcfg.batch_size

    def _make_optimizers(self) -> list[torch.optim.Optimizer]:
        name, lr, wd = self.optimizer_name, self.lr, self.tcfg.weight_decay
        emb_params = [p for e in self.model.embeddings() for p in e.parameters()]
        emb_ids = {id(p) for p in emb_params}
        dense_params = [p for p in self.model.parameters() if id(p) not in emb_ids]
        if not emb_params and not dense_params:
            return []
        if self.rowwise:
            betas = {"betas": tuple(self.tcfg.betas)} if self.tcfg.betas else {}
            groups: list[torch.optim.Optimizer] = [RowAdamW(self._table_groups(), lr=lr, weight_decay=wd,
                                                            decoupled=name == "adamw", **betas)]
            if dense_params:
                groups.append(self._dense_optimizer(name, dense_params, lr, wd, self.tcfg.betas))
            return groups
        if not self.sparse:
            return [self._dense_optimizer(name, list(self.model.parameters()), lr, wd, self.tcfg.betas,
                                          capturable=self.graphed)]
        groups = []
        if name in ("adam", "adamw"):
            # "Lazy" Adam for the tables: moments of a row move only when the row is in the batch.
            groups.append(torch.optim.SparseAdam(emb_params, lr=lr))
        elif name == "sgd":
            groups.append(torch.optim.SGD(emb_params, lr=lr))
        else:
            groups.append(torch.optim.Adagrad(emb_params, lr=lr))
        if dense_params:
            groups.append(self._dense_optimizer(name, dense_params, lr, wd, self.tcfg.betas))
        return groups

    def _table_groups(self) -> list[list[tuple[torch.Tensor, RowGrad]]]:
        """The tables RowAdamW may keep side by side: each model's user tables (all looked up with the
        same user tensor), and its item tables; any other table (biases) alone."""
        sides = list(zip(*self.model.embedding_tables().values(), strict=True))
        grouped = {id(e) for side in sides for e in side}
        groups = [list(side) for side in sides] + [[e] for e in self.model.embeddings() if id(e) not in grouped]
        return [[(e.weight, self._sinks[id(e)]) for e in group] for group in groups]

    def _row_optimizer(self) -> RowAdamW | None:
        return next((opt for opt in self.optimizers if isinstance(opt, RowAdamW)), None)

    @staticmethod
    def _dense_optimizer(name: str, params, lr: float, wd: float, betas=None,
                         capturable: bool = False) -> torch.optim.Optimizer:
        # The fused kernels update every tensor in one pass (benchmarks/results_engine.md).
        adam_kw = {"betas": tuple(betas)} if betas else {}
        if capturable:  # only adam/adamw (see Fitter.graphed)
            adam_kw["capturable"] = True
            lr = torch.tensor(lr, device=params[0].device)  # replays read the rate here, set_schedule fills it
        if name == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd, fused=True, **adam_kw)
        if name == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True, **adam_kw)
        if name == "sgd":
            return torch.optim.SGD(params, lr=lr, weight_decay=wd)
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)

    def set_schedule(self, lr: float, beta1: float | None = None) -> None:
        for opt in self.optimizers:
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):  # a captured step reads its rate on the device
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr
                if beta1 is not None and "betas" in group:
                    group["betas"] = (beta1, group["betas"][1])

    def finish(self) -> Recommender:
        """Back to dense embeddings, so the model behaves ordinarily for evaluation, saving and fold-in;
        row-wise tables first receive the decay and momentum steps they are owed."""
        if (opt := self._row_optimizer()) is not None:
            opt.flush()
            opt.release()
        for emb in self.model.embeddings():
            emb.sparse = False
            emb.row_sink = None
        return self.model

    @contextlib.contextmanager
    def evaluating(self):
        """The model, dense and in eval mode, for a look between steps; training resumes as it was after."""
        self.finish()
        try:
            yield self.model
        finally:
            self._attach_tables()
            if (opt := self._row_optimizer()) is not None:
                opt.attach()
            self.model.train()

    # -- data -------------------------------------------------------------------------------------
    def draw_negatives(self, n: int, positives: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` uniform negatives for every observed pair (of `positives`' users, all by default): (users,
        items), both (n_pos * n,) of the index dtype. Seen items are found in chunks (int64 keys for all
        negatives at once would be 8 bytes a sample: 0.8 GB at ML-25M's size); the redraws are the same
        draws as done in one piece."""
        users = (self.users if positives is None else positives).repeat(n)
        items = torch.randint(0, self.n_items, (len(users),), generator=self.generator, device=self.device,
                              dtype=users.dtype)
        if self.seen_mask is not None or (self.seen_keys is not None and len(self.seen_keys)):
            redrawn = None  # after the first round only the redrawn pairs can be seen ones
            for _ in range(50):  # each round redraws only the seen ones; few remain after 2-3 rounds
                if redrawn is None:
                    seen = torch.cat([start + self._seen_in(users[start:start + NEGATIVE_CHUNK],
                                                            items[start:start + NEGATIVE_CHUNK])
                                      for start in range(0, len(users), NEGATIVE_CHUNK)])
                else:
                    seen = redrawn[self._seen_in(users[redrawn], items[redrawn])]
                if len(seen) == 0:
                    break
                redrawn = seen
                items[seen] = torch.randint(0, self.n_items, (len(seen),), generator=self.generator,
                                            device=self.device, dtype=items.dtype)
        return users, items

    def _seen_in(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Positions of the (user, item) pairs that are training positives."""
        keys = users.long() * self.n_items + items
        if self.seen_mask is not None:
            return torch.nonzero(self.seen_mask[keys]).squeeze(1)
        # Queries in sorted order: each binary search then lands near the last one, in cache (six times
        # faster, sort included; benchmarks/results_engine.md). Positions come back ascending.
        keys, order = keys.sort()
        pos = torch.searchsorted(self.seen_keys, keys).clamp_(max=len(self.seen_keys) - 1)
        return order[self.seen_keys[pos] == keys].sort().values

    def epoch_data(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One epoch's (users, items, targets), shuffled by one permutation; batches are slices of these.
        Implicit targets are bool (1 byte a sample; `step` makes each batch's floats), and every
        intermediate is freed as soon as it is used: at ML-25M's size an epoch is 124M samples."""
        pos_users, pos_items = self.users, self.items
        ratings = self.ratings if self.explicit else None
        rows = None
        if self.context is not None:
            rows = torch.arange(len(self.users), device=self.device, dtype=pos_users.dtype)
        if self.dist.active:  # this rank's share of the positives, the same size on every rank
            mine = distributed.shard(len(self.users), self.shard_generator, self.device)
            pos_users, pos_items = pos_users[mine], pos_items[mine]
            ratings = ratings[mine] if ratings is not None else None
            rows = rows[mine] if rows is not None else None
        if self.explicit:
            perm = torch.randperm(len(pos_users), generator=self.generator, device=self.device,
                                  dtype=pos_users.dtype)
            self.epoch_rows = rows[perm] if rows is not None else None
            return pos_users[perm], pos_items[perm], ratings[perm]
        n_neg, n_pos = self.tcfg.n_negatives, len(pos_users)
        neg_users, neg_items = self.draw_negatives(n_neg, pos_users) if n_neg else (pos_users[:0], pos_items[:0])
        perm = torch.randperm(n_pos * (1 + n_neg), generator=self.generator, device=self.device,
                              dtype=pos_users.dtype)
        if rows is not None:  # a negative (drawn as positives.repeat(n_neg)) shares its positive's context
            self.epoch_rows = rows.repeat(1 + n_neg)[perm]
        users = torch.cat([pos_users, neg_users])[perm]
        del neg_users
        items = torch.cat([pos_items, neg_items])[perm]
        del neg_items
        return users, items, perm < n_pos

    @property
    def samples_per_epoch(self) -> int:
        n = distributed.local_count(len(self.users)) if self.dist.active else len(self.users)
        return n if self.explicit else n * (1 + self.tcfg.n_negatives)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch; a last batch of a single sample is dropped (BatchNorm cannot train on
        one sample, and one sample's gradient is noise anyway)."""
        n = self.samples_per_epoch
        steps = math.ceil(n / batch_size)
        if steps > 1 and n % batch_size == 1:
            steps -= 1
        return max(1, steps)

    def batch_context(self, batch: slice) -> torch.Tensor | None:
        """(B, 3) time contexts of the epoch's samples `batch` (see __init__); None without time features."""
        if self.context is None or self.epoch_rows is None:
            return None
        return self.context.index_select(0, self.epoch_rows[batch])

    # -- one step ---------------------------------------------------------------------------------
    def step(self, users: torch.Tensor, items: torch.Tensor, target: torch.Tensor,
             context: torch.Tensor | None = None) -> torch.Tensor:
        target = target.float()  # epoch_data keeps implicit targets as bool
        if self.captured is not None and context is None:
            return self.captured(users, items, target)
        return self.eager_step(users, items, target, context)

    def eager_step(self, users: torch.Tensor, items: torch.Tensor, target: torch.Tensor,
                   context: torch.Tensor | None = None) -> torch.Tensor:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        return self.compute_step(users, items, target, context)

    def _forward(self, inputs: tuple) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The outputs (B,), and with per-example L2 each example's squared row norms (B,), else None."""
        if not self.tcfg.example_l2:
            return self.net(*inputs), None
        users, items = inputs[:2]
        if not self.dist.active:  # one look-up serves both
            return self.model.forward_and_sq_norms(users, items)
        # DDP's forward must see the look-ups, so a job of many looks the rows up a second time.
        return self.net(*inputs), self.model.example_sq_norms(users, items)

    def compute_step(self, users: torch.Tensor, items: torch.Tensor, target: torch.Tensor,
                     context: torch.Tensor | None = None) -> torch.Tensor:
        """Forward, loss, backward and update, gradients starting from None (what a CUDA graph records)."""
        inputs = (users, items) if context is None else (users, items, context)
        if self.amp:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out, norms = self._forward(inputs)
                out = out.float()
        else:  # no autocast context at all: at small batches its entry and exit cost is measurable
            out, norms = self._forward(inputs)
        reduction = self.tcfg.loss_reduction
        if self.explicit:
            loss = F.mse_loss(out, target, reduction=reduction)
        else:
            loss = F.binary_cross_entropy_with_logits(out, target, reduction=reduction)
        objective = loss
        if norms is not None:
            penalty = norms.float().sum() if reduction == "sum" else norms.float().mean()
            objective = loss + 0.5 * self.tcfg.example_l2 * penalty
        objective.backward()
        for opt in self.optimizers:
            opt.step()
        # The mean data loss whatever the reduction: the curves of every run are on one scale.
        return loss.detach() / len(users) if reduction == "sum" else loss.detach()


def _is_set(stop) -> bool:
    return stop is not None and stop.is_set()


class _Stage:
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
        last_event = time.perf_counter()
        event_every = max(1, steps // BATCH_EVENTS_PER_EPOCH)
        f.model.train()
        for epoch in range(1, t.epochs + 1):
            epoch_start = time.perf_counter()
            users = items = target = None  # the last epoch's data goes before the next is drawn
            users, items, target = f.epoch_data()
            loss_sum = torch.zeros((), device=f.device)
            n_seen = 0
            for step in range(steps):
                if self._stop_now(step):
                    self._account(epoch_start, n_seen)
                    return True
                if t.one_cycle:
                    f.set_schedule(*one_cycle_lr((epoch - 1) * steps + step, total_steps, f.lr))
                lo = step * t.batch_size
                batch = slice(lo, lo + t.batch_size)
                loss = f.step(users[batch], items[batch], target[batch], f.batch_context(batch))
                self.metrics_current = False
                n_batch = len(users[batch])
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
    stages: list[_Stage] = []
    stopped = False
    if not registry.get(cfg.model.model).gradient:
        if model is not None:
            raise ConfigError(f"{registry.get(cfg.model.model).label} is fitted in one go, not epoch by epoch, "
                              f"so a run of it cannot be continued; train a new run instead.")
        result_model = build_model(cfg.model, split.n_users, split.n_items, features).to(device)
        stopped, metrics, epochs, fit_seconds = _fit_direct(result_model, split, tcfg, emit, stop, clock, device)
    elif cfg.model.pretrain and cfg.model.model == "neumf" and model is None:
        result_model, stopped = _pretrain_pipeline(cfg, split, tcfg, device, emit, stop, clock, stages)
    else:
        result_model = model if model is not None else build_model(cfg.model, split.n_users, split.n_items, features)
        fitter = Fitter(result_model, split, tcfg, device)
        # A model trained before (continued for more epochs) competes as it was.
        stage = _Stage(fitter, split, tcfg, cfg.model.model, emit, stop, clock, start_is_candidate=model is not None)
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


def _fit_direct(model, split: Split, tcfg: TrainConfig, emit, stop, clock: float,
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


def _pretrain_pipeline(cfg: RunConfig, split: Split, tcfg: TrainConfig, device, emit, stop, clock,
                       stages: list[_Stage]) -> tuple[Recommender, bool]:
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
        stage = _Stage(fitter, split, stage_cfg, name, emit, stop, clock)
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
    stage = _Stage(fitter, split, final_cfg, "neumf", emit, stop, clock, start_is_candidate=True)
    stages.append(stage)
    try:
        stopped = stage.run()
    finally:
        fitter.finish()
    return neumf, stopped


def lr_find(cfg: RunConfig, split: Split, start: float = 1e-6, end: float = 1.0, steps: int = 100) -> LRFinderResult:
    """fastai's learning-rate range test: one batch at each of `steps` rates growing geometrically from
    `start` to `end`, on a fresh model; stops once the smoothed loss exceeds 4x its minimum.
    The suggestion is the rate where the smoothed loss falls fastest (fastai's "steep")."""
    if not 0 < start < end:
        raise ConfigError(f"lr_find needs 0 < start < end, got start={start}, end={end}.")
    if steps < 2:
        raise ConfigError(f"lr_find needs at least 2 steps, got {steps}.")
    if not registry.get(cfg.model.model).gradient:
        raise ConfigError(f"{registry.get(cfg.model.model).label} is not fitted by gradient descent, so it has "
                          f"no learning rate to find.")
    tcfg = resolve_train_config(cfg, split).replace(one_cycle=False)
    device = pick_device(tcfg.device)
    if device.type == "cpu":
        configure_threads()
    torch.manual_seed(tcfg.seed)
    model_cfg, features = feature_tables(cfg.model.replace(pretrain=False), split)
    model = build_model(model_cfg, split.n_users, split.n_items, features)
    fitter = Fitter(model, split, tcfg, device)
    lrs, raw, smooth = [], [], []
    avg, best = 0.0, math.inf
    users, items, target = fitter.epoch_data()
    offset = 0
    try:
        for i in range(steps):
            lr = start * (end / start) ** (i / (steps - 1))
            fitter.set_schedule(lr)
            if offset + tcfg.batch_size > len(users):
                users, items, target = fitter.epoch_data()
                offset = 0
            batch = slice(offset, offset + tcfg.batch_size)
            offset += tcfg.batch_size
            loss = float(fitter.step(users[batch], items[batch], target[batch], fitter.batch_context(batch)))
            if not math.isfinite(loss):
                break
            avg = 0.98 * avg + 0.02 * loss
            smoothed = avg / (1 - 0.98 ** (i + 1))
            lrs.append(lr)
            raw.append(loss)
            smooth.append(smoothed)
            best = min(best, smoothed)
            if smoothed > 4 * best:
                break
    finally:
        fitter.finish()
    return LRFinderResult(lrs=lrs, losses=smooth, suggestion=_steepest(lrs, smooth), raw_losses=raw)


def _steepest(lrs: list[float], losses: list[float]) -> float:
    if len(lrs) < 3:
        return lrs[0] if lrs else 1e-3
    upto = losses.index(min(losses)) + 1  # only the descent counts
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(max(1, upto - 1))]
    return lrs[slopes.index(min(slopes))]
