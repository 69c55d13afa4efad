"""A class on one server: N browser sessions at once against one `streamlit run app.py`.

Starts the app on a free loopback port (models and cache in a temporary folder), launches one
headless Debian Chromium and opens N browser contexts (separate sessions: separate cookies,
separate Streamlit sessions) that are driven concurrently with Playwright's asyncio API. Each
session, like a student following the teacher's link:

1. opens the Train page with a share link for a small model (`?model=gmf&epochs=2`) on the
   synthetic data, presses Train;
2. waits for its run to be saved (it queues behind the others: the server has a small pool of
   worker processes);
3. opens Recommendations and reads the first recommendation row of the table.

Recorded: sessions that failed (goal 0), time from Train to a recommendation read (median, 95th
percentile), the server's peak memory (the server process plus its job workers: VmRSS of the
process tree sampled every 0.2 s) and the memory after every session has closed.

    python benchmarks/load_test.py [--sessions 30] [--quick] [--write] [--trace]

`--quick` is 4 sessions (what CI runs, tests/e2e/test_class_server.py); `--write` appends the
figures to benchmarks/results_serve.md. `--trace` prints a line every 10 s: the jobs on the server
by state, and per session its step and the WebSocket frames its page sent/received so far (a page
whose received count stops growing is not being redrawn by the server); when a page still at work has
received nothing for 60 s it also prints a `py-spy dump` of the server, if py-spy is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server, wait_healthy  # noqa: E402

# The first data row of the first table under "Top N recommendations" (glide-data-grid keeps an
# accessible copy of the visible cells in a table beside its canvas).
FIRST_RECOMMENDATION = """() => {
  const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')];
  const grid = grids[1] || grids[0];  // the page shows the history first, the recommendations second
  if (!grid) return null;
  const row = grid.querySelector('tr[aria-rowindex="2"]');
  if (!row) return null;
  const cells = [...row.querySelectorAll('td')].map(td => td.innerText.trim());
  return cells.some(c => c) ? cells : null;
}"""


# ---------------------------------------------------------------- memory of the server's process tree


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4; the name in (...) may hold spaces
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_rss_bytes(pid: int, descendants: bool = True) -> int:
    """VmRSS of `pid` and all its descendants (the server and its worker processes)."""
    kids = _children() if descendants else {}
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class MemorySampler:
    """Samples the tree's RSS every `every` seconds in a thread; `peak` is the largest sample."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every = pid, every
        self.peak = 0
        self.peak_server = 0  # the server process alone (sessions, caches), without the workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self.peak_server = max(self.peak_server, tree_rss_bytes(self.pid, descendants=False))
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- one student


@dataclass
class SessionResult:
    index: int
    ok: bool = False
    seconds_to_result: float | None = None  # Train clicked -> a recommendation row read
    seconds_to_page: float | None = None  # link opened -> the Train button shown (the front end started)
    error: str = ""
    row: list[str] = field(default_factory=list)


@dataclass
class Trace:
    """What one page did so far, for `--trace`."""

    step: str = "start"
    sent: int = 0
    received: int = 0
    last_received: float = field(default_factory=time.monotonic)  # when a frame last came in

    def watch(self, ws) -> None:
        ws.on("framesent", lambda _: setattr(self, "sent", self.sent + 1))
        ws.on("framereceived", lambda _: self._received())

    def _received(self) -> None:
        self.received += 1
        self.last_received = time.monotonic()


async def one_session(browser, url: str, index: int, query: str, timeout_s: float,
                      trace: Trace | None = None) -> SessionResult:
    result = SessionResult(index)
    trace = trace or Trace()
    trace.step = "open the link"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("websocket", trace.watch)
    page.set_default_timeout(timeout_s * 1000)
    try:
        opened = time.monotonic()
        await page.goto(f"{url}/train?{query}")
        train = page.get_by_role("button", name="Train", exact=True)
        await train.wait_for()
        await page.get_by_text("GMF", exact=True).first.wait_for()  # the link's settings are in effect
        result.seconds_to_page = time.monotonic() - opened
        clicked = time.monotonic()
        trace.step = "press Train"
        await train.click()
        trace.step = "wait for the run to be saved"
        await page.get_by_text("Saved as run").wait_for()
        trace.step = "open Recommendations"
        await page.locator('[data-testid="stSidebarNav"] a', has_text="Recommendations").first.click()
        await page.get_by_text("Top 10 recommendations").wait_for()
        trace.step = "read a recommendation"
        await page.wait_for_function(FIRST_RECOMMENDATION)
        result.row = await page.evaluate(FIRST_RECOMMENDATION)
        result.seconds_to_result = time.monotonic() - clicked
        errors = await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
        if errors:
            raise RuntimeError(f"the page shows {errors} error(s): "
                               + (await page.locator('[data-testid="stMain"]').inner_text())[:300])
        result.ok = True
        trace.step = "done"
    except Exception as exc:  # noqa: BLE001 - a failed session is a figure, not a crash of the benchmark
        result.error = f"at '{trace.step}': {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        trace.step = "FAILED"
        shots = ROOT / "artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(shots / f"load-failed-{index}.png"), full_page=True)
    finally:
        await context.close()
    return result


async def drive(url: str, sessions: int, query: str, timeout_s: float, stagger_s: float,
                traces: list[Trace]) -> list[SessionResult]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            async def start(i: int) -> SessionResult:
                await asyncio.sleep(i * stagger_s)  # "thirty students open it at the same moment", give or take
                return await one_session(browser, url, i, query, timeout_s, traces[i])

            return list(await asyncio.gather(*(start(i) for i in range(sessions))))
        finally:
            await browser.close()


# ---------------------------------------------------------------- tracing (--trace)


def job_states(models_dir: Path) -> dict[str, int]:
    """The server's jobs by state, read from their files as any page would."""
    import json

    def state(job: Path) -> str:
        try:
            return json.loads(job.read_text(encoding="utf-8")).get("state", "?")
        except (OSError, ValueError):
            return "unreadable"

    return dict(Counter(state(job) for job in (models_dir / ".jobs").glob("*/job.json")))


def trace_loop(traces: list[Trace], models_dir: Path, server_pid: int, started: float, stop: threading.Event,
               every: float = 10.0, stall_s: float = 60.0) -> None:
    import shutil
    import subprocess

    dumped = False
    while not stop.wait(every):
        now = time.monotonic()
        stalled = [i for i, t in enumerate(traces)
                   if t.step not in ("done", "FAILED") and now - t.last_received > stall_s]
        print(f"[trace {now - started:6.0f} s] load {os.getloadavg()[0]:.1f} · jobs {job_states(models_dir)}"
              f" · steps {dict(Counter(t.step for t in traces))}", flush=True)
        print("    frames sent/received: " + " ".join(f"{i}:{t.sent}/{t.received}" for i, t in enumerate(traces)),
              flush=True)
        if stalled and not dumped and shutil.which("py-spy"):
            dumped = True  # one dump per run: enough to see where the server's threads wait
            print(f"[trace] pages {stalled} received nothing for {stall_s:.0f} s; py-spy dump of the server:",
                  flush=True)
            out = subprocess.run(["py-spy", "dump", "--pid", str(server_pid)], capture_output=True, text=True)
            print(out.stdout or out.stderr, flush=True)


# ---------------------------------------------------------------- the whole test


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with few values it is one of them)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_load_test(sessions: int = 30, epochs: int = 2, timeout_s: float = 900.0, stagger_s: float = 0.1,
                  settle_s: float = 10.0, workers: int | None = None, tmp: Path | None = None,
                  trace: bool = False) -> dict:
    """Runs the whole test and returns its figures (see the module docstring)."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="ncf-load-"))
    # Disconnected sessions are kept 2 minutes by default (for a reconnecting phone); a short TTL
    # (server.disconnectedSessionTTL, set through Streamlit's environment variable) lets "memory
    # after the sessions closed" be measured within seconds.
    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "5", **({"NCF_WORKERS": str(workers)} if workers else {})}
    proc, url = start_server(tmp, extra_env=env)
    try:
        wait_healthy(url, proc)
        time.sleep(1.0)
        baseline = tree_rss_bytes(proc.pid)
        baseline_server = tree_rss_bytes(proc.pid, descendants=False)
        query = f"model=gmf&epochs={epochs}"
        started = time.monotonic()
        traces = [Trace() for _ in range(sessions)]
        tracing = threading.Event()
        if trace:
            threading.Thread(target=trace_loop, args=(traces, tmp / "models", proc.pid, started, tracing),
                             daemon=True).start()
        with MemorySampler(proc.pid) as sampler:
            # In a thread of its own: a caller may already run an event loop in this one (pytest with
            # Playwright's sync API does), and asyncio.run refuses to nest.
            try:
                with ThreadPoolExecutor(1) as pool:
                    results = pool.submit(asyncio.run, drive(url, sessions, query, timeout_s, stagger_s, traces)).result()
            finally:
                tracing.set()
            wall = time.monotonic() - started
            time.sleep(settle_s)  # the closed sessions' state is dropped after the TTL above
        after = tree_rss_bytes(proc.pid)
        after_server = tree_rss_bytes(proc.pid, descendants=False)
        server_alive = proc.poll() is None
    finally:
        stop_server(proc)
    times = [r.seconds_to_result for r in results if r.ok]
    pages = [r.seconds_to_page for r in results if r.seconds_to_page is not None]
    return {
        "sessions": sessions,
        "failed": sum(not r.ok for r in results) + (0 if server_alive else sessions),
        "errors": [f"session {r.index}: {r.error}" for r in results if not r.ok],
        "median_s": statistics.median(times) if times else float("nan"),
        "p95_s": percentile(times, 95) if times else float("nan"),
        "max_s": max(times) if times else float("nan"),
        "wall_s": wall,
        "page_median_s": statistics.median(pages) if pages else float("nan"),
        "page_max_s": max(pages) if pages else float("nan"),
        "baseline_mib": baseline / 2**20,
        "peak_mib": sampler.peak / 2**20,
        "after_mib": after / 2**20,
        "server_baseline_mib": baseline_server / 2**20,
        "server_peak_mib": sampler.peak_server / 2**20,
        "server_after_mib": after_server / 2**20,
        "epochs": epochs,
        "example_row": next((r.row for r in results if r.ok), []),
    }


def markdown(fig: dict, command: str) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {os.cpu_count()} cores · "
            f"load average after {load:.1f} · {fig['sessions']} sessions · GMF {fig['epochs']} epochs")
    rows = [
        ("sessions that failed", f"{fig['failed']} of {fig['sessions']}"),
        ("link opened -> Train page shown, median / slowest (s)", f"{fig['page_median_s']:.1f} / {fig['page_max_s']:.1f}"),
        ("Train -> recommendation read, median (s)", f"{fig['median_s']:.1f}"),
        ("Train -> recommendation read, 95th percentile (s)", f"{fig['p95_s']:.1f}"),
        ("Train -> recommendation read, slowest (s)", f"{fig['max_s']:.1f}"),
        ("all sessions done (s)", f"{fig['wall_s']:.1f}"),
        ("server memory before (MiB, server + workers)", f"{fig['baseline_mib']:.0f}"),
        ("server memory peak (MiB)", f"{fig['peak_mib']:.0f}"),
        ("server memory after all sessions closed (MiB)", f"{fig['after_mib']:.0f}"),
        ("server process alone: before / peak / after (MiB)",
         f"{fig['server_baseline_mib']:.0f} / {fig['server_peak_mib']:.0f} / {fig['server_after_mib']:.0f}"),
    ]
    lines = [head, "", f"`{command}`", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += [f"- {e}" for e in fig["errors"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=30, help="browser sessions at once (default 30)")
    parser.add_argument("--quick", action="store_true", help="4 sessions (the CI form)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the GMF each session trains")
    parser.add_argument("--workers", type=int, default=None, help="NCF_WORKERS for the server (default: its own)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds a session may wait at any one step before it counts as failed (default 900)")
    parser.add_argument("--write", action="store_true", help="append the figures to benchmarks/results_serve.md")
    parser.add_argument("--trace", action="store_true", help="print jobs, steps and frames per page every 10 s")
    args = parser.parse_args()
    sessions = 4 if args.quick else args.sessions
    fig = run_load_test(sessions=sessions, epochs=args.epochs, workers=args.workers, timeout_s=args.timeout,
                        trace=args.trace)
    text = markdown(fig, "python " + " ".join(["benchmarks/load_test.py", *sys.argv[1:]]))
    print(text)
    if fig["example_row"]:
        print("first recommendation row of a session:", fig["example_row"])
    if args.write:
        with open(ROOT / "benchmarks" / "results_serve.md", "a", encoding="utf-8") as f:
            f.write("\n" + text)
    sys.exit(1 if fig["failed"] else 0)


if __name__ == "__main__":
    main()
