"""Training throughput against the two baselines in ncf/bench.py, over batch sizes, for every model.

    python benchmarks/throughput.py [--models neumf gmf ...] [--batch-sizes 256 2048 ...]
                                    [--seconds 1.0] [--quick] [--json OUT]

The data is an ML-1M-sized synthetic set (6,040 users, 3,706 items, ~1M interactions, leave-one-out),
NeuMF/GMF/MLP with 8 factors and tower 64,32,16,8, implicit with 4 negatives (EmbeddingNN and dot
product with their own defaults). Each line: samples/s of the trainer, of the plain vectorised loop,
their ratio (the robust figure: both measured in interleaved rounds in one process), and for NeuMF
the per-sample DataLoader baseline.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ncf.bench import BATCH_SIZES, MODELS, ml1m_sized, throughput  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--batch-sizes", nargs="*", type=int, default=list(BATCH_SIZES))
    p.add_argument("--dataloader-batch-sizes", nargs="*", type=int, default=[256, 2048, 8192])
    p.add_argument("--seconds", type=float, default=1.0, help="measuring time per contender and batch size")
    p.add_argument("--quick", action="store_true", help="small data, short measurements (a few seconds)")
    p.add_argument("--json", help="write all rows to this file")
    args = p.parse_args()

    split = None if args.quick else ml1m_sized()
    rows = []

    def show(row: dict) -> None:
        extra = ""
        if "dataloader_samples_per_second" in row:
            extra = (f"  dataloader {row['dataloader_samples_per_second']:>10,.0f}/s"
                     f"  x{row['speedup_vs_dataloader']:.1f}")
        print(f"{row['model']:6s} batch {row['batch_size']:>6}  ncf {row['samples_per_second']:>10,.0f}/s  "
              f"plain {row['plain_samples_per_second']:>10,.0f}/s  x{row['speedup_vs_plain']:.2f}{extra}", flush=True)

    for model in args.models:
        rows += throughput(model, args.batch_sizes, split=split, seconds=args.seconds, quick=args.quick,
                           dataloader_batch_sizes=args.dataloader_batch_sizes, progress=show)
    if args.json:
        machine = {"machine": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__}
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
