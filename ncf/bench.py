"""Training throughput of the trainer's loop against two baselines, measured in one process so that
the ratios hold even when the machine is busy and the absolute figures swing.

Baselines, kept here so anyone can read what is being beaten:
1. `dataloader`: the pattern most public NCF code uses: a per-sample `torch.utils.data.Dataset`
   whose `__getitem__` returns one (user, item, label), a `DataLoader` that collates batches, and
   negatives drawn per positive in a Python loop that rejects items the user has seen.
2. `plain`: a plain vectorised PyTorch loop: the same model with dense embedding gradients, one
   `torch.optim.Adam` over all parameters, BCE-with-logits (MSE for explicit models), negatives
   drawn with one `torch.randint`, batches sliced from a shuffled tensor.
The trainer (`ncf`) is `ncf.train.Fitter`, exactly as `ncf.train.train` drives it.

Each figure counts one epoch's data preparation (negative sampling, shuffling) pro rata, plus the
steps: samples/s = 1 / (prep seconds per sample + step seconds per sample).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ncf import registry
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import Split, leave_one_out, synthetic
from ncf.device import configure_threads, pick_device
from ncf.models import MLP, NeuMF, build_model
from ncf.train import Fitter, resolve_train_config

BATCH_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
MODELS = registry.names(gradient=True)  # the models the training loop fits


def ml1m_sized(seed: int = 0) -> Split:
    """A synthetic dataset with ML-1M's shape (6,040 users, 3,706 items, ~1M interactions), split
    leave-one-out: the benchmark's default, so it runs anywhere without downloads."""
    return leave_one_out(synthetic(n_users=6040, n_items=3706, mean_per_user=165, seed=seed), seed=seed)


class _Loop:
    """A prepared training loop: `prep` seconds per sample of one epoch's data, and `run(n)` timing n steps."""

    def __init__(self, prep: float, step: Callable[[int], None], n_batches: int, batch_size: int):
        self.prep, self.step, self.n_batches, self.batch_size = prep, step, n_batches, batch_size
        self.next = 0

    def run(self, seconds: float) -> float:
        """Steps for about `seconds` (at least 2 steps); returns samples/s with preparation pro rata."""
        done, start = 0, time.perf_counter()
        while True:
            self.step(self.next % self.n_batches)
            self.next += 1
            done += 1
            elapsed = time.perf_counter() - start
            if (elapsed >= seconds and done >= 2) or done >= 100_000:
                return 1.0 / (self.prep + elapsed / (done * self.batch_size))


def ncf_loop(cfg: RunConfig, split: Split, batch_size: int) -> _Loop:
    """The trainer's own loop (`ncf.train.Fitter`)."""
    tcfg = resolve_train_config(cfg).replace(batch_size=batch_size, one_cycle=False)
    torch.manual_seed(0)
    model = build_model(cfg.model, split.n_users, split.n_items)
    fitter = Fitter(model, split, tcfg, pick_device(tcfg.device))
    start = time.perf_counter()
    users, items, target = fitter.epoch_data()
    prep = (time.perf_counter() - start) / len(users)

    def step(i: int) -> None:
        s = slice(i * batch_size, (i + 1) * batch_size)
        fitter.step(users[s], items[s], target[s])

    return _Loop(prep, step, max(1, len(users) // batch_size), batch_size)


def plain_loop(cfg: RunConfig, split: Split, batch_size: int) -> _Loop:
    """Baseline 2, the plain vectorised loop: nn.Embedding look-ups with dense gradients, one Adam."""
    tcfg = resolve_train_config(cfg)
    device = pick_device(tcfg.device)
    torch.manual_seed(0)
    model = stock_embeddings(build_model(cfg.model, split.n_users, split.n_items).to(device))
    explicit = model.explicit
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    g = torch.Generator(device=device).manual_seed(0)
    start = time.perf_counter()
    pos_u = torch.as_tensor(split.train_user, device=device)
    pos_i = torch.as_tensor(split.train_item, device=device)
    if explicit:
        users, items = pos_u, pos_i
        target = torch.as_tensor(split.train_rating, dtype=torch.float32, device=device)
    else:
        n_neg = tcfg.n_negatives
        users = torch.cat([pos_u, pos_u.repeat(n_neg)])
        items = torch.cat([pos_i, torch.randint(0, split.n_items, (len(pos_u) * n_neg,), generator=g, device=device)])
        target = torch.cat([torch.ones(len(pos_u), device=device), torch.zeros(len(pos_u) * n_neg, device=device)])
    perm = torch.randperm(len(users), generator=g, device=device)
    users, items, target = users[perm], items[perm], target[perm]
    prep = (time.perf_counter() - start) / len(users)

    def step(i: int) -> None:
        s = slice(i * batch_size, (i + 1) * batch_size)
        out = plain_forward(model, users[s], items[s])
        loss = F.mse_loss(out, target[s]) if explicit else F.binary_cross_entropy_with_logits(out, target[s])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _Loop(prep, step, max(1, len(users) // batch_size), batch_size)


def stock_embeddings(model: torch.nn.Module) -> torch.nn.Module:
    """The model with torch's own nn.Embedding forward and backward, as plain code has them."""
    for emb in model.embeddings():
        emb.forward = torch.nn.Embedding.forward.__get__(emb)
    return model


def plain_forward(model, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """The models written as plain code writes them: two look-ups per path, concatenations."""
    if isinstance(model, NeuMF):
        gmf = model.gmf_user_emb(users) * model.gmf_item_emb(items)
        mlp = model.mlp.tower(torch.cat([model.mlp.user_emb(users), model.mlp.item_emb(items)], dim=-1))
        return model.out(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)
    if isinstance(model, MLP):
        h = model.mlp.tower(torch.cat([model.mlp.user_emb(users), model.mlp.item_emb(items)], dim=-1))
        return model.output(model.out(h).squeeze(-1))
    return model(users, items)


def compare(loops: dict[str, _Loop], seconds: float, rounds: int = 4) -> dict[str, float]:
    """Median samples/s of each loop over `rounds` interleaved rounds (warm-up first), so that a
    burst of load on a shared machine hits every contender alike."""
    for loop in loops.values():
        loop.run(0.0)
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            rates[name].append(loop.run(seconds / rounds))
    return {name: float(np.median(r)) for name, r in rates.items()}


class _PerSampleDataset(torch.utils.data.Dataset):
    """Baseline 1's dataset: one (user, item, label) triple per __getitem__."""

    def __init__(self, users: list[int], items: list[int], labels: list[float]):
        self.users, self.items, self.labels = users, items, labels

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, idx):
        return self.users[idx], self.items[idx], self.labels[idx]


def _python_negatives(users: np.ndarray, items: np.ndarray, seen: dict[int, set[int]], n_items: int,
                      n_neg: int, rng: np.random.Generator) -> tuple[list[int], list[int], list[float]]:
    """Baseline 1's sampler: a Python loop over positives, rejecting seen items one draw at a time."""
    out_u, out_i, out_y = [], [], []
    for u, i in zip(users.tolist(), items.tolist(), strict=True):
        out_u.append(u)
        out_i.append(i)
        out_y.append(1.0)
        for _ in range(n_neg):
            j = int(rng.integers(n_items))
            while j in seen[u]:
                j = int(rng.integers(n_items))
            out_u.append(u)
            out_i.append(j)
            out_y.append(0.0)
    return out_u, out_i, out_y


def measure_dataloader(cfg: RunConfig, split: Split, batch_size: int, seconds: float) -> float:
    """Samples/s of baseline 1. Only a few batches are measured (it is slow); the Python sampler is
    timed on just the positives those batches need and counted per sample."""
    tcfg = resolve_train_config(cfg)
    torch.manual_seed(0)
    model = stock_embeddings(build_model(cfg.model, split.n_users, split.n_items))
    optimizer = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    rng = np.random.default_rng(0)
    seen: dict[int, set[int]] = {}
    for u, i in zip(split.train_user.tolist(), split.train_item.tolist(), strict=True):
        seen.setdefault(u, set()).add(i)
    n_neg = tcfg.n_negatives
    # Enough positives for the batches we will time, drawn at random.
    n_pos = min(split.n_train, max(2000, int(20 * batch_size / (1 + n_neg))))
    pick = rng.choice(split.n_train, n_pos, replace=False)
    start = time.perf_counter()
    u, i, y = _python_negatives(split.train_user[pick], split.train_item[pick], seen, split.n_items, n_neg, rng)
    prep = (time.perf_counter() - start) / len(u)
    loader = torch.utils.data.DataLoader(_PerSampleDataset(u, i, y), batch_size=batch_size, shuffle=True)
    batches = iter(())
    done, n_samples, timed = 0, 0, 0.0
    while True:
        t0 = time.perf_counter()
        try:
            bu, bi, by = next(batches)
        except StopIteration:
            batches = iter(loader)
            bu, bi, by = next(batches)
        loss = F.binary_cross_entropy_with_logits(plain_forward(model, bu, bi), by.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if done >= 1:  # the first batch warms up
            timed += time.perf_counter() - t0
            n_samples += len(bu)
        done += 1
        if (timed >= seconds and done >= 3) or done >= 2000:
            break
    return 1.0 / (prep + timed / max(1, n_samples))


def throughput(model: str = "neumf", batch_sizes: Sequence[int] = BATCH_SIZES, *, split: Split | None = None,
               factors: int = 8, layers: Sequence[int] = (64, 32, 16, 8), n_negatives: int = 4,
               seconds: float = 1.0, baselines: bool = True, dataloader: bool = True,
               dataloader_batch_sizes: Sequence[int] | None = None, quick: bool = False, device: str = "cpu",
               exclude_seen: bool = False,
               progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Samples/s of the trainer for `model` ("all" for every trainable model) at each batch size, with
    the plain loop's figure and the ratio beside it, and for NeuMF also the DataLoader baseline.

    Defaults: NeuMF with 8 factors and tower 64,32,16,8, implicit, 4 negatives, on an ML-1M-sized
    synthetic dataset. `quick` uses the small synthetic default and short measurements (CI: seconds).
    """
    configure_threads()
    if quick:
        split = split or leave_one_out(synthetic())
        seconds = min(seconds, 0.15)
        if tuple(batch_sizes) == BATCH_SIZES:
            batch_sizes = (2048,)
    split = split or ml1m_sized()
    names = MODELS if model == "all" else (model,)
    if dataloader_batch_sizes is None:  # the slow baseline at a few sizes only, to keep the run short
        dataloader_batch_sizes = batch_sizes if quick else tuple(b for b in batch_sizes if b in (256, 2048, 8192))
    rows = []
    for name in names:
        if not registry.get(name).gradient:  # no training loop to measure
            continue
        mcfg = ModelConfig(model=name, factors=factors, layers=tuple(layers) if name != "embnn" else None)
        # Uniform negatives for both contenders (the same work); excluding seen items, the trainer's
        # default, adds one gather per negative per epoch (about 0.2 us a sample here). Adam without
        # weight decay, the baseline's update rule: the recipe's AdamW costs the same fused step, but any
        # decay keeps large tables on dense updates, which would make small batches a different contest.
        cfg = RunConfig(model=mcfg, train=TrainConfig(n_negatives=n_negatives, device=device,
                                                      exclude_seen=exclude_seen, optimizer="adam",
                                                      weight_decay=0.0))
        for bs in batch_sizes:
            loops = {"ncf": ncf_loop(cfg, split, bs)}
            if baselines:
                loops["plain"] = plain_loop(cfg, split, bs)
            rates = compare(loops, seconds)
            row = {"model": name, "batch_size": bs, "samples_per_second": rates["ncf"]}
            if baselines:
                row["plain_samples_per_second"] = rates["plain"]
                row["speedup_vs_plain"] = rates["ncf"] / rates["plain"]
                implicit = mcfg.resolved_objective == "implicit"
                if dataloader and implicit and name == "neumf" and bs in dataloader_batch_sizes:
                    slow = measure_dataloader(cfg, split, bs, min(seconds, 1.0))
                    row["dataloader_samples_per_second"] = slow
                    row["speedup_vs_dataloader"] = rates["ncf"] / slow
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows
