"""EmbeddingNN with and without side features, and cold-start users (minutes, not a test).

    NCF_DATA_DIR=/work/shared/data python benchmarks/features.py [--data ml-100k] [--seeds 0,1,2]
        [--parts explicit,implicit,cold] [--json OUT]

Three comparisons, each over the seeds given (model initialisation, sampling and split all seeded):

- explicit: EmbeddingNN (fastbook's recipe: 5 epochs, one-cycle at 5e-3, wd 0.1, batch 512) on a
  random 80/20 split of the ratings, ids only against ids plus every side feature the source has;
  test MSE overall and by the training ratings of the test case's user (0, 1-5, 6-20, 21-100, >100);
- implicit: the same two on He et al.'s leave-one-out split (latest item ranked against 99 sampled
  unseen ones), the implicit recipe (8 epochs, 4 negatives, batch 4096); HR@10 overall and by bucket;
- cold: 20% of the users held out completely (ncf.data.split.cold_start); every one of their
  interactions ranked against 99 items they never interacted with: EmbeddingNN with features
  (implicit objective), with and without id dropout (--id-dropout, default 0.5), against most-popular. An ids-only EmbeddingNN falls back to most-popular
  there (ncf.evaluate.cold_start_model), so most-popular is its figure.

Metrics are computed once, after the last epoch (eval_every = epochs); train_s is the trainer's own
clock, evaluation excluded, so "time with / without features" is the training cost of the features.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ncf.config import ModelConfig, RunConfig, TrainConfig  # noqa: E402
from ncf.data import load, make_split  # noqa: E402
from ncf.device import available_cores  # noqa: E402
from ncf.evaluate import by_activity  # noqa: E402
from ncf.train import train  # noqa: E402

EPOCHS = {"explicit": 5, "implicit": 8}


def fit(ds, kind: str, objective: str, features: tuple, seed: int, model: str = "embnn",
        id_dropout: float = 0.0) -> dict:
    split = make_split(ds, kind, seed=seed, test_fraction=0.2)
    epochs = EPOCHS[objective]
    cfg = RunConfig(model=ModelConfig(model=model, objective=objective, features=features, id_dropout=id_dropout),
                    train=TrainConfig(seed=seed, epochs=epochs, eval_every=epochs, device="cpu"))
    if model == "pop":
        cfg = cfg.replace(model=ModelConfig(model="pop", objective=objective), train=TrainConfig(seed=seed))
    start = time.perf_counter()
    result = train(cfg, split)
    rows = by_activity(result.model, split)
    label = ("all" if features else "none") + (f", id dropout {id_dropout:g}" if id_dropout else "")
    return {"kind": kind, "objective": objective, "model": model, "features": label,
            "seed": seed, **{k: round(v, 4) for k, v in result.metrics.items()},
            "train_s": round(result.train_seconds, 2), "wall_s": round(time.perf_counter() - start, 1),
            "by_activity": rows}


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(rows: list[dict], metric: str, group: str = "users") -> list[str]:
    """Markdown: one line per (model, features), the metric overall and per bucket, mean ± sd over seeds."""
    keys = sorted({(r["model"], r["features"]) for r in rows}, key=lambda k: (k[0] != "embnn", k[1]))
    buckets = [b for b in ("0 (cold)", "1-5", "6-20", "21-100", "over 100")
               if any(x["group"] == group and x["bucket"] == b for r in rows for x in r["by_activity"])]
    counts = {b: next(x["n_test"] for r in rows for x in r["by_activity"] if x["group"] == group and x["bucket"] == b)
              for b in buckets}
    head = ["model", "features", f"{metric} overall", *[f"{b} (n={counts[b]})" for b in buckets], "train s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, features in keys:
        mine = [r for r in rows if (r["model"], r["features"]) == (model, features)]
        cells = [model, features, mean_sd([r[metric] for r in mine])]
        for b in buckets:
            cells.append(mean_sd([x[metric] for r in mine for x in r["by_activity"]
                                  if x["group"] == group and x["bucket"] == b]))
        times = [r["train_s"] for r in mine]
        cells.append("-" if model == "pop" else f"{statistics.mean(times):.1f}")
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="ml-100k")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--parts", default="explicit,implicit,cold")
    p.add_argument("--id-dropout", type=float, default=0.5, help="the cold part also trains EmbeddingNN with "
                   "this id dropout (0: not)")
    p.add_argument("--json", help="write every row (with its per-bucket metrics) to this file")
    args = p.parse_args()
    os.environ.setdefault("NCF_DATA_DIR", "/work/shared/data")
    ds = load(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = args.parts.split(",")
    rows: list[dict] = []

    def log(row: dict) -> None:
        rows.append(row)
        shown = {k: v for k, v in row.items() if k != "by_activity"}
        print(json.dumps(shown), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))

    for seed in seeds:
        for features in ((), ("all",)):
            if "explicit" in parts:
                log(fit(ds, "ratio", "explicit", features, seed))
            if "implicit" in parts:
                log(fit(ds, "leave_one_out", "implicit", features, seed))
        if "cold" in parts:
            log(fit(ds, "cold_users", "implicit", ("all",), seed))
            if args.id_dropout:
                log(fit(ds, "cold_users", "implicit", ("all",), seed, id_dropout=args.id_dropout))
            log(fit(ds, "cold_users", "implicit", (), seed, model="pop"))
    print(f"\n{ds.name}; seeds {args.seeds}; {platform.processor() or platform.machine()}, "
          f"{available_cores()} cores, load {os.getloadavg()[0]:.1f}\n")
    for kind, metric, group in (("ratio", "mse", "users"), ("leave_one_out", "hr@10", "users"),
                                ("leave_one_out", "hr@10", "items"), ("cold_users", "hr@10", "users")):
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            print(f"{kind}: {metric} by the {group[:-1]}'s training interactions")
            print("\n".join(table(mine, metric, group)) + "\n")


if __name__ == "__main__":
    main()
