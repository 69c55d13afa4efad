"""How the app feels, measured in a real browser: start-up, time to a first recommendation, live updates.

Starts `streamlit run app.py` on a free loopback port (models and cache in a temporary folder),
drives headless Debian Chromium through Playwright as a new user would, and prints a Markdown
table (also written to benchmarks/results_app.md with --write):

1. server start -> first page rendered: from launching the process to the Data page showing the
   synthetic dataset's numbers in the browser;
2. "Train" on the synthetic default -> first recommendation shown: click Train on the Train page
   with the default settings, wait for the run to be saved, open Recommendations, wait for the
   table of recommendations;
3. live updates: while training, how often the loss curve in the page gains points and how often
   the samples/s figure changes (sampled every 50 ms in the page for 5 s).

    python benchmarks/app_timing.py [--epochs N] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402

SAMPLER = """(ms) => new Promise(resolve => {
  const samples = [];
  const read = () => {
    let n = 0;
    for (const plot of document.querySelectorAll('.js-plotly-plot')) {
      const t = (plot._fullData || []).find(t => t.name === 'loss (batches)');
      if (t) n = t._length || 0;
    }
    const m = [...document.querySelectorAll('[data-testid="stMetric"]')].find(e => e.innerText.startsWith('Samples/s'));
    samples.push([performance.now(), n, m ? m.innerText : '']);
  };
  const timer = setInterval(read, 50);
  setTimeout(() => { clearInterval(timer); resolve(samples); }, ms);
})"""


def changes_per_second(samples: list, column: int) -> tuple[float, float]:
    """(changes per second, median seconds between changes) of one sampled column."""
    times = [now[0] for prev, now in zip(samples[:-1], samples[1:], strict=True) if now[column] != prev[column]]
    span = (samples[-1][0] - samples[0][0]) / 1000
    gaps = [(b - a) / 1000 for a, b in zip(times[:-1], times[1:], strict=True)]
    return (len(times) / span if span else 0.0), (statistics.median(gaps) if gaps else float("nan"))


def measure(epochs: int | None) -> dict:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ncf-app-timing-"))
    started = time.monotonic()
    proc, url = start_server(tmp)
    out: dict = {}
    try:
        out["server healthy (s)"] = wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url + (f"/data?epochs={epochs}" if epochs else "/data"))  # the Data page: "/" is the start page
            page.get_by_text("Loaded: synthetic").wait_for()
            page.locator('[data-testid="stMetric"]', has_text="Users").wait_for()
            out["server start -> first page rendered (s)"] = time.monotonic() - started

            page.locator('[data-testid="stSidebarNav"] a', has_text="Train").first.click()
            page.get_by_role("button", name="Train", exact=True).wait_for()
            clicked = time.monotonic()
            page.get_by_role("button", name="Train", exact=True).click()
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(p => "
                                   "(p._fullData || []).some(t => t.name === 'loss (batches)' && t._length > 0))")
            out["Train -> first loss point shown (s)"] = time.monotonic() - clicked
            samples = page.evaluate(SAMPLER, 5000)
            curve_rate, curve_gap = changes_per_second(samples, 1)
            speed_rate, _ = changes_per_second(samples, 2)
            out["loss curve updates per second"] = curve_rate
            out["median seconds between curve updates"] = curve_gap
            out["samples/s figure updates per second"] = speed_rate
            page.get_by_text("Saved as run").wait_for(timeout=600_000)
            out["Train -> run saved (s)"] = time.monotonic() - clicked
            page.locator('[data-testid="stSidebarNav"] a', has_text="Recommendations").first.click()
            page.get_by_text("Top 10 recommendations").wait_for()
            page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stDataFrame\"] canvas').length >= 2")
            out["Train -> first recommendation shown (s)"] = time.monotonic() - clicked
            browser.close()
    finally:
        stop_server(proc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs to train (default: the app's default)")
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/results_app.md")
    args = parser.parse_args()
    result = measure(args.epochs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {os.cpu_count()} cores · "
              f"load average before {load:.1f} · epochs {args.epochs or 'app default'}")
    lines = [f"### {header}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in result.items()]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        with open(ROOT / "benchmarks" / "results_app.md", "a", encoding="utf-8") as f:
            f.write("\n" + table)


if __name__ == "__main__":
    main()
