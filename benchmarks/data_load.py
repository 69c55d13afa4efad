"""Load times of the data layer, and the peak memory of a 25M-row load.

    python benchmarks/data_load.py [--rows 25000000] [--keep]

Each figure is measured in a fresh subprocess (so the peak resident memory, `ru_maxrss`, is that
load's alone). Sources: the real ML-100k in ../shared/data when present, generated files in
GroupLens' ML-1M layout (1,000,209 rows, '::'), and a generated ratings CSV of --rows rows,
parsed and then reloaded from the parsed cache. Generated files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
from ncf.data import load
t = time.perf_counter()
ds = load(sys.argv[1], use_cache=sys.argv[2] == "cache")
seconds = time.perf_counter() - t
# The parsed cache is memory-mapped: also time one pass over every array, so that a reload is not
# credited with reading it has merely put off.
for arr in (ds.user, ds.item, ds.rating, ds.timestamp):
    if arr is not None:
        arr.sum()
touched = time.perf_counter() - t
# ru_maxrss (KiB on Linux) survives exec, so it can include the parent's peak; VmHWM is this
# process's own high-water mark. Report both, and use the process's own.
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
hwm = next((int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")), maxrss)
print(json.dumps({"seconds": seconds, "seconds_with_one_pass": touched, "peak_bytes": hwm, "ru_maxrss_bytes": maxrss, "rows": ds.n_interactions,
                  "users": ds.n_users, "items": ds.n_items}))
"""


def measure(source: str, cache_dir: Path, use_cache: bool) -> dict:
    env = dict(os.environ, NCF_CACHE_DIR=str(cache_dir), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHILD, source, "cache" if use_cache else "nocache"],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratings(rows: int, n_users: int, n_items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`rows` distinct (user, item) pairs like MovieLens': long-tailed item popularity, half stars."""
    rng = np.random.default_rng(seed)
    draw = int(rows * 1.3) + 1000
    user = rng.integers(1, n_users + 1, draw)
    item = (n_items * rng.random(draw) ** 2.5).astype(np.int64) + 1  # popular items first
    _, first = np.unique(user * (n_items + 1) + item, return_index=True)
    if len(first) < rows:
        raise SystemExit(f"could not draw {rows:,} distinct pairs from {n_users:,} x {n_items:,}")
    keep = rng.permutation(first)[:rows]
    return {
        "user": user[keep],
        "item": item[keep],
        "rating": rng.integers(1, 11, rows) / 2,  # half stars 0.5..5
        "timestamp": rng.integers(789_652_009, 1_574_327_703, rows),
    }


def write_csv(path: Path, rows: int) -> None:
    """A ratings.csv like ml-25m's (userId,movieId,rating,timestamp), written by pyarrow in chunks."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    chunk = 5_000_000
    n_chunks = -(-rows // chunk)
    users_per_chunk = 162_541 // n_chunks + 1
    with open(path, "wb") as f:
        for k, start in enumerate(range(0, rows, chunk)):
            # each chunk has its own users, so pairs stay distinct across chunks
            cols = ratings(min(chunk, rows - start), users_per_chunk, 59_047, seed=k)
            cols["user"] = cols["user"] + k * users_per_chunk
            table = pa.table({"userId": cols["user"], "movieId": cols["item"], "rating": cols["rating"],
                              "timestamp": cols["timestamp"]})
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=start == 0, quoting_style="none"))


def write_ml1m_layout(folder: Path) -> None:
    folder.mkdir(parents=True)
    cols = ratings(1_000_209, 6_040, 3_952)
    lines = np.char.add(np.char.add(cols["user"].astype(str), "::"), cols["item"].astype(str))
    lines = np.char.add(np.char.add(lines, "::"), np.ceil(cols["rating"]).astype(int).astype(str))
    lines = np.char.add(np.char.add(lines, "::"), cols["timestamp"].astype(str))
    (folder / "ratings.dat").write_text("\n".join(lines.tolist()) + "\n")
    (folder / "movies.dat").write_bytes("".join(f"{i}::Film {i} (1999)::Drama|Comédie\n"
                                                for i in range(1, 3953)).encode("latin-1"))
    (folder / "users.dat").write_text("".join(f"{u}::F::25::{u % 21}::55455\n" for u in range(1, 6041)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=25_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ncf-data-bench-"))
    results = []

    def record(label: str, source: str, use_cache: bool, cache: Path):
        r = measure(source, cache, use_cache)
        results.append({"source": label, **r})
        print(f"{label:<52} {r['rows']:>12,} rows {r['seconds']:>7.2f} s ({r['seconds_with_one_pass']:.2f} s with one "
              f"pass over the arrays)  peak {r['peak_bytes'] / 2**30:5.2f} GiB"
              f" (ru_maxrss {r['ru_maxrss_bytes'] / 2**30:.2f})", flush=True)

    try:
        shared = ROOT.parent / "shared" / "data" / "ml-100k"
        if shared.is_dir():
            record("ML-100k (real, u.data folder), parse", str(shared), False, work / "c0")
        write_ml1m_layout(work / "ml-1m")
        record("ML-1M-sized ('::' ratings.dat folder), parse", str(work / "ml-1m"), False, work / "c1")
        csv_path = work / "ratings.csv"
        t = time.perf_counter()
        write_csv(csv_path, args.rows)
        print(f"(generated {csv_path.stat().st_size / 2**20:,.0f} MiB CSV in {time.perf_counter() - t:.1f} s)")
        label = f"{args.rows / 1e6:g}M-row ratings.csv"
        record(f"{label}, parse", str(csv_path), False, work / "c2")
        record(f"{label}, parse + write the parsed cache", str(csv_path), True, work / "c2")
        record(f"{label}, reload from the parsed cache", str(csv_path), True, work / "c2")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(json.dumps({"machine": f"{platform.processor() or platform.machine()}, {cpus} CPUs, {mem:.0f} GiB",
                      "python": platform.python_version(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
