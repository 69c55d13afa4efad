"""The trainer's epochs (Fitter.epochs): drawn ahead on a second thread (the same draws, so the same run),
and large ones drawn in chunks (every positive once, with its negatives, never a seen item)."""

from __future__ import annotations

import threading

import pytest
import torch

from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.models import build_model
from ncf.train import Fitter, resolve_train_config, train
from ncf.train import fitter as fitter_module
from tests.waiting import wait_until

BATCH = 64


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic(n_users=80, n_items=50, mean_per_user=12, seed=0), seed=0)


def _fitter(split, **train):
    cfg = RunConfig(model=ModelConfig(model="neumf", factors=8, layers=(16, 8)),
                    train=TrainConfig(batch_size=BATCH, **train))
    tcfg = resolve_train_config(cfg, split)
    torch.manual_seed(0)
    return Fitter(build_model(cfg.model, split.n_users, split.n_items), split, tcfg, torch.device("cpu"))


def _spare_core(monkeypatch, spare: bool):
    monkeypatch.setattr(Fitter, "spare_core", property(lambda self: spare))


def _epoch(batches) -> tuple[torch.Tensor, ...]:
    users, items, target, _ = zip(*[tuple(t.clone() if t is not None else None for t in b) for b in batches],
                                  strict=True)
    return torch.cat(users), torch.cat(items), torch.cat(target)


@pytest.mark.parametrize("spare", [True, False])
def test_epochs_are_the_draws_of_epoch_data_one_after_another(split, monkeypatch, spare):
    _spare_core(monkeypatch, spare)
    fitter = _fitter(split, seed=3)
    assert not fitter.chunked
    streamed = [_epoch(batches) for batches in fitter.epochs(4, BATCH)]
    plain = _fitter(split, seed=3)
    for epoch in streamed:
        for a, b in zip(epoch, plain.epoch_data(), strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(streamed[0][1], streamed[1][1])  # and epochs differ from each other


def test_the_next_epoch_is_drawn_on_another_thread_while_one_trains(split, monkeypatch):
    _spare_core(monkeypatch, True)
    fitter = _fitter(split)
    threads = []
    draw = fitter._draw_epoch
    monkeypatch.setattr(fitter, "_draw_epoch", lambda *a: threads.append(threading.current_thread().name) or draw(*a))
    stream = fitter.epochs(3, BATCH)
    next(stream)
    stream.close()  # stopping after the first epoch drops the one drawn ahead
    wait_until(lambda: len(threads) == 2, 30)  # the epoch drawn ahead started
    assert threads[0] == threading.current_thread().name and threads[1].startswith("ncf-epoch")


def test_a_run_with_epochs_drawn_ahead_is_the_same_run(split, monkeypatch):
    cfg = RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="neumf", factors=8, layers=(16, 8)),
                    train=TrainConfig(epochs=3, batch_size=BATCH, seed=0))
    runs = []
    for spare in (True, False):
        _spare_core(monkeypatch, spare)
        torch.manual_seed(0)
        runs.append(train(cfg, split))
    for (name, a), (_, b) in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_large_epochs_are_drawn_in_chunks(split, monkeypatch):
    fitter = _fitter(split)
    assert fitter.small_epoch and not fitter.chunked
    monkeypatch.setattr(fitter_module, "PREFETCH_MAX_BYTES", 1000)  # this epoch now counts as large
    assert not fitter.small_epoch and fitter.chunked
    monkeypatch.setattr(fitter_module, "available_cores", lambda: 1)  # no spare core: nothing drawn ahead
    assert not fitter.spare_core


@pytest.mark.parametrize("spare", [True, False])
def test_a_chunked_epoch_has_every_positive_once_with_unseen_negatives(split, monkeypatch, spare):
    monkeypatch.setattr(fitter_module, "PREFETCH_MAX_BYTES", 1000)
    monkeypatch.setattr(fitter_module, "CHUNK_SAMPLES", 3 * BATCH * 5)  # 3 batches a chunk, 4 negatives
    _spare_core(monkeypatch, spare)
    fitter = _fitter(split, seed=5)
    epochs = [list(batches) for batches in fitter.epochs(2, BATCH)]
    for batches in epochs:
        assert len(batches) in (fitter.steps_per_epoch(BATCH), fitter.steps_per_epoch(BATCH) + 1)
        assert all(len(b[0]) == BATCH for b in batches[:-1])  # chunks hold whole batches
        users, items, target = _epoch(batches)
        keys = users.long() * split.n_items + items.long()
        train_keys = torch.as_tensor(split.train_user).long() * split.n_items + torch.as_tensor(split.train_item)
        assert torch.equal(keys[target].sort().values, train_keys.sort().values)  # each positive once
        assert (~target).sum() == 4 * len(train_keys)
        assert not torch.isin(keys[~target], train_keys).any()  # negatives are never seen items
    assert not torch.equal(_epoch(epochs[0])[1], _epoch(epochs[1])[1])
    # the same seed draws the same chunks whether they are drawn ahead or not
    monkeypatch.setattr(Fitter, "spare_core", property(lambda self: not spare))
    again = [_epoch(list(batches)) for batches in _fitter(split, seed=5).epochs(2, BATCH)]
    for a, b in zip(again, [_epoch(e) for e in epochs], strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_training_on_chunked_epochs_learns(split, monkeypatch):
    monkeypatch.setattr(fitter_module, "PREFETCH_MAX_BYTES", 1000)
    monkeypatch.setattr(fitter_module, "CHUNK_SAMPLES", 2 * BATCH * 5)
    cfg = RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="neumf", factors=8, layers=(16, 8)),
                    train=TrainConfig(epochs=4, batch_size=BATCH, seed=0))
    result = train(cfg, split)
    losses = [e["train_loss"] for e in result.history if e["event"] == "epoch"]
    assert len(losses) == 4 and losses[-1] < 0.9 * losses[0]


def test_an_epochs_batches_outlive_the_epochs_iterator(split, monkeypatch):
    monkeypatch.setattr(fitter_module, "PREFETCH_MAX_BYTES", 1000)
    monkeypatch.setattr(fitter_module, "CHUNK_SAMPLES", 2 * BATCH * 5)
    _spare_core(monkeypatch, True)
    fitter = _fitter(split)
    batches = next(fitter.epochs(2, BATCH))  # the epochs iterator itself is dropped (and its pool shut down)
    assert sum(len(b[0]) for b in batches) == fitter.samples_per_epoch
