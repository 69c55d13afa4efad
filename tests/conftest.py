"""Shared fixtures. Real MovieLens copies live in ../shared/data (or $NCF_TEST_DATA); tests that
need them skip cleanly where they are absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    path = Path(os.environ.get("NCF_TEST_DATA", ROOT.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    """The folder holding GroupLens' own ml-100k/ and ml-1m/ layouts."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real MovieLens data not found (../shared/data or $NCF_TEST_DATA)")
    return path


@pytest.fixture
def synthetic_ds():
    from ncf.data import synthetic

    return synthetic()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Every test writes its cache and runs under its own temporary folder, never the repo's."""
    monkeypatch.setenv("NCF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NCF_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("NCF_DATA_DIR", raising=False)
    monkeypatch.delenv("NCF_RAY_ADDRESS", raising=False)  # a developer's cluster is not the tests' (see test_jobs_ray)
    yield
    jobs = sys.modules.get("ncf.jobs")
    if jobs is not None:  # a page under test may have started the process-wide runner in this folder
        jobs.reset_runner()
