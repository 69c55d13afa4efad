"""The leave-one-out split at a release's shape: the original algorithm against today's, and the kept split read back.

    python benchmarks/split_time.py [--shape ml-25m] [--csv PATH] [--rounds 2] [--cache DIR]

A ratings.csv of the shape is generated (benchmarks/large_data.py's generator) unless --csv names one,
and parsed into the cache once. Then, in this one process on the same loaded data, interleaved
rounds of the original split (kept as the reference in tests/data/test_split_reference.py) and
today's `leave_one_out`, without and with the validation hold-out, each checked array for array
against the other. Finally fresh processes: the first draws the split and keeps it on disk
(`ncf.data.split_cache.cached_split`; kept splits in the cache folder are cleared first), the next ones
read it back, timed from interpreter start.
Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRESH = r"""
import json, sys, time
t0 = time.perf_counter()
from ncf.data import load
from ncf.data.split_cache import cached_split
ds = load(sys.argv[1])
t = time.perf_counter()
split = cached_split(ds, validation=True)
took = time.perf_counter() - t
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"cached_split_seconds": round(took, 2), "since_start_seconds": round(time.perf_counter() - t0, 2),
                  "train": split.n_train, "peak_gib": round(hwm / 2**30, 2)}))
"""


def main() -> int:
    from large_data import SHAPES, write_ratings_csv  # benchmarks/ is this script's folder

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="ml-25m")
    p.add_argument("--csv", type=Path, help="a ratings.csv to use (generated there when absent)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--cache", type=Path, help="NCF_CACHE_DIR for the parsed data and the kept split")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="split_time."))
    csv = args.csv or work / f"{args.shape}.csv"
    if not csv.exists():
        write_ratings_csv(csv, *SHAPES[args.shape])
    os.environ["NCF_CACHE_DIR"] = str(args.cache or work / "cache")

    import numpy as np

    from ncf.data import leave_one_out, load
    from tests.data.test_split_reference import FIELDS, reference_leave_one_out

    ds = load(str(csv))
    print(json.dumps({"users": ds.n_users, "items": ds.n_items, "rows": ds.n_interactions}), flush=True)
    for validation in (False, True):
        for r in range(args.rounds):
            t = time.perf_counter()
            old = reference_leave_one_out(ds, validation=validation)
            old_s = time.perf_counter() - t
            t = time.perf_counter()
            new = leave_one_out(ds, validation=validation)
            new_s = time.perf_counter() - t
            same = all((old.get(f) is None and getattr(new, f) is None)
                       or np.array_equal(old.get(f), getattr(new, f)) for f in FIELDS)
            print(json.dumps({"validation": validation, "round": r, "original_seconds": round(old_s, 1),
                              "today_seconds": round(new_s, 1), "identical": same,
                              "load": os.getloadavg()[0]}), flush=True)
            del old, new
    from ncf.data.split_cache import splits_dir

    shutil.rmtree(splits_dir(), ignore_errors=True)  # so that the first fresh process draws and keeps it
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FRESH, str(csv)], cwd=ROOT, capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
        print(out.strip(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
