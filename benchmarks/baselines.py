"""The classical baselines on real MovieLens data: quality and fit time (minutes, not a test).

    NCF_DATA_DIR=/work/shared/data python benchmarks/baselines.py [--data ml-100k ml-1m]
        [--models ease ials ...] [--neumf] [--validation] [--json OUT]

Every model of the registry that is not fitted by gradient descent (or those named), with its
defaults, on He et al.'s leave-one-out split (each user's latest interaction held out, ranked against
99 sampled unseen items; seed 0), the same split `python -m ncf train --data NAME` and
benchmarks/quality.py use. Per model: HR@10 and NDCG@10 (sampled), full-ranking Recall@10 and
NDCG@10 (every item the user has not trained on), fit seconds (`train_seconds`: the model's own
fit, evaluation excluded) and wall seconds (fit plus evaluation). `--neumf` adds NeuMF with the
default settings for comparison (minutes on ML-1M on a 2-core machine).

`--validation` measures on the validation hold-out instead (each user's second-latest interaction,
the test items set aside entirely): how the defaults in ncf/registry.py were chosen.

NOTE: the shared ML-1M copy holds users 1-2999 only (ratings.users-1-2999.partial.dat, 487,650
ratings, 3,615 items), not all 6,040 users.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ncf import registry  # noqa: E402
from ncf.config import ModelConfig, RunConfig  # noqa: E402
from ncf.data import leave_one_out  # noqa: E402
from ncf.device import available_cores  # noqa: E402
from ncf.train import train  # noqa: E402


def load_split(name: str, validation: bool):
    from ncf.data import load

    os.environ.setdefault("NCF_DATA_DIR", "/work/shared/data")
    split = leave_one_out(load(name), seed=0, validation=validation)
    if not validation:
        return split
    # The validation pairs become the items to rank; the test items are in neither train nor test.
    return dataclasses.replace(split, test_user=split.valid_user, test_item=split.valid_item,
                               test_rating=split.valid_rating, test_negatives=split.valid_negatives,
                               valid_user=None, valid_item=None, valid_rating=None, valid_negatives=None)


def run(model: ModelConfig, split) -> dict:
    start = time.perf_counter()
    result = train(RunConfig(model=model), split)
    row = {"model": model.model, **{k: round(v, 4) for k, v in result.metrics.items()},
           "fit_s": round(result.train_seconds, 1), "wall_s": round(time.perf_counter() - start, 1)}
    if hasattr(result.model, "reg_used"):
        row["reg"] = float(result.model.reg_used)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="*", default=["ml-100k", "ml-1m"])
    p.add_argument("--models", nargs="*", default=list(registry.names(gradient=False)),
                   choices=list(registry.names()))
    p.add_argument("--neumf", action="store_true", help="also NeuMF with the default settings")
    p.add_argument("--validation", action="store_true", help="rank the validation hold-out, not the test items")
    p.add_argument("--json", help="write the rows to this file")
    args = p.parse_args()
    print(f"# {platform.node()}: {platform.processor() or platform.machine()}, {available_cores()} cores, "
          f"torch {torch.__version__}, {'validation hold-out' if args.validation else 'test items'}", flush=True)
    rows = []
    for name in args.data:
        split = load_split(name, args.validation)
        print(f"## {name}: {split.n_users:,} users, {split.n_items:,} items, {split.n_train:,} training pairs",
              flush=True)
        models = [ModelConfig(model=m) for m in args.models] + ([ModelConfig(model="neumf")] if args.neumf else [])
        for model in models:
            row = {"data": name, **run(model, split)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = ["data", "model", "hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10", "fit_s", "wall_s"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
