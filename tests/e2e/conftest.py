"""A real `streamlit run app.py` on a free loopback port, driven by headless Debian Chromium.

One server per test session (its models and cache in temporary folders); one fresh browser page
per test. Screenshots go to artifacts/screenshots/ (git-ignored) so a person can look at them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> float:
    """Seconds until /_stcore/health answers "ok"."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout:.0f}s")


def start_server(tmp: Path, extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "NCF_MODELS_DIR": str(tmp / "models"), "NCF_CACHE_DIR": str(tmp / "cache"),
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    env.pop("NCF_DATA_DIR", None)
    log = open(tmp / f"streamlit-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def serving(tmp: Path, extra_env: dict | None = None):
    """A started, healthy server as (proc, url) for the block, stopped after it whatever happens."""
    proc, url = start_server(tmp, extra_env)
    try:
        wait_healthy(url, proc)
        yield proc, url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app's address. Models and cache live in a session temp folder."""
    with serving(tmp_path_factory.mktemp("e2e")) as (_, url):
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    if getattr(request.node, "failed_call", False):  # what the browser showed when the test failed
        shot(pg, f"failed-{request.node.name}")
    context.close()


def shot(page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def settle(page, timeout: float = 30_000) -> None:
    """Waits until the app's script run has finished (the 'running' indicator is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout)
    page.wait_for_timeout(300)


def goto_page(page, title: str) -> None:
    """Clicks a page in the sidebar navigation (keeps the session, like a user)."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.wait_for_timeout(300)
    settle(page)
