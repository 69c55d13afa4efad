"""`python -m ncf sweep` (a grid of train runs) and `python -m ncf search` (an Optuna study):
both take the train command's flags, parsed once per run."""

from __future__ import annotations

import argparse
import threading

from ncf.cli import train as train_cmd
from ncf.cli.common import fmt, int_list, optional_path, print_json, stop_on_interrupt, table
from ncf.cli.train import config_from_args
from ncf.errors import ConfigError


def _train_parser() -> argparse.ArgumentParser:
    """The train command's parser alone: every run of a sweep or search is parsed as `train FLAGS`."""
    p = argparse.ArgumentParser(prog="python -m ncf")
    train_cmd.add_parser(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return p


def cmd_sweep(args) -> int:
    """A grid of `train` runs: every flag may take a comma list; the grid is their product."""
    from ncf.data import load_split
    from ncf.experiments import expand, run_sweep
    from ncf.runs import save_run

    rest = list(args.flags)
    want_json = "--json" in rest
    rest = [a for a in rest if a != "--json"]
    seeds = list(int_list(args.seeds, "Seeds")) if args.seeds else None
    points = expand(rest, seeds)
    parser = _train_parser()
    configs = []
    for point in points:  # every configuration is checked before the first run starts
        run_args = parser.parse_args(["train", *point.argv])
        if run_args.resume:
            raise ConfigError("A sweep starts fresh runs; --resume is for one run at a time.")
        cfg = config_from_args(run_args)
        if not cfg.name:
            label = " ".join(f"{k}={v}" for k, v in point.values.items())
            cfg = cfg.replace(name=f"sweep {label}".strip())
        configs.append((point, cfg))
    out = optional_path(run_args.out) if points else None
    swept = list(points[0].values) if points else []
    columns = ["#", "model", *[c for c in swept if c != "model"], "hr@10", "ndcg@10", "full_recall@10", "seconds"]
    print(f"sweep: {len(points)} run(s){' over ' + ', '.join(swept) if swept else ''}", flush=True)
    done: list[dict] = []

    def on_start(i, point, cfg) -> None:
        print(f"run {i + 1}/{len(points)}: {cfg.model.model} " + " ".join(f"{k}={v}" for k, v in point.values.items()),
              flush=True)

    def on_row(row: dict) -> None:
        done.append({"#": len(done) + 1, **row, "seconds": f"{row['seconds']:.1f}"})
        print(table(done, columns).splitlines()[-1] if len(done) > 1 else table(done, columns), flush=True)

    stop = threading.Event()
    with stop_on_interrupt(stop):
        rows = run_sweep(configs, load_split=load_split, stop=stop, on_start=on_start, on_row=on_row,
                         save=lambda result, cfg, split: save_run(result, cfg, split, name=cfg.name, models_dir=out))
    if stop.is_set():
        print(f"sweep stopped after {len(rows)} of {len(points)} run(s)", flush=True)
    _sweep_notes(rows, configs, args.chart, swept)
    if want_json:
        print_json({"runs": rows})
    return 0


def cmd_search(args) -> int:
    """An Optuna study over ranges of train flags, chosen on the validation hold-out."""
    from ncf.data import load_split
    from ncf.runs import save_run
    from ncf.search import OBJECTIVE, Range, run_search

    rest = [a for a in args.flags if a != "--json"]
    want_json = "--json" in args.flags
    ranges = [Range.parse(p) for p in args.param or []]
    parser = _train_parser()

    def make_config(values: dict):
        argv = [*rest]
        for flag, value in values.items():
            argv += [f"--{flag.replace('_', '-')}", str(value)]
        if "--validation" not in argv:
            argv.append("--validation")
        cfg = config_from_args(parser.parse_args(["train", *argv]))
        return cfg.replace(name=cfg.name or "search " + " ".join(f"{k}={fmt(v)}" for k, v in values.items()))

    # A bad flag or range fails here, before any training.
    if ranges:
        make_config({r.flag: (r.choices[0] if r.choices else (int(r.low) if r.integer else r.low)) for r in ranges})
    out = optional_path(parser.parse_args(["train", *rest]).out)
    print(f"search: {args.trials} trial(s) over {', '.join(r.flag for r in ranges)}, chosen on {OBJECTIVE} "
          "(the validation hold-out; test items are not read until the end)", flush=True)

    def on_trial(t) -> None:
        settings = "  ".join(f"{k} {fmt(v)}" for k, v in t.values.items())
        print(f"trial {t.number}: {settings}  {OBJECTIVE} {t.val_hr:.4f}", flush=True)

    stop = threading.Event()
    with stop_on_interrupt(stop):
        result = run_search(ranges, args.trials, make_config, load_split=load_split, seed=args.seed,
                            on_trial=on_trial, stop=stop,
                            save=lambda r, cfg, split: save_run(r, cfg, split, name=cfg.name, models_dir=out))
    if result.best is not None:
        b = result.best
        print(f"chosen: trial {b.number} ({', '.join(f'{k}={fmt(v)}' for k, v in b.values.items())}), "
              f"{OBJECTIVE} {b.val_hr:.4f}; run {b.run}")
        print("its test figures, read once now: " + "  ".join(f"{k} {fmt(v)}" for k, v in b.test_metrics.items()))
    if want_json:
        print_json(result.summary())
    return 0


def _sweep_notes(rows: list[dict], configs: list, chart: str | None, swept: list[str]) -> None:
    """What to read beside a sweep's table: where the two kinds of metric disagree, the published
    figures on the same protocol, and the chart when asked for."""
    from ncf.experiments import orderings_disagree
    from ncf.reference import PROTOCOL, published_for

    if len({r["model"] for r in rows}) > 1 and orderings_disagree(rows):
        print("note: sampled HR@10 and full-ranking Recall@10 order these models differently; the sampled "
              "metric ranks each held-out item against 99 random items only (Krichene and Rendle, KDD 2020)")
    published = published_for(configs[0][1].data, configs[0][1].train.k) if configs else []
    if published:
        print(f"published on the same protocol ({PROTOCOL}; not measured here):")
        for p in published:
            at = f" at {p.factors} factors" if p.factors else ""
            print(f"  {p.label}{at}: HR@10 {p.hr:.3f}, NDCG@10 {p.ndcg:.3f}  [{p.source}]")
    if chart and rows:
        from ncf.plots import sweep_chart

        x = next((c for c in swept if c not in ("model", "seed")), "seed")
        sweep_chart(rows, x, "hr@10", published=published).write_html(chart, include_plotlyjs=True)
        print(f"chart written to {chart}")


def add_parser(sub) -> None:
    sw = sub.add_parser("sweep", help="a grid of train runs: flags take comma lists, the grid is their product",
                        description="Every train flag may take a comma list of values (--layers and other "
                        "list-valued flags separate alternatives with '/'); the runs are the product, each "
                        "saved like a train run. Example: python -m ncf sweep --data ml-100k --model gmf,mlp,neumf "
                        "--factors 8,16,32,64. With --json the last line is {\"runs\": [...]}.")
    sw.add_argument("--seeds", help="seeds to repeat each setting with, e.g. 0,1,2")
    sw.add_argument("--chart", metavar="FILE.html", help="write HR@10 against the swept setting as an HTML chart")
    sw.set_defaults(func=cmd_sweep)

    se = sub.add_parser("search", help="an Optuna study over ranges of train flags, chosen on validation items",
                        description="Trials sample the --param ranges (TPE, seeded); each trains with the other "
                        "train flags given and a validation hold-out, and the study maximises validation HR@10. "
                        "Example: python -m ncf search --data ml-100k --trials 20 --param factors=8:64:log "
                        "--param lr=0.001:0.05:log")
    se.add_argument("--param", action="append", metavar="NAME=LOW:HIGH[:log] or NAME=A|B",
                    help="a train flag and its range, e.g. factors=8:64:log, lr=1e-3:1e-1:log, model=gmf|neumf")
    se.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    se.add_argument("--seed", type=int, default=0, help="the sampler's seed (each trial trains with --data-seed etc.)")
    se.set_defaults(func=cmd_search)
