"""The Ray backend's cost per job against the embedded pool, in one process.

Starts a one-node Ray cluster on this machine (`ray start --head --num-cpus=1`, its own process
group, killed at the end), then runs the same tiny synthetic job (GMF, 8 factors, 1 epoch) through
both runners with one job at a time each: the embedded `JobRunner(max_workers=1)` and
`RayJobRunner(max_workers=1)`. Both are warmed up first (the pool spawns its worker, Ray starts a
worker process; both import torch); the cold first job is reported apart. The timed jobs alternate
between the backends, so a change of load on a shared machine hits both alike.

Per job: wall time from `submit` to the finished state read back from `job.json` (what a page
sees), and the time spent in `train()` (its `done` event's `elapsed`: data on the device,
epochs, evaluation). Both backends train with one torch thread (NCF_THREADS=1: the pool would
otherwise give its single worker both cores, which under load is several times slower and would
be measured as the pool's cost). The difference is the backend's
overhead; the ratio of the medians is the robust figure.

    python benchmarks/ray_overhead.py [--jobs 10] [--write]

`--write` appends the figures to benchmarks/results_serve.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from ncf.jobs import JobRunner, read_events  # noqa: E402


def tiny() -> RunConfig:
    return RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="gmf", factors=8),
                     train=TrainConfig(epochs=1, batch_size=1024, device="cpu"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(temp_dir: str) -> tuple[str, int]:
    """A one-node cluster with one CPU for jobs; returns its address and process group."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}", "--num-cpus=1",
         "--include-dashboard=false", "--object-store-memory=200000000", f"--temp-dir={temp_dir}",
         "--disable-usage-stats"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    out, _ = proc.communicate(timeout=180)
    if proc.returncode != 0:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit(f"ray start failed:\n{out[-3000:]}")
    return f"127.0.0.1:{port}", proc.pid


def one_job(runner, owner: str) -> tuple[float, float]:
    """(wall seconds from submit to finished, seconds the job trained)."""
    t0 = time.perf_counter()
    job_id = runner.submit(tiny(), owner=owner)
    st = runner.wait(job_id, timeout=300, poll=0.02)
    wall = time.perf_counter() - t0
    if st.state != "done":
        raise SystemExit(f"{type(runner).__name__}: job ended {st.state}: {st.error}")
    done = [e for e in read_events(runner.jobs_dir / job_id) if e.get("event") == "done"]
    trained = float(done[-1].get("elapsed", float("nan"))) if done else float("nan")
    return wall, trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10, help="timed jobs per backend")
    parser.add_argument("--write", action="store_true", help="append the figures to benchmarks/results_serve.md")
    args = parser.parse_args()

    os.environ["NCF_THREADS"] = "1"  # as a Ray task with 1 CPU gets
    temp_dir = tempfile.mkdtemp(prefix="ncf-ray-")
    address, pgid = start_head(temp_dir)
    models = Path(tempfile.mkdtemp(prefix="ncf-bench-runs-"))
    import ray

    from ncf.jobs.ray_backend import RayJobRunner

    try:
        pool = JobRunner(max_workers=1, models_dir=models / "pool")
        on_ray = RayJobRunner(address=address, max_workers=1, models_dir=models / "ray")
        runners = {"embedded pool": pool, "Ray": on_ray}
        cold = {name: one_job(r, "warm-up") for name, r in runners.items()}
        walls: dict[str, list[float]] = {name: [] for name in runners}
        trained: dict[str, list[float]] = {name: [] for name in runners}
        for i in range(args.jobs):
            for name, r in runners.items():
                wall, t = one_job(r, f"student-{i}")
                walls[name].append(wall)
                trained[name].append(t)
        for r in runners.values():
            r.shutdown(wait=True)
    finally:
        ray.shutdown()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
            time.sleep(3)
            os.killpg(pgid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
        shutil.rmtree(models, ignore_errors=True)

    load = os.getloadavg()[0]
    med = {name: statistics.median(v) for name, v in walls.items()}
    med_t = {name: statistics.median(v) for name, v in trained.items()}
    # Per job, what the backend added around train(): start, data loading, saving, reporting.
    outside = {name: statistics.median(w - t for w, t in zip(walls[name], trained[name], strict=True))
               for name in runners}
    lines = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.machine()} · {os.cpu_count()} cores · "
        f"load average after {load:.1f} · Ray {ray.__version__} · {args.jobs} jobs per backend",
        "",
        f"`python benchmarks/ray_overhead.py --jobs {args.jobs}`: GMF, 8 factors, 1 epoch on the synthetic data, "
        "one job at a time per backend, alternating, one torch thread each; a one-node Ray cluster on this "
        "machine (1 CPU for jobs).",
        "",
        "| backend | cold first job (s) | submit → done, median (s) | min / max (s) | in train(), median (s) "
        "| outside train(), median (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in runners:
        lines.append(f"| {name} | {cold[name][0]:.2f} | {med[name]:.2f} | {min(walls[name]):.2f} / "
                     f"{max(walls[name]):.2f} | {med_t[name]:.2f} | {outside[name]:.2f} |")
    overhead = outside["Ray"] - outside["embedded pool"]
    ratio = med["Ray"] / med["embedded pool"]
    lines += ["", f"Ray's overhead per job (outside train(), Ray minus pool): **{overhead:+.2f} s**; "
              f"submit → done, Ray / pool: **{ratio:.2f}x**.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(ROOT / "benchmarks" / "results_serve.md", "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
