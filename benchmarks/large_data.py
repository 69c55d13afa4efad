"""Large data on one machine: ML-20M-, ML-25M- and ML-32M-shaped ratings, end to end.

    python benchmarks/large_data.py [--shapes ml-20m ml-25m ml-32m] [--scale 1.0] [--epoch-fraction 1.0]
                                    [--step-seconds 8] [--json OUT] [--keep]

For each shape a ratings.csv in ml-25m's columns (userId,movieId,rating,timestamp) is generated:
the shape's users and items, long-tailed item popularity, half-star ratings 0.5-5, timestamps. Then,
each in a fresh process so that its peak memory (VmHWM) is its own:
1. parse: `ncf.data.load` of the CSV, writing the parsed cache;
2. run: reload from the cache, leave-one-out split, one epoch of the default NeuMF recipe (or
   --epoch-fraction of one, the epoch's time extrapolated from its samples/s and said so), then
   evaluation timed alone: sampled HR@10 for every user, full ranking on a seeded sample of users
   (its size printed beside it).
Before those, in this one process, the cost per training sample of a step of the default NeuMF at
ML-1M's shape and at each shape's (tables of that size, batch 4096, the optimizer the trainer
picks), measured in interleaved rounds: the ratio is the figure that holds on a busy machine.
Finally the memory check's verdict on 100M interactions on this machine. `--scale 0.01` runs the
same in a few minutes. Generated files go to a temporary folder.
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
sys.path.insert(0, str(ROOT))

# (users, items, ratings) of the releases
SHAPES = {"ml-20m": (138_493, 26_744, 20_000_263), "ml-25m": (162_541, 59_047, 25_000_095),
          "ml-32m": (200_948, 84_432, 32_000_204)}

CHILD_PARSE = r"""
import json, sys, time
from ncf.data import load
t = time.perf_counter()
ds = load(sys.argv[1])
seconds = time.perf_counter() - t
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"parse_seconds": seconds, "parse_peak_bytes": hwm, "rows": ds.n_interactions}))
"""

CHILD_RUN = r"""
import json, sys, threading, time
import torch
from ncf.config import RunConfig, TrainConfig
from ncf.data import load, leave_one_out
from ncf.cli.progress import ProgressPrinter
from ncf.evaluate import evaluate
from ncf.events import Batch, Start
from ncf.train import train, resolve_train_config
source, fraction = sys.argv[1], float(sys.argv[2])
out = {}
t = time.perf_counter()
ds = load(source)
out["reload_seconds"] = time.perf_counter() - t
out.update(users=ds.n_users, items=ds.n_items, rows=ds.n_interactions)
t = time.perf_counter()
split = leave_one_out(ds)
out["split_seconds"] = time.perf_counter() - t
stop = threading.Event()
cfg = RunConfig(train=TrainConfig(epochs=1))
out["batch_size"] = resolve_train_config(cfg, split).batch_size
marks = {}
log = ProgressPrinter("neumf")  # the CLI's own progress: a line every 10 s where stderr is a log
def on_event(e):
    now = time.perf_counter()
    if isinstance(e, Start):
        out["row_wise_embeddings"] = e.row_wise_embeddings
        out["steps_per_epoch"] = e.steps_per_epoch
        marks["start"] = now
    if isinstance(e, Batch):
        marks.setdefault("first", (now, e.step))
        marks["last"] = (now, e.step)
    if isinstance(e, Batch) and e.step >= fraction * e.steps and fraction < 1:
        stop.set()
    log(e)
t = time.perf_counter()
result = train(cfg, split, on_event=on_event, stop=stop)
out["train_call_seconds"] = time.perf_counter() - t
out["samples_per_second"] = result.samples_per_second
# An epoch: drawing its samples (start to the first batch event) plus its steps at the rate measured
# between the first and the last batch event.
(t1, s1), (t2, s2) = marks["first"], marks["last"]
out["sampling_seconds"] = t1 - marks["start"]
out["step_seconds_per_step"] = (t2 - t1) / max(1, s2 - s1)
out["epoch_seconds"] = out["sampling_seconds"] + out["steps_per_epoch"] * out["step_seconds_per_step"]
out["epoch_measured_fraction"] = s2 / out["steps_per_epoch"]
out["step_samples_per_second"] = out["batch_size"] / out["step_seconds_per_step"]
t = time.perf_counter()
metrics = evaluate(result.model, split, k=10, full=True)
out["eval_seconds"] = time.perf_counter() - t
out["metrics"] = metrics
out["peak_bytes"] = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps(out))
"""


def write_ratings_csv(path: Path, n_users: int, n_items: int, rows: int, seed: int = 0) -> None:
    """Distinct (user, item) pairs: users in disjoint blocks per chunk (so pairs stay distinct across
    chunks), item popularity long-tailed (item ~ n * U^2.5: popular first), half stars, timestamps."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    chunk = 4_000_000
    n_chunks = -(-rows // chunk)
    per_chunk_users = -(-n_users // n_chunks)
    with open(path, "wb") as f:
        for k in range(n_chunks):
            want = min(chunk, rows - k * chunk)
            rng = np.random.default_rng(seed + k)
            lo = k * per_chunk_users
            hi = min(n_users, lo + per_chunk_users)
            draw = int(want * 2) + 1000
            user = rng.integers(lo, hi, draw) + 1
            item = (n_items * rng.random(draw) ** 2.5).astype(np.int64) + 1
            _, first = np.unique(user * (n_items + 1) + item, return_index=True)
            if len(first) < want:
                raise SystemExit(f"could not draw {want:,} distinct pairs in chunk {k}")
            keep = np.sort(rng.permutation(first)[:want])
            table = pa.table({"userId": user[keep], "movieId": item[keep], "rating": rng.integers(1, 11, want) / 2,
                              "timestamp": rng.integers(789_652_009, 1_700_000_000, want)})
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=k == 0, quoting_style="none"))


def child(code: str, *args: str, cache: Path) -> dict:
    env = dict(os.environ, NCF_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_costs(shapes: dict[str, tuple[int, int]], seconds: float) -> dict[str, float]:
    """Seconds per sample of a default-NeuMF step at each catalogue shape, interleaved in one process."""
    import torch

    from ncf.device import configure_threads
    from ncf.scaling import compare_step_costs, step_fitter

    configure_threads()
    fitters = {name: step_fitter(u, i) for name, (u, i) in shapes.items()}
    costs = compare_step_costs(fitters, seconds=seconds, rounds=6)
    for name, (fitter, _) in fitters.items():
        print(f"  step {name:<7} {'row-wise' if fitter.rowwise else 'dense':<8} {costs[name] * 1e6:6.2f} us/sample  "
              f"{costs[name] / costs['ml-1m']:.2f}x ML-1M  ({torch.get_num_threads()} thread)", flush=True)
    return costs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply users and ratings by this, items by its square root (0.01: a quick run)")
    p.add_argument("--epoch-fraction", type=float, default=1.0, help="train this share of the epoch, extrapolate")
    p.add_argument("--step-seconds", type=float, default=8.0, help="measuring time of the step-cost comparison")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    args = p.parse_args()

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, " \
              f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    print(f"machine: {machine}; scale {args.scale:g}; epoch fraction {args.epoch_fraction:g}", flush=True)
    from ncf.scaling import SHAPES as TABLES

    costs = step_costs({"ml-1m": TABLES["ml-1m"], **{s: TABLES[s] for s in args.shapes}}, args.step_seconds)
    results = {"machine": machine, "scale": args.scale, "epoch_fraction": args.epoch_fraction,
               "step_us_per_sample": {k: v * 1e6 for k, v in costs.items()},
               "step_ratio_vs_ml1m": {k: v / costs["ml-1m"] for k, v in costs.items()}, "shapes": {}}
    work = Path(tempfile.mkdtemp(prefix="ncf-large-"))
    try:
        for name in args.shapes:
            # Items scale by the square root, so that a small run keeps a sparse matrix like the real one.
            n_users, n_items, n_rows = SHAPES[name]
            users, items, rows = int(n_users * args.scale), int(n_items * args.scale ** 0.5), int(n_rows * args.scale)
            csv = work / f"{name}.csv"
            t = time.perf_counter()
            write_ratings_csv(csv, users, items, rows)
            print(f"{name}: {users:,} users, {items:,} items, {rows:,} ratings "
                  f"({csv.stat().st_size / 2**20:,.0f} MiB CSV, generated in {time.perf_counter() - t:.0f} s)", flush=True)
            cache = work / f"cache-{name}"
            r = child(CHILD_PARSE, str(csv), cache=cache)
            print(f"  parse + cache   {r.get('parse_seconds', float('nan')):7.1f} s  "
                  f"peak {r.get('parse_peak_bytes', 0) / 2**30:.2f} GiB", flush=True)
            run = child(CHILD_RUN, str(csv), str(args.epoch_fraction), cache=cache)
            r.update(run)
            if "error" not in run:
                m = run["metrics"]
                said = "" if run["epoch_measured_fraction"] > 0.99 else \
                    f" (extrapolated from {run['epoch_measured_fraction']:.0%} of it)"
                print(f"  reload (cache)  {run['reload_seconds']:7.2f} s   split {run['split_seconds']:.1f} s", flush=True)
                print(f"  one epoch       {run['epoch_seconds']:7.0f} s{said}: sampling {run['sampling_seconds']:.0f} s, "
                      f"steps {run['step_samples_per_second']:,.0f} samples/s  batch {run['batch_size']}  "
                      f"row-wise {run['row_wise_embeddings']}", flush=True)
                full_n = int(m.get("full_users", run["users"]))
                print(f"  evaluation      {run['eval_seconds']:7.1f} s  HR@10 {m.get('hr@10', 0):.3f} (all "
                      f"{run['users']:,} users)  full Recall@10 {m.get('full_recall@10', 0):.4f} "
                      f"(full ranking on {full_n:,} users)", flush=True)
                print(f"  peak memory     {run['peak_bytes'] / 2**30:7.2f} GiB", flush=True)
            else:
                print(f"  run failed: {run['error']}", flush=True)
            results["shapes"][name] = {"users": users, "items": items, "ratings": rows, **r}
            csv.unlink()
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    from ncf.errors import ConfigError
    from ncf.memory import PARSE_BYTES_PER_FILE_BYTE, available_bytes, check_pipeline_fits, pipeline_bytes

    # 100M interactions at about ML-32M's catalogue: the split and the training after it (load_split's
    # check), and the parse of its CSV (load_file's check; ~27 bytes a row in ml-25m's columns).
    need = pipeline_bytes(100_000_000, 200_000, 87_000)
    parse = PARSE_BYTES_PER_FILE_BYTE * 27 * 100_000_000
    avail = available_bytes() or 0
    verdicts = {}
    for label, budget in (("available now", None), ("an 8 GiB budget", 8 * 2**30)):
        try:
            check_pipeline_fits(100_000_000, 200_000, 87_000, available=budget)
            verdicts[label] = "fits"
        except ConfigError as e:
            verdicts[label] = str(e)
    print(f"100M interactions, 4 negatives: parse ~{parse / 2**30:.1f} GiB; split and training ~{need / 2**30:.1f} GiB "
          f"beyond the data; {avail / 2**30:.1f} GiB available now", flush=True)
    for label, verdict in verdicts.items():
        print(f"  with {label}: {verdict}", flush=True)
    results["100m"] = {"pipeline_bytes": need, "parse_bytes": parse, "available_bytes": avail, "verdicts": verdicts}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
