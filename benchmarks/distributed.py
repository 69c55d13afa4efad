"""One job on many processes against one process: `torchrun --nproc_per_node N` on gloo, on this CPU.

    python benchmarks/distributed.py [--shapes synthetic ml1m] [--nprocs 1 2] [--ml1m-epochs 2]

For each data shape and process count it starts a real torchrun job running this file as a worker
(every rank trains through `ncf.train.train`, exactly as `torchrun -m ncf train` does; rank 0
evaluates) and prints one JSON line: samples/s of the whole job (all ranks' samples over the slowest
rank's training time), training seconds, wall seconds of the job, HR@10, and the speed-up over one
process. Shapes: the synthetic default (600 users, 400 items, 8 epochs) and ML-1M's
(`ncf.bench.ml1m_sized()`: 6,040 users, 3,706 items, ~1M interactions). The default NeuMF and its
resolved batch size, which in a job of many is per rank: N ranks take N times the batch per step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(shape: str, epochs: int | None) -> int:
    from ncf import distributed
    from ncf.bench import ml1m_sized
    from ncf.config import RunConfig, TrainConfig
    from ncf.data import leave_one_out, synthetic
    from ncf.train import train

    ctx = distributed.init("cpu")
    try:
        split = ml1m_sized() if shape == "ml1m" else leave_one_out(synthetic())
        cfg = RunConfig(train=TrainConfig(epochs=epochs, device="cpu"))
        result = train(cfg, split)
        if ctx.is_main:
            print(json.dumps({"samples_per_second": round(result.samples_per_second),
                              "train_seconds": round(result.train_seconds, 2), "hr@10": result.metrics.get("hr@10"),
                              "batch_size_per_rank": result.train_config.batch_size}), flush=True)
    finally:
        distributed.shutdown()
    return 0


def job(n: int, shape: str, epochs: int | None) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    cmd = [*launcher, "--nproc_per_node", str(n), "--master_addr", "127.0.0.1", "--master_port", str(port),
           __file__, "--worker", "--shape", shape]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    start = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode:
        raise SystemExit(f"the {n}-process job failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    row = json.loads([line for line in p.stdout.splitlines() if line.startswith("{")][-1])
    return {"shape": shape, "processes": n, "epochs": epochs or 8, **row, "wall_seconds": round(wall, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="*", default=["synthetic", "ml1m"], choices=["synthetic", "ml1m"])
    p.add_argument("--nprocs", nargs="*", type=int, default=[1, 2])
    p.add_argument("--ml1m-epochs", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.shape, args.epochs)

    import torch

    print(json.dumps({"machine": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0)),
                      "torch": torch.__version__, "python": platform.python_version()}), flush=True)
    for shape in args.shapes:
        base = None
        for n in args.nprocs:
            row = job(n, shape, args.ml1m_epochs if shape == "ml1m" else None)
            base = base or row["samples_per_second"]
            row["speedup"] = round(row["samples_per_second"] / base, 2)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
