"""The Experiments page in a real browser: from setting up a tiny grid to the chart of its results."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import settle, shot

pytestmark = pytest.mark.e2e

PLOT_TRACES = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(p => (p._fullData || []).map(t => t.name))"""


def test_experiments_from_setup_to_chart(server, page):
    page.set_default_timeout(60_000)
    page.goto(f"{server}/experiments?epochs=1")  # the other settings come from the Data and Model pages
    settle(page, timeout=120_000)
    models = page.locator('[data-testid="stMultiSelect"]').first
    models.locator("input").click()
    page.keyboard.press("Backspace")  # gmf, mlp, neumf -> gmf, mlp
    page.keyboard.press("Escape")
    values = page.get_by_label("Values of predictive factors (comma-separated)")
    values.fill("4,8")
    values.press("Enter")
    settle(page)
    runs = page.locator('[data-testid="stMetric"]', has_text="Runs")
    assert "4" in runs.inner_text()
    assert page.get_by_text("Estimated time").is_visible()
    assert page.get_by_text("An estimate:").is_visible()
    shot(page, "experiments-setup")

    page.get_by_role("button", name="Start sweep").click()
    page.get_by_role("button", name="Stop sweep").wait_for(timeout=60_000)
    assert "sweep=" in page.url
    page.get_by_text("· Done").wait_for(timeout=400_000)  # four one-epoch runs through the job pool
    settle(page, timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=60_000)
    traces = page.evaluate(PLOT_TRACES)
    assert ["gmf", "mlp"] in traces  # a line per model on the metric-against-factors charts
    assert not page.get_by_role("button", name="Stop sweep").count()
    assert page.get_by_text("Click a point of a chart").is_visible()
    shot(page, "experiments-results")

    page.goto(page.url)  # the sweep opens again from its link, in a fresh session
    settle(page, timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=60_000)
    assert page.get_by_text("· Done").is_visible()
