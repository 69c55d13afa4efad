"""Seconds until the Embeddings page shows its scatter, and until a title search is drawn, in a real
browser (headless Debian Chromium) against a real `streamlit run app.py`; optionally the README's
screenshots on the way.

    NCF_DATA_DIR=/path/to/data NCF_MODELS_DIR=/path/to/models \\
        python benchmarks/page_times.py RUN_ID [RUN_ID ...] [--shots docs/screenshots]

Each run is opened twice in a fresh browser session: 'cold' (the server computes the projection)
and 'warm' (cached), timed from navigation start to the scatter's WebGL canvas being drawn and the
script run having finished. The search types "Star Wars" and waits for the labelled matches.
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

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, settle, stop_server, wait_healthy  # noqa: E402

SCATTER = "() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p._fullData || []).some(t => t.type === 'scattergl'))"
LABELLED = ("() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p._fullData || [])"
            ".some(t => t.name === 'search matches' && (t.text || []).some(x => x)))")


def start(models: str, tmp: Path):
    import subprocess

    port = free_port()
    env = {**os.environ, "NCF_MODELS_DIR": models, "NCF_CACHE_DIR": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}
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
        settle(page)
        out[attempt] = time.perf_counter() - t0 - 0.3  # settle() ends with a 0.3 s pause
        if attempt == "warm":
            # As a user moves between pages: from the Data page of the same session, by the sidebar.
            page.locator('[data-testid="stSidebarNav"] a', has_text="Data").first.click()
            settle(page)
            page.wait_for_timeout(500)
            t0 = time.perf_counter()
            page.locator('[data-testid="stSidebarNav"] a', has_text="Embeddings").first.click()
            page.wait_for_function(SCATTER)
            settle(page)
            out["navigate"] = time.perf_counter() - t0 - 0.3
            box = page.get_by_role("textbox", name="Highlight titles containing")
            t0 = time.perf_counter()
            box.fill("Star Wars")
            box.press("Enter")
            page.wait_for_function(LABELLED)
            settle(page)
            out["highlight"] = time.perf_counter() - t0 - 0.3
            if shots is not None and source == "ml-1m":
                page.screenshot(path=str(shots / "embeddings.png"))
                page.goto(f"{url}/recommend?source={source}&run={run_id}")
                page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stDataFrame\"]').length >= 2")
                settle(page)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(shots / "recommendations.png"))
        ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--shots", type=Path, default=None)
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
                    t = time_page(browser, url, source, run_id, args.shots)
                    print(f"{source:8s} {run.n_items:5d} items: new session cold {t['cold']:.2f} s, warm {t['warm']:.2f} s; "
                          f"from the Data page {t['navigate']:.2f} s; "
                          f"'Star Wars' highlighted and labelled {t['highlight']:.2f} s", flush=True)
                browser.close()
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
