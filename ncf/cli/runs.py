"""`python -m ncf runs`: list saved runs, or delete some (the server operator's clean-up)."""

from __future__ import annotations

from ncf.cli.common import fmt, optional_path, print_json, table


def cmd_runs(args) -> int:
    from ncf.runs import delete_run, list_runs

    if args.delete:  # the operator's clean-up: the app lets a session delete only its own runs
        for run_id in args.delete:
            delete_run(run_id, models_dir=optional_path(args.out))
            print(f"deleted run {run_id}")
        return 0
    infos = list_runs(optional_path(args.out))
    if args.json:
        print_json([{k: getattr(i, k, None) for k in ("id", "name", "path", "created", "config", "metrics",
                                                        "train_seconds", "device", "error")} for i in infos])
        return 0
    if not infos:
        print("no saved runs yet: train one with  python -m ncf train --data synthetic")
        return 0
    rows = []
    for info in infos:
        if info.error:
            rows.append({"id": info.id, "name": info.name or "", "model": "REFUSED", "created": "",
                         "result": info.error})
            continue
        config = info.config or {}
        model = (config.get("model") or {}).get("model", "?")
        source = (config.get("data") or {}).get("source", "?")
        metrics = info.metrics or {}
        shown = [f"{k} {fmt(metrics[k])}" for k in ("hr@10", "ndcg@10", "rmse") if k in metrics]
        seconds = f"{info.train_seconds:.1f}s" if info.train_seconds is not None else ""
        epochs = "" if info.epochs is None else f"{info.epochs}{' (stopped)' if info.stopped else ''}"
        rows.append({"id": info.id, "name": info.name or "", "model": model, "data": source, "epochs": epochs,
                     "created": str(info.created or "")[:19].replace("T", " "), "result": "  ".join(shown),
                     "time": seconds})
    print(table(rows, ["id", "name", "model", "data", "created", "epochs", "time", "result"]))
    return 0


def add_parser(sub) -> None:
    ls = sub.add_parser("runs", help="list saved runs (refused folders with their reason)")
    ls.add_argument("--out", help="folder of saved runs (default: $NCF_MODELS_DIR or ./models)")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--delete", nargs="+", metavar="RUN_ID", help="delete these saved runs (for the server's operator)")
    ls.set_defaults(func=cmd_runs)
