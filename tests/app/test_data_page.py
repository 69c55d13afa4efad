"""The Data page: synthetic at once, the split settings, uploads good and bad, column correction."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app.conftest import shown

MODES = ("Synthetic (built in)", "MovieLens", "Upload a file")


def ratings_csv(n_users: int = 30, n_items: int = 150, seed: int = 0) -> bytes:
    """A small explicit-feedback table with a header, 8 ratings per user."""
    rng = np.random.default_rng(seed)
    rows = ["userId,movieId,rating,timestamp"]
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(100, 100 + n_items), 8, replace=False):
            rows.append(f"{u},{i},{rng.integers(1, 6)},{1_000_000 + u * 100 + i}")
    return ("\n".join(rows) + "\n").encode()


def distinct(data: bytes, column: int) -> str:
    return str(len({line.split(",")[column] for line in data.decode().splitlines()[1:]}))


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def upload(at, name: str, data: bytes):
    at.button_group(key="data_mode").set_value(MODES[2]).run()
    at.file_uploader[0].upload(name, data, "text/csv").run()
    return at


def test_split_settings_change_the_split_shown(page):
    at = page("app_pages/data.py")
    assert "Leave-one-out" in at.info[0].value and "99 sampled" in at.info[0].value
    at.number_input(key="test_negatives").set_value(49).run()
    assert "49 sampled" in at.info[0].value
    at.checkbox(key="validation").check().run()
    assert "600 validation" in at.info[0].value and "second-latest" in at.info[0].value
    assert at.session_state["validation"] and "26,150 training" in at.info[0].value
    at.radio(key="split").set_value("ratio").run()
    assert "Random split" in at.info[0].value and "validation" not in at.info[0].value
    assert at.slider(key="test_fraction").value == 0.2
    assert not [c for c in at.checkbox if c.key == "validation"]  # leave-one-out only


def test_a_good_upload_previews_its_columns_and_loads(page):
    at = upload(page("app_pages/data.py"), "my ratings.csv", ratings_csv())
    assert not at.exception
    assert at.selectbox(key="role_user").value == "userId"
    assert at.selectbox(key="role_rating").value == "rating"
    next(b for b in at.button if b.label == "Load this file").click().run()
    assert not at.exception
    assert not at.error, shown(at.error[0].value)
    assert metrics(at)["Users"] == "30" and metrics(at)["Items"] == distinct(ratings_csv(), 1)
    assert at.session_state["source"].startswith("upload:")


def test_corrected_columns_are_used(page):
    at = upload(page("app_pages/data.py"), "ratings.csv", ratings_csv())
    # Swap the roles: users become items and items users.
    at.selectbox(key="role_user").set_value("movieId").run()
    at.selectbox(key="role_item").set_value("userId").run()
    next(b for b in at.button if b.label == "Load this file").click().run()
    assert metrics(at)["Users"] == distinct(ratings_csv(), 1) and metrics(at)["Items"] == "30"


def test_a_bad_upload_says_why_and_keeps_the_previous_dataset(page):
    at = upload(page("app_pages/data.py"), "holiday.csv", b"\x89PNG\r\n\x1a\n" + bytes(200))
    assert not at.exception
    assert at.error and "holiday.csv" in shown(at.error[0].value) and "PNG" in shown(at.error[0].value)
    assert metrics(at)["Users"] == "600"
    assert at.session_state["source"] == "synthetic"


def test_a_file_that_fails_only_when_read_in_full_keeps_the_previous_dataset(page):
    """The head looks fine (so the preview shows); a bad rating further down is found on loading."""
    data = ratings_csv() + b"5,120,excellent,1000\n"
    at = upload(page("app_pages/data.py"), "broken.csv", data)
    next(b for b in at.button if b.label == "Load this file").click().run()
    assert not at.exception
    assert "broken.csv" in shown(at.error[0].value) and "excellent" in shown(at.error[0].value)
    assert "still in use" in at.info[0].value
    assert at.session_state["source"] == "synthetic"
    assert metrics(at)["Users"] == "600"


def test_markup_in_a_file_name_is_shown_as_text(page):
    name = "![x](http---e.vil-a.png) <b>bold.csv"
    at = upload(page("app_pages/data.py"), name, ratings_csv())
    next(b for b in at.button if b.label == "Load this file").click().run()
    heading = next(h.value for h in at.subheader if "Loaded" in h.value)
    assert shown(heading) == f"Loaded: {name}"
    assert "![" not in heading and "<b>" not in heading  # escaped: no image, no tag


@pytest.mark.slow
def test_a_local_movielens_release_is_listed_and_loads(page, shared_data, monkeypatch):
    monkeypatch.setenv("NCF_DATA_DIR", str(shared_data))
    at = page("app_pages/data.py")
    at.button_group(key="data_mode").set_value(MODES[1]).run()
    releases = at.dataframe[0].value
    assert releases.set_index("release").loc["ml-100k", "on this machine"] == "yes"
    at.selectbox[0].set_value("ml-100k").run()
    next(b for b in at.button if b.label == "Use ml-100k").click().run(timeout=120)
    assert not at.exception and not at.error
    assert metrics(at)["Users"] == "943" and metrics(at)["Items"] == "1,682"
    assert at.session_state["source"] == "ml-100k"


@pytest.mark.slow
def test_the_source_control_always_keeps_one_choice(page, shared_data, monkeypatch):
    """Issue point 8: after a ?source=ml-100k link, 'MovieLens' clicked again (no choice) kept the
    MovieLens view; the upload box never appears by itself."""
    monkeypatch.setenv("NCF_DATA_DIR", str(shared_data))
    at = page("app_pages/data.py", {"source": "ml-100k"})
    assert at.button_group(key="data_mode").value == MODES[1]
    at.button_group(key="data_mode").set_value(None).run()
    assert not at.exception
    assert not at.get("file_uploader") and at.session_state["source"] == "ml-100k"
    assert metrics(at)["Users"] == "943"
