"""A MovieLens-25M-shaped data folder and a briefly trained run on it, for timing the app's pages at scale.

    python benchmarks/app_large.py DIR [--shape ml-25m] [--scale 1.0] [--steps 300]

Writes DIR/data/<shape>/ratings.csv (benchmarks/large_data.py's generator: the release's users, items
and ratings, long-tailed popularity, half stars, timestamps) and a movies.csv (made-up titles with a
year and genres; a few 'Star Wars' titles among the popular items, for the search), parses it into
DIR/cache, splits it as the app's defaults do (leave-one-out, 99 negatives), trains the default
NeuMF for `--steps` steps of its first epoch (the pages' speed is what is measured, not the model's
quality) and saves the run in DIR/models. Then, for benchmarks/page_times.py:

    NCF_DATA_DIR=DIR/data NCF_CACHE_DIR=DIR/cache NCF_MODELS_DIR=DIR/models \\
        python benchmarks/page_times.py RUN_ID --large
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")


def write_movies_csv(path: Path, n_items: int, seed: int = 0) -> None:
    """movieId,title,genres for ids 1..n_items: 'Film 123 (1987)', one to three genres; items 3, 10, 40, 200
    and 1000 (popular: the generator's popularity falls with the id) are Star Wars episodes."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_items + 1)
    years = rng.integers(1920, 2020, n_items)
    titles = [f"Film {i} ({y})" for i, y in zip(ids, years, strict=True)]
    for episode, i in enumerate((3, 10, 40, 200, 1000), start=1):
        if i <= n_items:
            titles[i - 1] = f"Star Wars: Episode {'I' * episode if episode < 4 else ['IV', 'V'][episode - 4]} ({years[i - 1]})"
    first = rng.integers(0, len(GENRES), n_items)
    second = rng.integers(0, len(GENRES), n_items)
    genres = [GENRES[a] if b == a or r < 0.4 else f"{GENRES[a]}|{GENRES[b]}"
              for a, b, r in zip(first, second, rng.random(n_items), strict=True)]
    pd.DataFrame({"movieId": ids, "title": titles, "genres": genres}).to_csv(path, index=False)


def main() -> int:
    from large_data import SHAPES, write_ratings_csv

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--shape", default="ml-25m", choices=list(SHAPES))
    p.add_argument("--scale", type=float, default=1.0, help="users and ratings times this, items its square root")
    p.add_argument("--steps", type=int, default=300, help="training steps before the run is stopped and saved")
    args = p.parse_args()

    root = args.dir.resolve()
    os.environ["NCF_DATA_DIR"] = str(root / "data")
    os.environ["NCF_CACHE_DIR"] = str(root / "cache")
    os.environ["NCF_MODELS_DIR"] = str(root / "models")
    folder = root / "data" / args.shape
    folder.mkdir(parents=True, exist_ok=True)
    n_users, n_items, n_rows = SHAPES[args.shape]
    users, items, rows = int(n_users * args.scale), int(n_items * args.scale ** 0.5), int(n_rows * args.scale)
    t = time.perf_counter()
    if not (folder / "ratings.csv").exists():
        write_ratings_csv(folder / "ratings.csv", users, items, rows)
        write_movies_csv(folder / "movies.csv", items)
    print(f"{args.shape}: {users:,} users, {items:,} items, {rows:,} ratings written in {time.perf_counter() - t:.0f} s",
          flush=True)

    from ncf.config import DataConfig, RunConfig, TrainConfig
    from ncf.data import load, load_split
    from ncf.events import to_dict
    from ncf.runs import save_run
    from ncf.train import train

    t = time.perf_counter()
    ds = load(args.shape)
    print(f"parsed (and cached) in {time.perf_counter() - t:.1f} s: {ds.n_interactions:,} interactions", flush=True)
    del ds
    cfg = RunConfig(data=DataConfig(source=args.shape), train=TrainConfig(epochs=1), name=f"{args.shape} brief")
    t = time.perf_counter()
    split = load_split(cfg.data)
    print(f"split in {time.perf_counter() - t:.1f} s: {split.n_train:,} training interactions", flush=True)
    stop = threading.Event()

    def on_event(event) -> None:
        e = to_dict(event)  # the fit's events are typed (ncf.events); their JSON form is a dict
        if e.get("event") == "batch" and e.get("step", 0) >= args.steps:
            stop.set()
        if e.get("event") in ("start", "epoch", "done"):
            print(f"  {e.get('event')} {json.dumps({k: v for k, v in e.items() if k != 'metrics'})[:200]}", flush=True)

    t = time.perf_counter()
    result = train(cfg, split, on_event=on_event, stop=stop)
    print(f"trained (stopped after about {args.steps} steps) and evaluated in {time.perf_counter() - t:.0f} s: "
          f"{ {k: round(v, 4) for k, v in (result.metrics or {}).items() if isinstance(v, float)} }", flush=True)
    t = time.perf_counter()
    run = save_run(result, cfg, split)
    print(f"saved in {time.perf_counter() - t:.1f} s as run {run.id}", flush=True)
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    print(f"peak memory {hwm / 2**20:.2f} GiB", flush=True)
    print(run.id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
