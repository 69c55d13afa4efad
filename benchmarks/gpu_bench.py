"""GPU throughput at NVIDIA's scale: ML-20M-shaped data drawn on the device, NeuMF trained by the
trainer's own `Fitter` at batch 2^20 (and at a small batch, where launches dominate), each with the
step eager and recorded as a CUDA graph; plus evaluation time. One JSON object per line on stdout.

    python benchmarks/gpu_bench.py [--quick] [--compile]

samples/s counts one whole epoch: drawing its negatives, shuffling, and every step, timed after a
first epoch that warms up (and, for the graph, captures). Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ncf.config import PRESETS, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from ncf.data.split import Split  # noqa: E402
from ncf.data.synthetic import SHAPES, shaped  # noqa: E402
from ncf.evaluate import evaluate, full_ranking_metrics  # noqa: E402
from ncf.models import build_model  # noqa: E402
from ncf.train import Fitter, resolve_train_config  # noqa: E402

MAX_STEPS = None  # --quick caps every variant
NVIDIA_A100_TF32 = 22.59e6  # samples/s, DeepLearningExamples NCF README, ML-20M, one A100, TF32


def quick_split(ds, n_negatives: int = 99, seed: int = 0) -> Split:
    """Each user's first interaction (in id order) held out with 99 random candidates: a leave-one-out
    shape in O(n), for timing only (candidates may include seen items)."""
    first = np.r_[0, np.flatnonzero(np.diff(ds.user)) + 1]
    keep = np.ones(len(ds.user), dtype=bool)
    keep[first] = False
    rng = np.random.default_rng(seed)
    negatives = rng.integers(0, ds.n_items, (len(first), n_negatives))
    return Split(kind="leave_one_out", dataset=ds, train_user=ds.user[keep], train_item=ds.item[keep],
                 train_rating=None, test_user=ds.user[first], test_item=ds.item[first], test_rating=None,
                 test_negatives=negatives, seed=seed)


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the CPU only to smoke-test this script


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def measure(split: Split, model_cfg: ModelConfig, train_kw: dict, max_steps: int | None = None,
            compile_model: bool = False) -> dict:
    torch.manual_seed(0)
    cfg = RunConfig(model=model_cfg, train=TrainConfig(device=DEVICE, **train_kw))
    tcfg = resolve_train_config(cfg, split)
    model = build_model(model_cfg, split.n_users, split.n_items)
    fitter = Fitter(model, split, tcfg, torch.device(DEVICE))
    if compile_model:
        fitter.model = torch.compile(fitter.model)
    steps = fitter.steps_per_epoch(tcfg.batch_size)
    if max_steps or MAX_STEPS:
        steps = min(steps, max_steps or MAX_STEPS)
    out = {}
    for epoch in (1, 2):
        sync()
        t0 = time.perf_counter()
        users, items, target = fitter.epoch_data()
        sync()
        prep = time.perf_counter() - t0
        loss = None
        n = 0
        for s in range(steps):
            b = slice(s * tcfg.batch_size, (s + 1) * tcfg.batch_size)
            loss = fitter.step(users[b], items[b], target[b])
            n += len(users[b])
        sync()
        total = time.perf_counter() - t0
        out[f"epoch{epoch}"] = {"seconds": round(total, 3), "prep_seconds": round(prep, 3), "steps": steps,
                                "samples": n, "samples_per_second": round(n / total), "loss": float(loss)}
    fitter.finish()
    out["samples_per_second"] = out["epoch2"]["samples_per_second"]
    return out, fitter.model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="ML-1M's shape only (a smoke test)")
    ap.add_argument("--compile", action="store_true", help="also torch.compile the model (slow to start)")
    args = ap.parse_args()
    gpu = torch.cuda.get_device_name() if DEVICE == "cuda" else "none (CPU smoke test)"
    print(json.dumps({"gpu": gpu, "torch": torch.__version__}), flush=True)
    torch.backends.cuda.matmul.allow_tf32 = True  # as NVIDIA's figure (TF32)
    torch.backends.cudnn.allow_tf32 = True

    shape = "ml-1m" if args.quick else "ml-20m"
    if args.quick:  # a smoke test: a few steps of each variant
        global MAX_STEPS
        MAX_STEPS = 3
    t0 = time.perf_counter()
    ds = shaped(*SHAPES[shape], device=DEVICE)
    split = quick_split(ds)
    print(json.dumps({"data": shape, "interactions": int(ds.n_interactions), "users": ds.n_users,
                      "items": ds.n_items, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)

    default = ModelConfig(model="neumf")  # 32 factors, tower 128,64,32
    large = PRESETS["large-batch"].apply(RunConfig()).model
    large_train = {k: v for k, v in PRESETS["large-batch"].train.items() if k != "epochs"}
    plain_large = {"optimizer": "adam", "lr": 0.0045, "betas": (0.25, 0.5), "weight_decay": 0.0,
                   "one_cycle": False, "batch_size": 1 << 20}
    runs = [
        ("default NeuMF, batch 2^20", default, plain_large),
        ("large-batch preset NeuMF (64 f, 256,256,128,64, dropout 0.5)", large, large_train),
    ]
    model = None
    for name, mcfg, kw in runs:
        for graph in (False, True):
            try:
                res, model = measure(split, mcfg, {**kw, "cuda_graph": graph})
                res["vs_nvidia_a100_tf32"] = round(res["samples_per_second"] / NVIDIA_A100_TF32, 2)
            except Exception as e:  # a variant that fails is reported, the others still run
                res = {"error": f"{type(e).__name__}: {e}"[:400]}
            print(json.dumps({"run": name, "cuda_graph": graph, **res}), flush=True)
    # Small batches, where a step is launch-bound: the default recipe's shape, 300 steps.
    for graph in (False, True):
        try:
            res, _ = measure(split, default, {"batch_size": 4096, "optimizer": "adamw", "lr": 0.01,
                                              "weight_decay": 0.1, "one_cycle": False, "cuda_graph": graph},
                             max_steps=300)
        except Exception as e:
            res = {"error": f"{type(e).__name__}: {e}"[:400]}
        print(json.dumps({"run": "default NeuMF, batch 4096 (300 steps)", "cuda_graph": graph, **res}), flush=True)
    if args.compile:
        try:
            res, _ = measure(split, default, {**plain_large}, compile_model=True)
        except Exception as e:
            res = {"error": f"{type(e).__name__}: {e}"[:400]}
        print(json.dumps({"run": "default NeuMF, batch 2^20, torch.compile", **res}), flush=True)
    if model is not None:
        sync()
        t = time.perf_counter()
        sampled = evaluate(model, split, full=False)
        sync()
        t_sampled = time.perf_counter() - t
        sample = np.random.default_rng(0).choice(len(split.test_user), size=min(20_000, len(split.test_user)),
                                                 replace=False)
        t = time.perf_counter()
        full = full_ranking_metrics(model, split.train_user, split.train_item, split.test_user[sample],
                                    split.test_item[sample])
        sync()
        print(json.dumps({"evaluation": "sampled, every user", "users": len(split.test_user),
                          "seconds": round(t_sampled, 2), **sampled}), flush=True)
        print(json.dumps({"evaluation": "full ranking", "users": len(sample),
                          "seconds": round(time.perf_counter() - t, 2), **full}), flush=True)


if __name__ == "__main__":
    main()
