"""The Recommendations page's "A new user" tab in a real browser: a run of EmbeddingNN with side features
(ML-100k's demographics, genres, years and the time features) recommends for the same person from their
profile alone, their ratings alone, and both, side by side."""

from __future__ import annotations

import re

import pytest

from tests.conftest import shared_data_dir
from tests.e2e.conftest import serving, settle

pytestmark = pytest.mark.e2e
SHOTS = "/tmp"  # looked at by a person after the run


@pytest.fixture(scope="module")
def features_server(tmp_path_factory):
    """A server whose models folder holds one EmbeddingNN run with every ML-100k feature (2 epochs)."""
    data = shared_data_dir()
    if data is None or not (data / "ml-100k" / "u.user").is_file():
        pytest.skip("ML-100k not found (../shared/data or $NCF_TEST_DATA): its demographics are what this shows")
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from ncf.data import load, make_split
    from ncf.runs import save_run
    from ncf.train import train

    tmp = tmp_path_factory.mktemp("new-user")
    ds = load(str(data / "ml-100k"), use_cache=False)
    split = make_split(ds, "ratio", seed=0)
    cfg = RunConfig(data=DataConfig(source=str(data / "ml-100k"), split="ratio"),
                    model=ModelConfig(model="embnn", objective="explicit", features=("all",)),
                    train=TrainConfig(epochs=2, device="cpu", seed=0))
    save_run(train(cfg, split), cfg, split, models_dir=tmp / "models", name="embnn with features")
    with serving(tmp) as (_, url):
        yield url


def choose(page, label: str, text: str) -> None:
    """Types into a select box (or a multiselect) and takes the first match."""
    box = page.get_by_role("combobox", name=re.compile(label)).first
    box.click()
    box.fill(text)
    page.get_by_role("option", name=re.compile(re.escape(text), re.I)).first.click()
    page.keyboard.press("Escape")  # a multiselect keeps its list open
    settle(page)


def test_a_new_user_three_ways_profile_ratings_and_both(features_server, page):
    page.goto(f"{features_server}/recommend")
    settle(page)
    page.get_by_role("tab", name="A new user").click()
    page.get_by_text("Pick the movies you have seen").wait_for()
    assert "latest time in its training data" in page.inner_text("body")  # the time features' "now", said

    # Demographics only: one list, from the profile alone.
    age = page.get_by_role("spinbutton", name="age")
    age.fill("25")
    age.press("Enter")
    settle(page)
    choose(page, "^gender", "F")
    choose(page, "^occupation", "writer")
    page.get_by_text("Recommended for you from your profile alone").wait_for()
    assert page.locator('[data-testid="stDataFrame"]:visible').count() == 1  # one list, not three
    page.screenshot(path=f"{SHOTS}/new-user-profile.png", full_page=True)

    # Ratings too: the three lists side by side for the same person.
    search = page.get_by_role("textbox", name="Search titles")
    search.fill("star wars")
    search.press("Enter")
    settle(page)
    choose(page, "Pick the movies", "Star Wars (1977)")
    search.fill("princess bride")
    search.press("Enter")
    settle(page)
    choose(page, "Pick the movies", "Princess Bride")
    for title in ("From your profile alone", "From your ratings alone", "From both"):
        page.get_by_text(title, exact=True).wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
                           ".filter(e => e.offsetParent !== null).length >= 3")
    page.wait_for_timeout(800)
    body = page.inner_text("body")
    assert re.search(r"\d+ of the 10 are in all three lists", body)
    assert "Something went wrong" not in body and "Traceback" not in body
    page.set_viewport_size({"width": 1440, "height": 1900})  # the app scrolls inside: a tall window shows it all
    page.wait_for_timeout(800)
    page.screenshot(path=f"{SHOTS}/new-user-three-ways.png")
