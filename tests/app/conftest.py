"""Fixtures for the AppTest page tests: the app as a user opens it, and a real saved run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app():
    """The app at its first page, as a fresh session sees it."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    return at


@pytest.fixture
def page(app):
    """Opens one page (path relative to the repo, e.g. "app_pages/model.py") after a first run."""

    def open_page(path: str, query: dict | None = None):
        if query:
            app.query_params.update(query)
        app.run()
        if path != "app_pages/start.py":  # the app opens on its start page
            app.switch_page(path).run()
        return app

    return open_page


def shown(markdown: str) -> str:
    """Text as the reader sees it: the app escapes markdown characters in user-supplied text."""
    return re.sub(r"\\(.)", r"\1", markdown)


def train_and_save(model: str = "neumf", epochs: int = 2, name: str = ""):
    """A real, small run on the synthetic data saved into this test's NCF_MODELS_DIR."""
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from ncf.data import make_split, synthetic
    from ncf.runs import save_run
    from ncf.train import train

    cfg = RunConfig(data=DataConfig(), model=ModelConfig(model=model),
                    train=TrainConfig(epochs=epochs, batch_size=4096), name=name)
    split = make_split(synthetic(), "leave_one_out", seed=0, n_negatives=99)
    result = train(cfg, split)
    return save_run(result, cfg, split, name=name)


@pytest.fixture
def saved_run():
    return train_and_save(name="tiny neumf")


@pytest.fixture
def fresh_runner():
    """The job runner is one per server process; each test gets its own, in its own models folder."""
    from ncf.jobs import get_runner, reset_runner

    reset_runner()  # a runner an earlier test's page created serves that test's models folder
    yield get_runner()
    reset_runner()
