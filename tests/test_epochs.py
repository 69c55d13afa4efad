"""The trainer's epochs drawn ahead on a second thread (Fitter.epochs): the same draws, so the same run."""

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


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic(n_users=80, n_items=50, mean_per_user=12, seed=0), seed=0)


def _fitter(split, **train):
    cfg = RunConfig(model=ModelConfig(model="neumf", factors=8, layers=(16, 8)), train=TrainConfig(**train))
    tcfg = resolve_train_config(cfg, split)
    torch.manual_seed(0)
    return Fitter(build_model(cfg.model, split.n_users, split.n_items), split, tcfg, torch.device("cpu"))


@pytest.mark.parametrize("ahead", [True, False])
def test_epochs_are_the_draws_of_epoch_data_one_after_another(split, monkeypatch, ahead):
    monkeypatch.setattr(Fitter, "prefetch", property(lambda self: ahead))
    streamed = [tuple(t.clone() for t in e) for e in _fitter(split, seed=3).epochs(4)]
    plain = _fitter(split, seed=3)
    for epoch in streamed:
        for a, b in zip(epoch, plain.epoch_data(), strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(streamed[0][1], streamed[1][1])  # and epochs differ from each other


def test_the_next_epoch_is_drawn_on_another_thread_while_one_trains(split, monkeypatch):
    monkeypatch.setattr(Fitter, "prefetch", property(lambda self: True))
    fitter = _fitter(split)
    threads = []
    draw = fitter._draw_epoch
    monkeypatch.setattr(fitter, "_draw_epoch", lambda: threads.append(threading.current_thread().name) or draw())
    stream = fitter.epochs(3)
    next(stream)
    stream.close()  # stopping after the first epoch drops the one drawn ahead
    wait_until(lambda: len(threads) == 2, 30)  # the epoch drawn ahead started
    assert threads[0] == threading.current_thread().name and threads[1].startswith("ncf-epoch")


def test_a_run_with_epochs_drawn_ahead_is_the_same_run(split, monkeypatch):
    cfg = RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="neumf", factors=8, layers=(16, 8)),
                    train=TrainConfig(epochs=3, batch_size=64, seed=0))
    runs = []
    for ahead in (True, False):
        monkeypatch.setattr(Fitter, "prefetch", property(lambda self, ahead=ahead: ahead))
        torch.manual_seed(0)
        runs.append(train(cfg, split))
    for (name, a), (_, b) in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_large_epochs_keep_a_single_copy(split, monkeypatch):
    fitter = _fitter(split)
    monkeypatch.setattr(fitter_module, "available_cores", lambda: 2)
    assert fitter.prefetch
    monkeypatch.setattr(fitter_module, "PREFETCH_MAX_BYTES", 1000)  # two epochs of this size would not be small
    assert not fitter.prefetch
    monkeypatch.setattr(fitter_module, "PREFETCH_MAX_BYTES", 1 << 30)
    monkeypatch.setattr(fitter_module, "available_cores", lambda: 1)  # no spare core: no second thread
    assert not fitter.prefetch
