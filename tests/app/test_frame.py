"""The frame: first page, sidebar status, settings that survive page switches, share links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sidebar_text(at) -> str:
    return " ".join(str(m.value) for m in at.sidebar.markdown) + " ".join(str(t.value) for t in at.sidebar.text)


def test_the_app_opens_on_a_start_page_with_the_steps_and_a_demo(app):
    app.run()
    assert not app.exception
    assert app.title[0].value.endswith("NCF Lab")
    assert any(b.label == "Run the demo" for b in app.button)
    text = " ".join(m.value for m in app.markdown)
    assert "1. Data" in text and "2. Model" in text and "3. Train and explore" in text


def test_every_page_file_is_in_the_navigation_and_linked_by_object():
    """Pages are st.Page objects defined once (app_pages.PAGES); a link names the object, not a path."""
    from app_pages import PAGES

    files = {p.name for p in (ROOT / "app_pages").glob("*.py") if p.name != "__init__.py"}
    assert {entry.file for entry in vars(type(PAGES)).values() if hasattr(entry, "file")} == files
    sources = [ROOT / "app.py", *(ROOT / "app_pages").glob("*.py"), *(ROOT / "appstate").glob("*.py")]
    by_path = [f"{p.name}: {m.group(0)}" for p in sources
               for m in re.finditer(r"(page_link|switch_page|st\.Page)\(\s*[\"']", p.read_text(encoding="utf-8"))]
    assert not by_path


def test_the_data_page_shows_the_synthetic_data_at_once(page):
    app = page("app_pages/data.py")
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Users"] == "600" and metrics["Items"] == "400"
    status = sidebar_text(app)
    assert "synthetic" in status and "Device" in status and "none yet" in status


def test_settings_survive_moving_between_pages(page):
    at = page("app_pages/model.py")
    at.text_input(key="layers").set_value("32,16,8").run()
    at.number_input(key="epochs").set_value(3).run()
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/model.py").run()
    assert at.text_input(key="layers").value == "32,16,8"
    assert at.number_input(key="epochs").value == 3


def test_a_share_link_restores_data_and_model_settings(page):
    at = page("app_pages/model.py", query={"model": "gmf", "factors": "16", "epochs": "3", "split": "ratio",
                                       "batch_size": "1024"})
    assert not at.exception
    assert at.session_state["batch_size"] == 1024
    assert at.selectbox(key="model").value == "gmf"
    assert at.number_input(key="factors").value == 16
    assert at.number_input(key="epochs").value == 3
    assert at.session_state["split"] == "ratio"
    link = at.code[0].value
    assert "model=gmf" in link and "factors=16" in link and "split=ratio" in link


def test_the_share_link_follows_changed_settings(page):
    at = page("app_pages/model.py")
    at.number_input(key="factors").set_value(24).run()
    assert "factors=24" in at.code[0].value
    assert "model=" not in at.code[0].value  # defaults are left out: short links


def test_bad_values_in_a_link_are_ignored_with_a_warning(page):
    at = page("app_pages/start.py", query={"source": "../../etc/passwd", "model": "<script>", "epochs": "many",
                                      "job": "../x", "run": "../../secret", "batch_size": "1000"})
    assert not at.exception
    assert at.session_state["source"] == "synthetic"
    assert at.session_state["model"] == "neumf"
    assert at.session_state["job_ids"] == []
    assert at.session_state["run_id"] is None
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "source" in warnings and "model" in warnings and "epochs" in warnings and "batch_size" in warnings
    assert at.session_state["batch_size"] == "auto"


def test_the_owner_is_the_browsers_xsrf_token_unmasked_whatever_the_mask():
    from appstate.resources import browser_token

    token = bytes(range(32))
    cookies = []
    for mask in (b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd"):
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        cookies.append(f"2|{mask.hex()}|{masked.hex()}|1700000000")
    assert browser_token(cookies[0]) == browser_token(cookies[1]) == token
    assert browser_token("garbage") is None and browser_token("2|zz|00|1") is None
