"""Seconds until the Embeddings page shows its scatter, and until a title search is drawn, in a real
browser (headless Debian Chromium) against a real `streamlit run app.py`; optionally the README's
screenshots on the way.

    NCF_DATA_DIR=/path/to/data NCF_MODELS_DIR=/path/to/models \\
        python benchmarks/page_times.py RUN_ID [RUN_ID ...] [--shots docs/screenshots]

Each run is opened twice in a fresh browser session: 'cold' (the server computes the projection)
and 'warm' (cached), timed from navigation start to the scatter's WebGL canvas being drawn and the
script run having finished. The search types "Star Wars" and waits for the labelled matches.

`--large` (a run on ML-25M-shaped data, made by benchmarks/app_large.py) also times, each in a fresh
session after one warm-up: the Data page until its three charts are drawn (and until its script run
ends, which includes the split on a cold server), the Recommendations page until a user's history
and top 10 are shown, another user typed by id, a title search with its similar items, and a title
search on the 'new user' tab. The server's peak memory (VmHWM) is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, stop_server, wait_healthy  # noqa: E402

SCATTER = "() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p._fullData || []).some(t => t.type === 'scattergl'))"
# The matches drawn and their titles written: annotations in 2D (plotly draws them above its WebGL canvas),
# the trace's text in 3D.
LABELLED = ("() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p._fullData || [])"
            ".some(t => t.name === 'search matches' && ((t.text || []).some(x => x)"
            " || (p._fullLayout.annotations || []).some(a => a.text))))")


def start(models: str, tmp: Path):
    import subprocess

    port = free_port()
    env = {**os.environ, "NCF_MODELS_DIR": models, "NCF_CACHE_DIR": os.environ.get("NCF_CACHE_DIR", str(tmp / "cache")),
           "PYTHONUNBUFFERED": "1"}
    log = open(tmp / "streamlit.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


def time_page(browser, url: str, source: str, run_id: str, shots: Path | None) -> dict:
    out = {}
    for attempt in ("cold", "warm"):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        t0 = time.perf_counter()
        page.goto(f"{url}/embeddings?source={source}&run={run_id}")
        page.wait_for_function(SCATTER)
        done(page)
        out[attempt] = time.perf_counter() - t0 - 0.3  # done() starts with a 0.3 s pause
        if attempt == "warm":
            # As a user moves between pages: from the Data page of the same session, by the sidebar.
            page.locator('[data-testid="stSidebarNav"] a', has_text="Data").first.click()
            done(page)
            page.wait_for_timeout(500)
            t0 = time.perf_counter()
            page.locator('[data-testid="stSidebarNav"] a', has_text="Embeddings").first.click()
            page.wait_for_function(SCATTER)
            done(page)
            out["navigate"] = time.perf_counter() - t0 - 0.3
            box = page.get_by_role("textbox", name="Highlight titles containing")
            t0 = time.perf_counter()
            box.fill("Star Wars")
            box.press("Enter")
            page.wait_for_function(LABELLED)
            done(page)
            out["highlight"] = time.perf_counter() - t0 - 0.3
            if shots is not None and source == "ml-1m":
                page.screenshot(path=str(shots / "embeddings.png"))
                page.goto(f"{url}/recommend?source={source}&run={run_id}")
                page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length >= 2")
                done(page)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(shots / "recommendations.png"))
        ctx.close()
    return out


CHARTS = "n => document.querySelectorAll('.js-plotly-plot').length >= n && [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullData)"
TABLES = "n => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length >= n"


IDLE = ("() => ![...document.querySelectorAll('[data-testid=\"stStatusWidget\"]')]"
        ".some(w => /Running|Stop/.test(w.innerText))")


def done(page, timeout: float = 600_000) -> None:
    """Until the script run has ended: the status widget says neither 'Running' nor 'Stop' (this
    Streamlit shows 'Stop' alone while a long run goes on, which settle() takes for finished)."""
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE, timeout=timeout)


def _timed(page, box, text: str, until: str, arg=None) -> float:
    """Seconds from typing `text` into `box` (and Enter) until `until` holds and the script run has ended."""
    t0 = time.perf_counter()
    box.fill(text)
    box.press("Enter")
    page.wait_for_timeout(200)  # the rerun starts; settle() would otherwise see the last one's end
    page.wait_for_function(until, arg=arg)
    done(page)
    return time.perf_counter() - t0 - 0.3


class _Said(dict):
    """A dict of timings that prints each as it arrives (a long benchmark shows where it is)."""

    def __setitem__(self, key, value):
        print(f"  {key:<40s} {value:6.2f} s", flush=True)
        super().__setitem__(key, value)


def nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


def _visible_box(page, name: str):
    return page.locator('[role="tabpanel"]:not([hidden])').get_by_role("textbox", name=name).first


def time_large(browser, url: str, source: str, run_id: str) -> dict:
    """The Data and Recommendations pages on large data, each opened in a new session (cold, then warm)."""
    out = _Said()
    for attempt in ("cold", "warm"):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(600_000)
        t0 = time.perf_counter()
        page.goto(f"{url}/data?source={source}")
        page.wait_for_function(CHARTS, arg=3)
        out[f"data charts {attempt}"] = time.perf_counter() - t0
        done(page)
        out[f"data page done {attempt}"] = time.perf_counter() - t0 - 0.3
        if attempt == "warm":  # as a user moves: to the Model page and back by the sidebar
            nav(page, "Model")
            done(page)
            t0 = time.perf_counter()
            nav(page, "Data")
            page.wait_for_function(CHARTS, arg=3)
            done(page)
            out["data page from the sidebar"] = time.perf_counter() - t0 - 0.3
        ctx.close()
    # The same new session on the built-in synthetic data (600 users): what a new session costs anyway.
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(f"{url}/data?source=synthetic")
    page.wait_for_function(CHARTS, arg=3)
    out["baseline: synthetic data charts, new session"] = time.perf_counter() - t0
    done(page)
    ctx.close()
    for attempt in ("cold", "warm"):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(600_000)
        t0 = time.perf_counter()
        page.goto(f"{url}/recommend?source={source}&run={run_id}")
        page.wait_for_function(TABLES, arg=2)
        done(page)
        out[f"recommend {attempt}"] = time.perf_counter() - t0 - 0.3
        if attempt == "warm":
            nav(page, "Data")
            done(page)
            t0 = time.perf_counter()
            nav(page, "Recommendations")
            page.wait_for_function(TABLES, arg=2)
            done(page)
            out["recommend from the sidebar"] = time.perf_counter() - t0 - 0.3
            box = page.get_by_role("textbox", name="User id").first
            history = "() => [...document.querySelectorAll('p')].some(p => p.innerText.includes('Their history') " \
                      "&& !p.innerText.startsWith(window._before))"
            page.evaluate("() => { window._before = [...document.querySelectorAll('p')]"
                          ".find(p => p.innerText.includes('Their history')).innerText }")
            out["another user by id"] = _timed(page, box, "1000", history)
            page.get_by_role("tab", name="Similar items").click()
            page.wait_for_timeout(300)
            search = _visible_box(page, "Search titles")
            # Until the item list offers the matches (the search reruns the page; the list keeps the
            # current pick first and the matches after it).
            t0 = time.perf_counter()
            search.fill("Star Wars")
            search.press("Enter")
            done(page)
            page.locator('[role="tabpanel"] [data-testid="stSelectbox"]').last.click()
            match = page.get_by_text("Star Wars: Episode I (").first
            match.wait_for(state="visible")
            out["similar items: title search"] = time.perf_counter() - t0 - 0.3
            # Every rerun of this page runs all three tabs, the similar items of the current pick
            # included: the two timings above contain a Similar items answer each.
            page.keyboard.press("Escape")
            done(page)
            page.get_by_role("tab", name="A new user").click()
            page.wait_for_timeout(300)
            fold = _visible_box(page, "Search titles")
            out["new user: title search"] = _timed(page, fold, "Film 12", "() => true")
        ctx.close()
    return out


def server_peak(proc) -> float:
    """GiB: the streamlit server's resident high-water mark."""
    status = Path(f"/proc/{proc.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--shots", type=Path, default=None)
    ap.add_argument("--large", action="store_true", help="also time the Data and Recommendations pages")
    args = ap.parse_args()
    models = os.environ["NCF_MODELS_DIR"]
    from playwright.sync_api import sync_playwright

    from ncf.runs import load_run

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(models, Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                for run_id in args.runs:
                    run = load_run(run_id)
                    source = run.config.data.source
                    if args.large:
                        time_large(browser, url, source, run_id)
                    t = time_page(browser, url, source, run_id, args.shots)
                    print(f"{source:8s} {run.n_items:5d} items: new session cold {t['cold']:.2f} s, warm {t['warm']:.2f} s; "
                          f"from the Data page {t['navigate']:.2f} s; "
                          f"'Star Wars' highlighted and labelled {t['highlight']:.2f} s", flush=True)
                browser.close()
            print(f"server peak memory (VmHWM) {server_peak(proc):.2f} GiB; load average now "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
