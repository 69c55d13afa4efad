"""fastai's learning-rate range test (lr_find), on the trainer's own Fitter."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ncf import registry
from ncf.config import RunConfig
from ncf.data import Split
from ncf.data.features import for_split as feature_tables
from ncf.device import configure_threads, pick_device
from ncf.errors import ConfigError
from ncf.models import build_model
from ncf.train.fitter import Fitter, resolve_train_config


@dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # smoothed (exponential moving average, debiased), as fastai plots them
    suggestion: float
    raw_losses: list[float] = field(default_factory=list)



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
