"""Cost per training sample against the size of the embedding tables, measured in one process.

The trainer's step should cost what the batch touches, not what the catalogue holds: these helpers
time `ncf.train.Fitter.step` on the same batches for models of two table sizes, interleaved in
rounds so that a busy machine slows both alike, and report the ratio. `benchmarks/large_data.py`
and the slow test in tests/test_scaling.py use them.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import torch

from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.device import configure_threads
from ncf.models import build_model
from ncf.train import Fitter, resolve_train_config

# Catalogue shapes (users, items) of the MovieLens releases the issue names.
SHAPES = {"ml-1m": (6040, 3706), "ml-20m": (138493, 26744), "ml-25m": (162541, 59047),
          "ml-32m": (200948, 84432)}


def step_fitter(n_users: int, n_items: int, batch_size: int = 4096, *, rowwise: bool | None = None,
                model: str = "neumf", seed: int = 0) -> tuple[Fitter, list[tuple[torch.Tensor, ...]]]:
    """A Fitter for the default recipe (AdamW, wd 0.1) on tables of the given size, and a few batches
    drawn with a long-tailed item popularity (so the unique rows per batch are as in real data).
    `rowwise` forces row-wise AdamW (True) or torch's dense fused step (False) whatever the tables' size."""
    configure_threads()  # as `train` does: the thread count changes costs more than anything measured here
    rng = np.random.default_rng(seed)
    n_pos = 8 * batch_size
    split = SimpleNamespace(train_user=rng.integers(0, n_users, n_pos),
                            train_item=np.minimum(rng.zipf(1.3, n_pos) - 1, n_items - 1) % n_items,
                            train_rating=None)
    cfg = RunConfig(model=ModelConfig(model=model), train=TrainConfig(batch_size=batch_size, exclude_seen=False))
    tcfg = resolve_train_config(cfg).replace(one_cycle=False)
    torch.manual_seed(seed)
    fitter = Fitter(build_model(cfg.model, n_users, n_items), split, tcfg, torch.device("cpu"))
    if rowwise is not None and rowwise != fitter.rowwise:
        fitter.force_table_update(rowwise)
    users, items, target = fitter.epoch_data()
    batches = [(users[s], items[s], target[s])
               for s in (slice(i, i + batch_size) for i in range(0, len(users) - batch_size + 1, batch_size))]
    return fitter, batches


def compare_step_costs(fitters: dict[str, tuple[Fitter, list]], seconds: float = 2.0, rounds: int = 4) -> dict:
    """Median seconds per sample of each fitter's steps over interleaved rounds (one warm-up step each)."""
    for fitter, batches in fitters.values():
        fitter.step(*batches[0])
    costs: dict[str, list[float]] = {name: [] for name in fitters}
    for _ in range(rounds):
        for name, (fitter, batches) in fitters.items():
            n, samples, start = 0, 0, time.perf_counter()
            while True:
                b = batches[n % len(batches)]
                fitter.step(*b)
                n += 1
                samples += len(b[0])
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / rounds and n >= 2:
                    break
            costs[name].append(elapsed / samples)
    return {name: float(np.median(c)) for name, c in costs.items()}
