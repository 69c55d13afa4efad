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


def _budget_leaving(monkeypatch, spare_bytes: int) -> None:
    """NCF_MEMORY_LIMIT_GB set to what this process holds now plus `spare_bytes`: a scaled-down machine."""
    monkeypatch.setenv("NCF_MEMORY_LIMIT_GB", str((memory.resident_bytes() + spare_bytes) / 2**30))


def test_a_budget_counts_what_the_process_already_holds(monkeypatch):
    _budget_leaving(monkeypatch, 64 << 20)
    assert memory.available_bytes() <= (64 << 20) + (16 << 20)  # the RSS moves a little between the two reads


def test_too_large_data_is_refused_before_it_is_split(monkeypatch):
    """A budget scaled down to a few MiB stands in for 100M interactions on this machine: the refusal must
    come before the split (which here would fail the test) and say what to do."""
    import ncf.data.sources as sources
    from ncf.config import DataConfig
    from ncf.data import load_split

    def split_attempted(*args, **kwargs):
        raise AssertionError("the split was started although the data cannot be trained within the budget")

    monkeypatch.setattr(sources, "cached_split", split_attempted)
    ds = synthetic()
    assert memory.pipeline_bytes(ds.n_interactions, ds.n_users, ds.n_items) > 4 << 20
    _budget_leaving(monkeypatch, 2 << 20)
    with pytest.raises(ConfigError) as err:
        load_split(DataConfig(source="synthetic"))
    message = str(err.value)
    assert f"{ds.n_interactions:,} interactions" in message and "NCF_MEMORY_LIMIT_GB" in message
    assert "smaller sample" in message and "min_per_user" in message and "more memory" in message


def test_the_cli_refuses_too_large_data_with_the_reason_and_no_traceback(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NCF_MEMORY_LIMIT_GB": "0.05", "NCF_MODELS_DIR": str(tmp_path / "models"),
           "NCF_CACHE_DIR": str(tmp_path / "cache")}  # 50 MiB: less than the interpreter with torch holds
    proc = subprocess.run([sys.executable, "-m", "ncf", "train", "--data", "synthetic", "--epochs", "1"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "more memory" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_100m_interactions_are_refused_within_an_8_gib_budget_and_the_estimate_says_why():
    # ML-32M's catalogue with 100M interactions: the split alone peaks near 9.3 GiB, training needs ~17 GiB.
    need = memory.pipeline_bytes(100_000_000, 200_000, 87_000)
    assert 16 * 2**30 < need < 24 * 2**30
    with pytest.raises(ConfigError, match="100,000,000 interactions"):
        memory.check_pipeline_fits(100_000_000, 200_000, 87_000, available=8 * 2**30)
    memory.check_pipeline_fits(25_000_000, 162_541, 59_047, available=8 * 2**30)  # ML-25M fits in 8 GiB


def test_a_file_too_large_to_parse_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import ncf.data.files as files
    from ncf.data import load

    csv = tmp_path / "ratings.csv"
    csv.write_text("userId,movieId,rating\n" + "".join(f"{u},{u % 97},4\n" for u in range(200_000)))
    monkeypatch.setattr(files, "read_table", lambda *a, **k: pytest.fail("the file was read"))
    _budget_leaving(monkeypatch, csv.stat().st_size)  # room for the file, not for parsing it (3.5x)
    with pytest.raises(ConfigError, match="Reading ratings.csv .* more memory"):
        load(str(csv), use_cache=False)
