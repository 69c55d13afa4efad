"""`python -m ncf evaluate`, `recommend` and `similar`: questions to a saved run."""

from __future__ import annotations

import time

from ncf.cli.common import fmt, load_run_arg, print_breakdown, print_json, table


def cmd_evaluate(args) -> int:
    run = load_run_arg(args.run)
    split = run.split()
    from ncf.evaluate import evaluate

    t0 = time.perf_counter()
    metrics = evaluate(run.model, split, k=args.k or run.config.train.k)
    seconds = time.perf_counter() - t0
    if args.json:
        print_json({**metrics, "run": str(run.path), "run_id": run.id, "eval_seconds": seconds})
    else:
        print(f"run {run.id} ({run.config.model.model}, {split.kind}): evaluated in {seconds:.2f}s")
        if metrics.get("popularity_fallback"):
            print("  (ids only on a cold-start split: the held-out cases are ranked by popularity)")
        for key, value in metrics.items():
            print(f"  {key:<16} {fmt(value)}")
    if args.by_activity:
        print_breakdown(run.model, split, args.k or run.config.train.k, args.json)
    return 0


def _print_frame(df, columns: list[str], as_json: bool) -> None:
    columns = [c for c in columns if c in df.columns]
    if as_json:
        print_json(df[columns].to_dict(orient="records"))
        return
    rows = df[columns].to_dict(orient="records")
    print(table([{"#": i + 1, **r} for i, r in enumerate(rows)], ["#", *columns]))


def cmd_recommend(args) -> int:
    run = load_run_arg(args.run)
    from ncf.explore import recommend

    df = recommend(run, args.user, k=args.k, exclude_seen=not args.include_seen)
    if not args.json:
        print(f"top {args.k} for user {args.user} from run {run.id} ({run.config.model.model}):")
    if "held_out" in df.columns and not args.json:
        df = df.assign(held_out=df["held_out"].map({True: "held out", False: ""}))
    _print_frame(df, ["item", "title", "genres", "score", "held_out"], args.json)
    return 0


def cmd_similar(args) -> int:
    run = load_run_arg(args.run)
    from ncf.explore import similar_items

    df = similar_items(run, args.item, k=args.k)
    if not args.json:
        print(f"items most similar to {args.item} in run {run.id} ({run.config.model.model}):")
    _print_frame(df, ["item", "title", "genres", "similarity"], args.json)
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="recompute a saved run's metrics")
    e.add_argument("run", help="run id or folder")
    e.add_argument("-k", type=int, help="cut-off (default: the run's)")
    e.add_argument("--by-activity", action="store_true", help="also the metrics by the training interactions of "
                   "each test case's user (0, 1-5, 6-20, 21-100, over 100) and item")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("recommend", help="top items for a user of a saved run")
    r.add_argument("run", help="run id or folder")
    r.add_argument("--user", required=True, help="raw user id as in the data")
    r.add_argument("-k", type=int, default=10)
    r.add_argument("--include-seen", action="store_true", help="also rank items the user trained on")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_recommend)

    s = sub.add_parser("similar", help="items closest to an item in a saved run's embedding space")
    s.add_argument("run", help="run id or folder")
    s.add_argument("--item", required=True, help="raw item id as in the data")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_similar)
