"""`python -m ncf bench`: training throughput against the baselines."""

from __future__ import annotations

import sys

from ncf.cli.common import fmt, int_list, print_json, table


def cmd_bench(args) -> int:
    from ncf.bench import throughput

    wanted = {"model": args.model, "quick": args.quick or None, "device": args.device, "seconds": args.seconds,
              "progress": _bench_progress}
    if args.batch_sizes:
        wanted["batch_sizes"] = int_list(args.batch_sizes, "Batch sizes")
    rows = throughput(**{k: v for k, v in wanted.items() if v is not None})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    print(table(rows, columns))
    if args.json:
        # The configuration asked: the model's fastest batch size (the only one when one was given).
        asked = [r for r in rows if r.get("model") in (args.model, None)] or rows
        best = max(asked, key=lambda r: r.get("samples_per_second") or 0) if asked else {}
        print_json({**best, "model": best.get("model", args.model), "results": rows})
    return 0


def _bench_progress(row: dict) -> None:
    print("  ".join(f"{k} {fmt(v)}" for k, v in row.items()), file=sys.stderr, flush=True)


def add_parser(sub) -> None:
    from ncf import registry

    b = sub.add_parser("bench", help="training throughput against the baselines")
    b.add_argument("--model", choices=[*registry.names(gradient=True), "all"], default="neumf",
                   help="a model fitted by gradient descent, or all of them")
    b.add_argument("--batch-sizes", help="e.g. 2048,8192 (default: the benchmark's sweep)")
    b.add_argument("--device", help="auto (default), cpu, cuda or mps")
    b.add_argument("--seconds", type=float, help="measuring time per configuration")
    b.add_argument("--quick", action="store_true", help="small data, short measurements (seconds in all)")
    b.add_argument("--json", action="store_true", help="last line: one JSON object with samples_per_second")
    b.set_defaults(func=cmd_bench)
