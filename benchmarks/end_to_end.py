"""`ncf train` end to end against the plain vectorised loop, in one process.

    NCF_DATA_DIR=../shared/data python benchmarks/end_to_end.py [--data ml-1m] [--batch-size 2048]
                                                                [--epochs 2] [--rounds 3] [--json OUT]

`ncf train` is the CLI itself (`ncf.cli.main(["train", ..., "--json"])`), default recipe (NeuMF, 32
factors, tower 128,64,32, 4 negatives excluding seen items, AdamW wd 0.1, one-cycle) at the given
batch size; its figure is what its --json reports as samples_per_second: sampling, steps and events,
evaluation excluded. The plain loop trains the same model on the same split, as plain PyTorch code
writes it: nn.Embedding look-ups, concatenations, torch.optim.AdamW (lr 0.01, wd 0.1) over all
parameters, uniform negatives drawn with one randint a epoch, a randperm shuffle, batches sliced; its
figure counts the same things (each epoch's sampling and its steps). The two alternate for --rounds
rounds; the median ratio is the figure (the machine is shared, absolute rates swing).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ncf.bench import plain_forward, stock_embeddings  # noqa: E402
from ncf.cli import main as cli_main  # noqa: E402
from ncf.config import DataConfig, ModelConfig  # noqa: E402
from ncf.device import configure_threads  # noqa: E402
from ncf.jobs import load_split  # noqa: E402
from ncf.models import build_model  # noqa: E402


def ncf_train(data: str, batch_size: int, epochs: int, out: str) -> float:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code = cli_main(["train", "--data", data, "--batch-size", str(batch_size), "--epochs", str(epochs),
                         "--out", out, "--json"])
    if code != 0:
        raise SystemExit(f"ncf train failed ({code}): {buf.getvalue()[-500:]}")
    return json.loads(buf.getvalue().strip().splitlines()[-1])["samples_per_second"]


def plain_train(split, batch_size: int, epochs: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    model = stock_embeddings(build_model(ModelConfig(), split.n_users, split.n_items))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    g = torch.Generator().manual_seed(seed)
    pos_u = torch.as_tensor(split.train_user, dtype=torch.long)
    pos_i = torch.as_tensor(split.train_item, dtype=torch.long)
    samples, seconds = 0, 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        users = torch.cat([pos_u, pos_u.repeat(4)])
        items = torch.cat([pos_i, torch.randint(0, split.n_items, (len(pos_u) * 4,), generator=g)])
        target = torch.cat([torch.ones(len(pos_u)), torch.zeros(len(pos_u) * 4)])
        perm = torch.randperm(len(users), generator=g)
        users, items, target = users[perm], items[perm], target[perm]
        for lo in range(0, len(users), batch_size):
            s = slice(lo, lo + batch_size)
            loss = F.binary_cross_entropy_with_logits(plain_forward(model, users[s], items[s]), target[s])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - start
        samples += len(users)
    return samples / seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="ml-1m")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args()
    threads = configure_threads()
    split = load_split(DataConfig(source=args.data))
    print(f"{args.data}: {split.n_users:,} users, {split.n_items:,} items, {split.n_train:,} training pairs; "
          f"batch {args.batch_size}, {args.epochs} epochs a run, {threads} thread(s)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.rounds):
            ncf = ncf_train(args.data, args.batch_size, args.epochs, out)
            plain = plain_train(split, args.batch_size, args.epochs)
            rows.append({"ncf": ncf, "plain": plain, "ratio": ncf / plain})
            print(f"round {r + 1}: ncf train {ncf:,.0f} samples/s  plain loop {plain:,.0f} samples/s  "
                  f"x{ncf / plain:.2f}", flush=True)
    ratio = float(np.median([row["ratio"] for row in rows]))
    print(f"median ncf train / plain loop: x{ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": platform.platform(), "threads": threads,
                                               "batch_size": args.batch_size, "rounds": rows, "median_ratio": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
