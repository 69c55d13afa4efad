"""EmbeddingNN with and without side features, and cold-start users (minutes, not a test).

    NCF_DATA_DIR=/work/shared/data python benchmarks/features.py [--data ml-100k] [--seeds 0,1,2]
        [--parts explicit,implicit,cold,time] [--json OUT]

Four comparisons, each over the seeds given (model initialisation, sampling and split all seeded):

- explicit: EmbeddingNN (fastbook's recipe: 5 epochs, one-cycle at 5e-3, wd 0.1, batch 512) on a
  random 80/20 split of the ratings, ids only against ids plus every side feature the source has;
  test MSE overall and by the training ratings of the test case's user (0, 1-5, 6-20, 21-100, >100);
- implicit: the same two on He et al.'s leave-one-out split (latest item ranked against 99 sampled
  unseen ones), the implicit recipe (8 epochs, 4 negatives, batch 4096); HR@10 overall and by bucket;
- cold: 20% of the users held out completely (ncf.data.split.cold_start); every one of their
  interactions ranked against 99 items they never interacted with: EmbeddingNN with features
  (implicit objective), with and without id dropout (--id-dropout, default 0.5), against most-popular. An ids-only EmbeddingNN falls back to most-popular
  there (ncf.evaluate.cold_start_model), so most-popular is its figure;
- time: the explicit and implicit recipes above with the time features (hour, weekday, years since
  release; each interaction's own for training, the user's last training interaction's for the test):
  ids only, ids + time, user/item features, user/item features + time. Reports the training-time
  ratio of each with time against the same without;
- timing: one epoch of the trainer's own loop (ncf.train.Fitter: the epoch's negatives and shuffle,
  then every step, batch contexts included), for the four feature sets above, interleaved and repeated
  (--repeats), the fastest of each kept, wall and CPU time: on a shared machine a single run's time
  swings by 2x with the load, the fastest of several does not.

"all" in the first three is the user and item features only (the time features came later and are
measured in their own part, so the older figures keep their meaning).

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


TIME = ("hour", "weekday", "years_since_release")


def static_features(ds) -> tuple[str, ...]:
    """The source's user and item features ("all" before the time features existed)."""
    from ncf.data.features import FEATURES, available

    return tuple(n for n in available(ds) if n not in FEATURES or FEATURES[n][0] != "context")


def label_of(features: tuple, static: tuple) -> str:
    if not features:
        return "none"
    has_static = bool(set(features) & set(static))
    has_time = bool(set(features) & set(TIME))
    return "all" if has_static and not has_time else "time" if not has_static else "all + time"


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
    label = label_of(features, static_features(ds)) + (f", id dropout {id_dropout:g}" if id_dropout else "")
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
    p.add_argument("--parts", default="explicit,implicit,cold,time")
    p.add_argument("--id-dropout", type=float, default=0.5, help="the cold part also trains EmbeddingNN with "
                   "this id dropout (0: not)")
    p.add_argument("--repeats", type=int, default=5, help="timing: epochs per feature set (the fastest is kept)")
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

    static = static_features(ds)
    if "timing" in parts:
        timings = time_epochs(ds, static, args.repeats)
        print("one epoch of the trainer's loop, the fastest of", args.repeats, "(wall s, CPU s; ratio to the same "
              "without time)")
        for t in timings:
            base = next(x for x in timings if x["objective"] == t["objective"]
                        and x["features"] == ("none" if t["features"] in ("none", "time") else "all"))
            print(f"  {t['objective']:8s} {t['features']:10s} batch {t['batch_size']:5d} {t['samples']:,} samples: "
                  f"{t['wall_s']:.2f} s wall ({t['wall_s'] / base['wall_s']:.2f}x), {t['cpu_s']:.2f} s CPU "
                  f"({t['cpu_s'] / base['cpu_s']:.2f}x)", flush=True)
        if args.json:
            Path(args.json).with_suffix(".timing.json").write_text(json.dumps(timings, indent=1))
    for seed in seeds:
        for features in ((), static):
            if "explicit" in parts:
                log(fit(ds, "ratio", "explicit", features, seed))
            if "implicit" in parts:
                log(fit(ds, "leave_one_out", "implicit", features, seed))
        if "time" in parts:  # each pair with and without time run back to back: the load drifts less between
            for base in ((), static):
                for objective, kind in (("explicit", "ratio"), ("implicit", "leave_one_out")):
                    for features in (base, (*base, *TIME)):
                        if features == base and kind_done(rows, kind, objective, base, seed, static):
                            continue
                        log(fit(ds, kind, objective, features, seed))
        if "cold" in parts:
            log(fit(ds, "cold_users", "implicit", static, seed))
            if args.id_dropout:
                log(fit(ds, "cold_users", "implicit", static, seed, id_dropout=args.id_dropout))
            log(fit(ds, "cold_users", "implicit", (), seed, model="pop"))
    print(f"\n{ds.name}; seeds {args.seeds}; {platform.processor() or platform.machine()}, "
          f"{available_cores()} cores, load {os.getloadavg()[0]:.1f}\n")
    for kind, metric, group in (("ratio", "mse", "users"), ("leave_one_out", "hr@10", "users"),
                                ("leave_one_out", "hr@10", "items"), ("cold_users", "hr@10", "users")):
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            print(f"{kind}: {metric} by the {group[:-1]}'s training interactions")
            print("\n".join(table(mine, metric, group)) + "\n")
    if "time" in parts:
        print("time features: training time with / without (same seed, same data, back to back)")
        for kind in ("ratio", "leave_one_out"):
            for base in ("none", "all"):
                with_time = "time" if base == "none" else "all + time"
                pairs = [(r["train_s"], next(x["train_s"] for x in rows if x["kind"] == kind and x["seed"] == r["seed"]
                                             and x["features"] == base and x["model"] == "embnn"))
                         for r in rows if r["kind"] == kind and r["features"] == with_time]
                if pairs:
                    ratios = [a / b for a, b in pairs]
                    print(f"  {kind}: {with_time} / {base}: {statistics.mean(ratios):.2f}x "
                          f"(per seed {', '.join(f'{x:.2f}' for x in ratios)})")


def time_epochs(ds, static: tuple, repeats: int) -> list[dict]:
    """The fastest of `repeats` epochs of Fitter's loop per (objective, features), interleaved."""
    import torch

    from ncf.data.features import for_split
    from ncf.device import configure_threads
    from ncf.train import Fitter, resolve_train_config

    configure_threads()  # as train() does: one thread on a small CPU box, so CPU time is the step's time
    plans = []
    for objective, kind in (("explicit", "ratio"), ("implicit", "leave_one_out")):
        split = make_split(ds, kind, seed=0, test_fraction=0.2)
        for features in ((), TIME, static, (*static, *TIME)):
            cfg = RunConfig(model=ModelConfig(model="embnn", objective=objective, features=features),
                            train=TrainConfig(seed=0, epochs=1, device="cpu"))
            model_cfg, fs = for_split(cfg.model, split)
            plans.append((objective, label_of(features, static), cfg.replace(model=model_cfg), fs, split))
    best: dict = {}
    for _ in range(repeats):
        for objective, label, cfg, fs, split in plans:
            from ncf.models import build_model

            torch.manual_seed(0)
            tcfg = resolve_train_config(cfg, split)
            fitter = Fitter(build_model(cfg.model, split.n_users, split.n_items, fs), split, tcfg, torch.device("cpu"))
            wall, cpu = time.perf_counter(), time.thread_time()
            users, items, target = fitter.epoch_data()
            for step in range(fitter.steps_per_epoch(tcfg.batch_size)):
                batch = slice(step * tcfg.batch_size, (step + 1) * tcfg.batch_size)
                fitter.step(users[batch], items[batch], target[batch], fitter.batch_context(batch))
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            key = (objective, label)
            old = best.get(key, {"wall_s": float("inf"), "cpu_s": float("inf")})
            best[key] = {"objective": objective, "features": label, "batch_size": tcfg.batch_size,
                         "samples": fitter.samples_per_epoch, "wall_s": round(min(old["wall_s"], wall), 3),
                         "cpu_s": round(min(old["cpu_s"], cpu), 3)}
    return list(best.values())


def kind_done(rows: list[dict], kind: str, objective: str, features: tuple, seed: int, static: tuple) -> bool:
    """Whether the explicit/implicit parts already ran this configuration (the time part reuses it)."""
    label = label_of(features, static)
    return any(r["kind"] == kind and r["objective"] == objective and r["features"] == label and r["seed"] == seed
               and r["model"] == "embnn" for r in rows)


if __name__ == "__main__":
    main()
