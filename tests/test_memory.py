"""Training that would not fit in memory is refused up front, with what to do."""

from __future__ import annotations

import pytest
import torch

from ncf import memory
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.errors import ConfigError
from ncf.models import build_model
from ncf.train import Fitter, resolve_train_config


@pytest.fixture(scope="module")
def small_split():
    return leave_one_out(synthetic(n_users=60, n_items=80, mean_per_user=10))


def test_too_large_input_is_refused_with_the_reason_and_remedies(small_split, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 10)  # 1 KiB left
    tcfg = resolve_train_config(RunConfig(train=TrainConfig(n_negatives=4)))
    model = build_model(ModelConfig(), small_split.n_users, small_split.n_items)
    with pytest.raises(ConfigError) as err:
        Fitter(model, small_split, tcfg, torch.device("cpu"))
    message = str(err.value)
    assert f"{small_split.n_train:,} interactions" in message and "GiB" in message
    assert "smaller sample" in message and "min_per_user" in message and "more memory" in message


def test_a_run_that_fits_is_not_refused(small_split, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 << 30)
    tcfg = resolve_train_config(RunConfig())
    Fitter(build_model(ModelConfig(), small_split.n_users, small_split.n_items), small_split, tcfg, torch.device("cpu"))


def test_estimate_of_100m_interactions_exceeds_what_a_10_gib_budget_allows():
    # 100M positives with 4 negatives: 500M samples at 24 bytes each is 11 GiB on its own.
    need = memory.training_bytes(100_000_000, 4, 30_000_000, 29_000_000, rowwise=True)
    assert need > 11 * 2**30
    with pytest.raises(ConfigError, match="100,000,000 interactions"):
        memory.check_training_fits(100_000_000, 4, 30_000_000, 29_000_000, True, available=10 * 2**30)
