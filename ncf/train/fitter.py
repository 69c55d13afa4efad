"""The Fitter: one model on one split, its epochs drawn as tensors on the device (negatives sampled
with a few tensor ops, one shuffle), its step, and its optimisers (dense AdamW fed the batch's rows,
ncf.tablewise; fused dense Adam(W); sparse gradients; or row-wise AdamW for tables far larger than a
batch, ncf.rowwise). `train`, lr_find and
the throughput benchmarks all drive it, so each measures exactly the trainer's loop.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from ncf import distributed
from ncf.config import TRAIN_DEFAULTS, RunConfig, TrainConfig, default_batch_size
from ncf.data import Split
from ncf.data.features import train_context
from ncf.device import available_cores
from ncf.errors import ConfigError
from ncf.memory import EPOCH_BYTES_PER_SAMPLE, available_bytes, check_training_fits
from ncf.models import Recommender
from ncf.models.base import Embedding
from ncf.rowwise import RowAdamW, RowGrad
from ncf.tablewise import BatchGrad, TableAdamW
from ncf.train.cuda_graph import CapturedStep

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
# Largest epoch drawn whole (and ahead, beside the steps of the one before: two then live at once);
# a larger one is drawn in chunks of about CHUNK_SAMPLES samples (`Fitter.epochs`).
PREFETCH_MAX_BYTES = 1 << 30
CHUNK_SAMPLES = 1 << 23


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


def _submit(pool: ThreadPoolExecutor | None, fn, *args):
    """fn(*args) started on the pool, or None (drawn in line when needed) without a pool or once it is shut
    down: an epoch's batches outlive `Fitter.epochs` when the caller let go of it."""
    if pool is None:
        return None
    try:
        return pool.submit(fn, *args)
    except RuntimeError:
        return None


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
        self.tablewise = not self.rowwise and not self.sparse and self._use_tablewise()
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

    def _use_tablewise(self) -> bool:
        """torch's dense AdamW on the tables without their dense gradients (ncf.tablewise): the same
        numbers, at ML-1M's shape a fifth less time a step; where the C kernel builds, on the CPU, for
        tables that hand their gradient over (ncf.models.base.Embedding)."""
        tables = self.model.embeddings()
        return (self.device.type == "cpu" and self.optimizer_name in ("adam", "adamw") and not self.dist.active
                and bool(tables) and all(isinstance(e, Embedding) for e in tables)
                and TableAdamW.usable(list(self.model.parameters())))

    def _attach_tables(self) -> None:
        if not hasattr(self, "_sinks"):
            sink = RowGrad if self.rowwise else BatchGrad
            self._sinks = {id(e): sink() for e in self.model.embeddings()}
        for emb in self.model.embeddings():
            emb.sparse = self.sparse
            emb.row_sink = self._sinks[id(emb)] if self.rowwise or self.tablewise else None

    def force_table_update(self, rowwise: bool) -> None:
        """Row-wise AdamW (True) or torch's own dense fused step (False) whatever the tables' size: for
        measurements (ncf.scaling) and tests."""
        self.finish()
        self.rowwise, self.tablewise, self.sparse = rowwise, False, False
        del self._sinks
        self._attach_tables()
        self.optimizers = self._make_optimizers()

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
            if dense_params and TableAdamW.usable(dense_params):  # the layers: one C call each, same numbers
                groups.append(TableAdamW([], lr=lr, weight_decay=wd, decoupled=name == "adamw", params=dense_params,
                                         **betas))
            elif dense_params:
                groups.append(self._dense_optimizer(name, dense_params, lr, wd, self.tcfg.betas))
            return groups
        if self.tablewise:
            betas = {"betas": tuple(self.tcfg.betas)} if self.tcfg.betas else {}
            tables = [(e.weight, self._sinks[id(e)]) for e in self.model.embeddings()]
            return [TableAdamW(tables, lr=lr, weight_decay=wd, decoupled=name == "adamw", params=dense_params,
                               **betas)]
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
        users, items, target, self.epoch_rows = self._draw_epoch()
        return users, items, target

    def epochs(self, n: int, batch_size: int) -> Iterator[Iterator[tuple]]:
        """For each of `n` epochs, its batches (users, items, targets, time contexts or None), at most
        `steps_per_epoch` of them to be taken. An epoch small beside the memory is drawn whole, as
        `epoch_data` draws it, and the next one is drawn on a second thread while it trains where a core
        is spare (`spare_core`): the same draws in the same order, so the same run. A larger one (on the
        CPU, one process) is drawn in chunks: one permutation of the positives, then each chunk's
        positives with their negatives, shuffled, the next chunk drawn beside the steps of this one, so
        the drawing leaves the epoch's time and two chunks, not a whole epoch, are held. Close the
        iterator when stopping early (a stop does not wait for a draw ahead)."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="ncf-epoch") if self.spare_core else None
        try:
            if self.chunked:
                for _ in range(n):
                    yield self._chunks(pool, batch_size)
                return
            pending = None
            ahead = pool is not None and self.small_epoch
            for e in range(n):
                drawn = pending.result() if pending is not None else self._draw_epoch()
                pending = _submit(pool, self._draw_epoch) if ahead and e + 1 < n else None
                yield self._batches(*drawn, batch_size)
                del drawn
        finally:  # stopped early: a draw still running ahead finishes on its own and is dropped
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _batches(self, users, items, target, rows, batch_size: int) -> Iterator[tuple]:
        self.epoch_rows = rows
        for lo in range(0, len(users), batch_size):
            batch = slice(lo, lo + batch_size)
            yield users[batch], items[batch], target[batch], self.batch_context(batch)

    def _chunks(self, pool: ThreadPoolExecutor | None, batch_size: int) -> Iterator[tuple]:
        order = torch.randperm(len(self.users), generator=self.generator, device=self.device, dtype=self.users.dtype)
        per_sample = 1 if self.explicit else 1 + self.tcfg.n_negatives
        # whole batches in every chunk but the last, so an epoch has the batches an unchunked one has
        size = max(1, CHUNK_SAMPLES // (per_sample * batch_size)) * batch_size
        chunks = [order[lo:lo + size] for lo in range(0, len(order), size)]
        del order
        pending = None
        for k, chunk in enumerate(chunks):
            drawn = pending.result() if pending is not None else self._draw_epoch(chunk)
            pending = _submit(pool, self._draw_epoch, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield from self._batches(*drawn, batch_size)
            del drawn

    @property
    def small_epoch(self) -> bool:
        """An epoch small beside the memory: at most PREFETCH_MAX_BYTES and a tenth of the memory available
        (ML-1M's is 58 MB, ML-25M's 3 GB), so that two may live at once."""
        need = EPOCH_BYTES_PER_SAMPLE * self.samples_per_epoch
        available = available_bytes()
        return need <= PREFETCH_MAX_BYTES and (available is None or need <= available // 10)

    @property
    def chunked(self) -> bool:
        """Epochs drawn in chunks: larger ones, on the CPU, in a job of one process."""
        return self.device.type == "cpu" and not self.dist.active and not self.small_epoch

    @property
    def spare_core(self) -> bool:
        """A core to draw on beside the steps: this process may use two or more (training takes one
        thread, ncf.device), on the CPU, in a job of one process, unless $NCF_DRAW_AHEAD is 0."""
        return (self.device.type == "cpu" and not self.dist.active and available_cores() >= 2
                and os.environ.get("NCF_DRAW_AHEAD", "1") != "0")

    def _draw_epoch(self, mine: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(users, items, targets, the rows of their time contexts or None) for the positives `mine` (all,
        or this rank's share), with their negatives, shuffled; no side effects, so that it may run on
        another thread while the last epoch (or chunk) trains."""
        pos_users, pos_items = self.users, self.items
        ratings = self.ratings if self.explicit else None
        rows = None
        if self.context is not None:
            rows = torch.arange(len(self.users), device=self.device, dtype=pos_users.dtype)
        if mine is None and self.dist.active:  # this rank's share of the positives, the same size on every rank
            mine = distributed.shard(len(self.users), self.shard_generator, self.device)
        if mine is not None:
            pos_users, pos_items = pos_users[mine], pos_items[mine]
            ratings = ratings[mine] if ratings is not None else None
            rows = rows[mine] if rows is not None else None
        if self.explicit:
            perm = torch.randperm(len(pos_users), generator=self.generator, device=self.device,
                                  dtype=pos_users.dtype)
            return pos_users[perm], pos_items[perm], ratings[perm], rows[perm] if rows is not None else None
        n_neg, n_pos = self.tcfg.n_negatives, len(pos_users)
        neg_users, neg_items = self.draw_negatives(n_neg, pos_users) if n_neg else (pos_users[:0], pos_items[:0])
        perm = torch.randperm(n_pos * (1 + n_neg), generator=self.generator, device=self.device,
                              dtype=pos_users.dtype)
        # a negative (drawn as positives.repeat(n_neg)) shares its positive's context
        epoch_rows = rows.repeat(1 + n_neg)[perm] if rows is not None else None
        users = torch.cat([pos_users, neg_users])[perm]
        del neg_users
        items = torch.cat([pos_items, neg_items])[perm]
        del neg_items
        return users, items, perm < n_pos, epoch_rows

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
