"""`python -m ncf {data,train,evaluate,recommend,similar,runs,bench}`.

Each command is a small function from parsed arguments to an exit code. Errors a user can cause
(`NCFError`) print one line, `error: <message>`, and exit with 2; anything else keeps its
traceback, because it is a bug. Heavy modules (torch) are imported inside the commands, after
the cheap checks, so a bad file or flag fails in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ncf.errors import ConfigError, NCFError

SPLITS = {"loo": "leave_one_out", "leave_one_out": "leave_one_out", "ratio": "ratio", "published": "published",
          "cold-users": "cold_users", "cold-items": "cold_items"}


# ---------------------------------------------------------------------------------------------
# Parsing helpers


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{what} are whole numbers separated by commas such as 64,32,16,8; got {text!r}.") from None
    if not values:
        raise ConfigError(f"{what} need at least one number, got {text!r}.")
    return values


def _float_list(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{what} are numbers separated by commas such as 0.9,0.999; got {text!r}.") from None


def parse_columns(text: str | None) -> dict[str, str | int] | None:
    """'user=userId,item=movieId,rating=2' -> {"user": "userId", "item": "movieId", "rating": 2}."""
    if not text:
        return None
    roles = ("user", "item", "rating", "timestamp")
    out: dict[str, str | int] = {}
    for part in text.split(","):
        role, sep, column = part.partition("=")
        role, column = role.strip(), column.strip()
        if not sep or role not in roles or not column:
            raise ConfigError(f"--columns takes role=column pairs with roles {', '.join(roles)} "
                              f"(for example user=userId,item=movieId); got {part!r}.")
        out[role] = int(column) if column.isdigit() else column
    return out


def _path(text: str | None):
    from pathlib import Path

    return None if text is None else Path(text)


def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _table(rows: list[dict], columns: list[str]) -> str:
    """A plain fixed-width table (no dependency, readable in any terminal or log)."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _print_json(obj) -> None:
    print(json.dumps(obj, default=_json_default))


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# ---------------------------------------------------------------------------------------------
# data


def download_bar(done: int, total: int | None) -> None:
    """A download's progress on stderr, one redrawn line (only where stderr is a terminal)."""
    if not sys.stderr.isatty():
        return
    mib = done / 2**20
    text = f"downloading {mib:,.1f} MiB" + (f" of {total / 2**20:,.1f} MiB ({done / total:.0%})" if total else "")
    sys.stderr.write("\r" + text + ("\n" if total and done >= total else ""))
    sys.stderr.flush()


def load_dataset(source: str, columns: dict | None = None):
    from ncf.data import load

    return load(source, columns=columns, progress=download_bar)


def parse_features(text: str | None) -> tuple[str, ...]:
    """'none' (or nothing) -> (); 'all' -> ("all",), resolved once the data is read; 'a,b' -> ("a", "b")."""
    from ncf.data.features import check_names

    if text is None or text.strip().lower() in ("", "none"):
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    names = ("all",) if names == ("all",) else names
    check_names(names)
    return names


def cmd_data(args) -> int:
    ds = load_dataset(args.source, parse_columns(args.columns))
    import ncf.data as data_mod
    from ncf.data.features import describe_available

    features = describe_available(ds)
    if args.json:
        _print_json({**ds.summary(), "features": features})
    elif hasattr(data_mod, "format_summary"):
        print(data_mod.format_summary(ds))
    else:
        s = ds.summary()
        print(f"{s['name']}: {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions "
              f"(density {s['density']:.2%}), ratings {s['ratings']}")
    if not args.json:
        if features:
            print("side features (train --features all, or a comma list of these):")
            print(_table(features, ["feature", "side", "kind", "categories", "description"]))
        else:
            print("side features: none (the source has no user or item attributes)")
    return 0


# ---------------------------------------------------------------------------------------------
# train


def train_overrides(args) -> dict:
    """The training settings given as flags (the rest keep their defaults, or a resumed run's)."""
    train_kw = {}
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("neg", "n_negatives"),
                      ("wd", "weight_decay"), ("optimizer", "optimizer"), ("seed", "seed"), ("device", "device"),
                      ("k", "k"), ("loss_reduction", "loss_reduction"), ("example_l2", "example_l2")):
        if getattr(args, flag, None) is not None:
            train_kw[key] = getattr(args, flag)
    if args.betas is not None:
        betas = tuple(float(b) for b in _float_list(args.betas, "Adam's betas"))
        if len(betas) != 2:
            raise ConfigError(f"--betas takes two numbers, beta1 and beta2 (such as 0.9,0.999); got {args.betas!r}.")
        train_kw["betas"] = betas
    if args.one_cycle:
        train_kw["one_cycle"] = True
    if args.exclude_seen:
        train_kw["exclude_seen"] = True
    if args.amp:
        train_kw["mixed_precision"] = True
    if args.no_cuda_graph:
        train_kw["cuda_graph"] = False
    return train_kw


def config_from_args(args):
    """The RunConfig the flags describe: the preset's settings (if any) under the flags given, and
    the dataclass defaults for everything else."""
    from ncf.config import PRESETS, ModelConfig, RunConfig, TrainConfig, apply_preset

    model_kw = {}
    for flag, key in (("model", "model"), ("objective", "objective"), ("factors", "factors"), ("alpha", "alpha"),
                      ("dropout", "dropout"), ("reg", "reg"), ("confidence", "confidence"),
                      ("iterations", "iterations"), ("neighbours", "neighbours"), ("similarity", "similarity"),
                      ("init_std", "init_std")):
        if getattr(args, flag, None) is not None:
            model_kw[key] = getattr(args, flag)
    if getattr(args, "global_bias", False):
        model_kw["global_bias"] = True
    if args.layers is not None:
        model_kw["layers"] = _int_list(args.layers, "Tower layers")
    if args.emb_sizes is not None:
        sizes = _int_list(args.emb_sizes, "Embedding sizes")
        if len(sizes) != 2:
            raise ConfigError(f"--emb-sizes takes two numbers, user and item (such as 74,101); got {args.emb_sizes!r}.")
        model_kw["emb_sizes"] = sizes
    if args.pretrain:
        model_kw["pretrain"] = True
    if getattr(args, "features", None) is not None:
        model_kw["features"] = parse_features(args.features)
    if getattr(args, "id_dropout", None) is not None:
        model_kw["id_dropout"] = args.id_dropout
    if args.batch_norm:
        model_kw["batch_norm"] = True

    data_kw = {"source": args.data, "columns": parse_columns(args.columns)}
    if args.split is not None:
        data_kw["split"] = SPLITS[args.split]
    if args.test_negatives is not None:
        data_kw["test_negatives"] = args.test_negatives
    if args.test_fraction is not None:
        data_kw["test_fraction"] = args.test_fraction
    if args.data_seed is not None:
        data_kw["seed"] = args.data_seed
    if args.validation:
        data_kw["validation"] = True
    cfg = apply_preset(RunConfig(name=args.name or ""), args.preset,
                       {"model": model_kw, "train": train_overrides(args), "data": data_kw})
    model = ModelConfig.from_dict(cfg.model.to_dict()).validate()
    train = TrainConfig.from_dict(cfg.train.to_dict()).validate()
    data = cfg.data
    if args.split is None and "split" not in (PRESETS[args.preset].data if args.preset else {}):
        data = data.replace(split="ratio" if model.resolved_objective == "explicit" else "leave_one_out")
    return RunConfig(data=data, model=model, train=train, name=cfg.name)


# Where stderr is a log (not a terminal), a plain progress line this often: a long run shows life.
LOG_EVERY_SECONDS = 10.0


class _Progress:
    """Turns trainer events into a progress line on stderr and one line per epoch on stdout. On a
    terminal the bar redraws at most 10 times a second; elsewhere (a log file, a pipe) a plain line
    is written every LOG_EVERY_SECONDS: stage, epoch, step, samples/s, ETA."""

    def __init__(self, model: str = "", stream=None, bar: bool | None = None, log_every: float = LOG_EVERY_SECONDS):
        self.model = model  # stages are named only when they differ from it (pre-training)
        self.err = stream or sys.stderr
        self.bar = self.err.isatty() if bar is None else bar
        self.log_every = log_every
        self.epochs = 0
        self._drawn = 0.0
        self._logged = time.monotonic()
        self._dirty = False

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self.epochs = event.get("epochs", self.epochs)
            stage = event.get("stage")
            print(f"training {stage or ''} on {event.get('device', '?')}: {event.get('n_train', 0):,} training "
                  f"pairs, {event.get('steps_per_epoch', '?')} steps per epoch".replace("  ", " "), flush=True)
        elif kind == "batch" and self.bar:
            now = time.monotonic()
            if now - self._drawn >= 0.1:
                self._drawn = now
                self._draw(event)
        elif kind == "batch":
            now = time.monotonic()
            if now - self._logged >= self.log_every:
                self._logged = now
                print(self.log_line(event), file=self.err, flush=True)
        elif kind == "epoch":
            self._clear()
            print(self.epoch_line(event), flush=True)

    def _draw(self, e: dict) -> None:
        steps, step = max(1, int(e.get("steps", 1))), int(e.get("step", 0))
        width = 24
        filled = int(width * step / steps)
        stage = f"[{e['stage']}] " if e.get("stage") not in (None, "", self.model) else ""
        line = (f"\r{stage}epoch {e.get('epoch', '?')}/{self.epochs} "
                f"[{'#' * filled}{'.' * (width - filled)}] {step}/{steps} loss {e.get('loss', float('nan')):.4f} "
                f"{e.get('samples_per_second', 0):,.0f}/s eta {e.get('eta', 0):.0f}s")
        self.err.write(line.ljust(100)[:120])
        self.err.flush()
        self._dirty = True

    def log_line(self, e: dict) -> str:
        return (f"progress: stage {e.get('stage') or self.model} epoch {e.get('epoch', '?')}/{self.epochs} "
                f"step {e.get('step', 0)}/{e.get('steps', '?')} {e.get('samples_per_second', 0):,.0f} samples/s "
                f"eta {e.get('eta', 0):.0f}s")

    def _clear(self) -> None:
        if self._dirty:
            self.err.write("\r" + " " * 120 + "\r")
            self.err.flush()
            self._dirty = False

    def epoch_line(self, e: dict) -> str:
        stage = f"[{e['stage']}] " if e.get("stage") not in (None, "", self.model) else ""
        parts = [f"{stage}epoch {e.get('epoch', '?')}/{self.epochs}"]
        if "train_loss" in e:  # models with their own fit report no loss
            parts.append(f"loss {e['train_loss']:.4f}")
        parts += [f"{k} {_fmt(v)}" for k, v in {**(e.get("info") or {}), **(e.get("metrics") or {})}.items()]
        parts.append(f"{e.get('elapsed', 0):.1f}s")
        if e.get("samples_per_second"):
            parts.append(f"{e['samples_per_second']:,.0f} samples/s")
        return "  ".join(parts)

    def close(self) -> None:
        self._clear()


# A source file this large gets a line before it is read: a parse of 25M rows takes ~20 s.
LOADING_LINE_BYTES = 50 << 20


def _say_loading(source: str) -> None:
    """A 'loading' line (stdout: stderr carries an error alone, in one line) before a large file."""
    path = Path(str(source)).expanduser()
    size = path.stat().st_size if path.is_file() else 0
    if size >= LOADING_LINE_BYTES:
        print(f"loading {path.name} ({size / 2**20:,.0f} MiB; parsed once, then read from the cache) ...",
              flush=True)


def cmd_train(args) -> int:
    """Trains and saves one run. Under torchrun (WORLD_SIZE > 1) this is one rank of a data-parallel job
    (ncf.distributed): every rank trains; rank 0 alone reports, saves and prints the summary."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):  # a single process: torch is not imported before the flags pass
        return _train_and_save(args)
    from ncf import distributed

    if args.resume is None:
        config_from_args(args)  # bad flags fail here, before joining the job
    ctx = distributed.init(args.device or "auto")
    try:
        with distributed.guard(ctx):
            code = _train_and_save(args, ctx)
            # Every rank leaves together: a rank tearing its process group down while rank 0 still
            # saves could abort in gloo's threads ("terminate called without an active exception").
            distributed.barrier()
            return code
    finally:
        distributed.shutdown()


def _distributed():
    from ncf import distributed

    return distributed


def _train_and_save(args, ctx=None) -> int:
    if args.resume:
        cfg, split, model = _resumed(args)
    else:
        cfg = config_from_args(args)  # bad flags fail here, before any data or torch is touched
    main = ctx is None or ctx.is_main
    if not args.resume:
        import contextlib

        from ncf.data import load_split

        t0 = time.perf_counter()
        if main:
            _say_loading(cfg.data.source)
        # A job of many: rank 0 downloads and caches, the others then read its cache. (A single process
        # imports no torch before its data has loaded: a bad file fails fast.)
        with contextlib.nullcontext() if ctx is None else _distributed().main_first():
            split = load_split(cfg.data, cfg.model.resolved_objective, progress=download_bar if main else None)
        model = None
        if main:
            print(f"data: {split.dataset.name}, {split.n_users:,} users, {split.n_items:,} items, {split.n_train:,} "
                  f"training interactions ({time.perf_counter() - t0:.1f}s). {split.describe()}", flush=True)
            _feature_notes(cfg, split)

    from ncf import distributed
    from ncf.runs import save_run
    from ncf.train import train

    ctx = ctx or distributed.current()
    if ctx.active:
        print(f"{ctx} (pid {os.getpid()}): training with {distributed.current_backend()}\n", end="", flush=True)
    stop = threading.Event()
    progress = _Progress(cfg.model.model) if main else None
    with _stop_on_interrupt(stop):
        try:
            result = train(cfg, split, on_event=progress, stop=stop, model=model)
        finally:
            if progress is not None:
                progress.close()
    if ctx.active:
        # Every rank's weights, so a reader (and tests/test_distributed.py) can see they are identical.
        # One write per line: the ranks share stdout, and print's separate newline could interleave.
        print(f"{ctx}: final weights {distributed.weights_digest(result.model)}\n", end="", flush=True)
        distributed.barrier()  # the others' lines come before rank 0's summary, which ends the output
    if not main:
        return 0
    if result.stopped:
        print(f"stopped after {result.epochs} epoch(s); saving what was trained", flush=True)
    elif result.best_epoch is not None and result.best_epoch != result.epochs:
        kept = "the model as initialised" if result.best_epoch == 0 else f"epoch {result.best_epoch}"
        print(f"kept {kept}: it ranked the validation items best", flush=True)
    run = save_run(result, cfg, split, name=cfg.name, models_dir=_path(args.out))
    print(f"saved run {run.id} in {run.path}")
    if args.json:
        summary = dict(result.metrics)
        summary.update(epochs=result.epochs, train_seconds=result.train_seconds,
                       samples_per_second=result.samples_per_second, run=str(run.path), run_id=run.id,
                       model=cfg.model.model, stopped=result.stopped, device=str(result.device),
                       best_epoch=result.best_epoch, world_size=ctx.world_size)
        _print_json(summary)
    else:
        print("  ".join(f"{k} {_fmt(v)}" for k, v in result.metrics.items()))
    if args.by_activity:
        _print_breakdown(result.model, split, cfg.train.k if cfg.train.k else 10, args.json)
    return 0


def _feature_notes(cfg, split) -> None:
    """What the side features are for this data, values only held-out users or items have (unknown),
    and how an ids-only model ranks the held-out ones of a cold-start split."""
    from ncf.data.features import for_split
    from ncf.data.split import COLD_KINDS

    model_cfg, features = for_split(cfg.model, split)
    if features is not None:
        print(f"side features: {', '.join(f'{s.name} ({s.side}, width {s.width})' for s in features.specs)}",
              flush=True)
        for note in features.notes:
            print(f"note: {note}", flush=True)
    elif cfg.model.features:
        print(f"note: {split.dataset.name} has no side features; training on ids only", flush=True)
    if split.kind in COLD_KINDS and features is None and cfg.model.model != "pop":
        print("note: this model has no side features, so the held-out users or items are ranked by "
              "popularity (most-popular fitted on the training pairs), not by the model", flush=True)


def _print_breakdown(model, split, k: int, as_json: bool) -> None:
    from ncf.evaluate import by_activity

    rows = by_activity(model, split, k)
    if as_json:
        _print_json({"by_activity": rows})
        return
    columns = ["group", "bucket", "n_test", *[c for c in (f"hr@{k}", f"ndcg@{k}", "mse", "mae") if rows and c in rows[0]]]
    print("by training interactions of the test case's user (users) and item (items):")
    print(_table(rows, columns))


def cmd_sweep(args) -> int:
    """A grid of `train` runs: every flag may take a comma list; the grid is their product."""
    from ncf.data import load_split
    from ncf.experiments import expand, run_sweep
    from ncf.runs import save_run

    rest = list(args.flags)
    want_json = "--json" in rest
    rest = [a for a in rest if a != "--json"]
    seeds = list(_int_list(args.seeds, "Seeds")) if args.seeds else None
    points = expand(rest, seeds)
    parser = build_parser()
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
    out = _path(run_args.out) if points else None
    swept = list(points[0].values) if points else []
    columns = ["#", "model", *[c for c in swept if c != "model"], "hr@10", "ndcg@10", "full_recall@10", "seconds"]
    print(f"sweep: {len(points)} run(s){' over ' + ', '.join(swept) if swept else ''}", flush=True)
    done: list[dict] = []

    def on_start(i, point, cfg) -> None:
        print(f"run {i + 1}/{len(points)}: {cfg.model.model} " + " ".join(f"{k}={v}" for k, v in point.values.items()),
              flush=True)

    def on_row(row: dict) -> None:
        done.append({"#": len(done) + 1, **row, "seconds": f"{row['seconds']:.1f}"})
        print(_table(done, columns).splitlines()[-1] if len(done) > 1 else _table(done, columns), flush=True)

    stop = threading.Event()
    with _stop_on_interrupt(stop):
        rows = run_sweep(configs, load_split=load_split, stop=stop, on_start=on_start, on_row=on_row,
                         save=lambda result, cfg, split: save_run(result, cfg, split, name=cfg.name, models_dir=out))
    if stop.is_set():
        print(f"sweep stopped after {len(rows)} of {len(points)} run(s)", flush=True)
    _sweep_notes(rows, configs, args.chart, swept)
    if want_json:
        _print_json({"runs": rows})
    return 0


def cmd_search(args) -> int:
    """An Optuna study over ranges of train flags, chosen on the validation hold-out."""
    from ncf.data import load_split
    from ncf.runs import save_run
    from ncf.search import OBJECTIVE, Range, run_search

    rest = [a for a in args.flags if a != "--json"]
    want_json = "--json" in args.flags
    ranges = [Range.parse(p) for p in args.param or []]
    parser = build_parser()

    def make_config(values: dict):
        argv = [*rest]
        for flag, value in values.items():
            argv += [f"--{flag.replace('_', '-')}", str(value)]
        if "--validation" not in argv:
            argv.append("--validation")
        cfg = config_from_args(parser.parse_args(["train", *argv]))
        return cfg.replace(name=cfg.name or "search " + " ".join(f"{k}={_fmt(v)}" for k, v in values.items()))

    # A bad flag or range fails here, before any training.
    if ranges:
        make_config({r.flag: (r.choices[0] if r.choices else (int(r.low) if r.integer else r.low)) for r in ranges})
    out = _path(parser.parse_args(["train", *rest]).out)
    print(f"search: {args.trials} trial(s) over {', '.join(r.flag for r in ranges)}, chosen on {OBJECTIVE} "
          "(the validation hold-out; test items are not read until the end)", flush=True)

    def on_trial(t) -> None:
        settings = "  ".join(f"{k} {_fmt(v)}" for k, v in t.values.items())
        print(f"trial {t.number}: {settings}  {OBJECTIVE} {t.val_hr:.4f}", flush=True)

    stop = threading.Event()
    with _stop_on_interrupt(stop):
        result = run_search(ranges, args.trials, make_config, load_split=load_split, seed=args.seed,
                            on_trial=on_trial, stop=stop,
                            save=lambda r, cfg, split: save_run(r, cfg, split, name=cfg.name, models_dir=out))
    if result.best is not None:
        b = result.best
        print(f"chosen: trial {b.number} ({', '.join(f'{k}={_fmt(v)}' for k, v in b.values.items())}), "
              f"{OBJECTIVE} {b.val_hr:.4f}; run {b.run}")
        print("its test figures, read once now: " + "  ".join(f"{k} {_fmt(v)}" for k, v in b.test_metrics.items()))
    if want_json:
        _print_json(result.summary())
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


def _resumed(args):
    """Continues a saved run: its model, split and settings; training flags given override them.
    The result is saved as a new run (the original stays as it was)."""
    from ncf.config import TrainConfig

    run = _load(args.resume)
    train_cfg = TrainConfig.from_dict({**run.config.train.to_dict(), **train_overrides(args)}).validate()
    cfg = run.config.replace(train=train_cfg, name=args.name or run.name)
    print(f"continuing run {run.id} ({cfg.model.model}, {run.info.get('epochs', '?')} epochs so far) for "
          f"{train_cfg.epochs} more", flush=True)
    return cfg, run.split(), run.model_copy()


class _stop_on_interrupt:
    """The first Ctrl-C asks the trainer to stop (the run is still saved); a second one aborts."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.previous = None

    def _handler(self, signum, frame):
        self.stop.set()
        print("\nstopping at the end of this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, self.previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


# ---------------------------------------------------------------------------------------------
# evaluate, recommend, similar, runs


def _load(text: str):
    """A run named on the command line: an id in the models folder, or a folder path."""
    from ncf.runs import load_run, run_ref

    return load_run(run_ref(text))


def cmd_evaluate(args) -> int:
    run = _load(args.run)
    split = run.split()
    from ncf.evaluate import evaluate

    t0 = time.perf_counter()
    metrics = evaluate(run.model, split, k=args.k or run.config.train.k)
    seconds = time.perf_counter() - t0
    if args.json:
        _print_json({**metrics, "run": str(run.path), "run_id": run.id, "eval_seconds": seconds})
    else:
        print(f"run {run.id} ({run.config.model.model}, {split.kind}): evaluated in {seconds:.2f}s")
        if metrics.get("popularity_fallback"):
            print("  (ids only on a cold-start split: the held-out cases are ranked by popularity)")
        for key, value in metrics.items():
            print(f"  {key:<16} {_fmt(value)}")
    if args.by_activity:
        _print_breakdown(run.model, split, args.k or run.config.train.k, args.json)
    return 0


def _print_frame(df, columns: list[str], as_json: bool) -> None:
    columns = [c for c in columns if c in df.columns]
    if as_json:
        _print_json(df[columns].to_dict(orient="records"))
        return
    rows = df[columns].to_dict(orient="records")
    print(_table([{"#": i + 1, **r} for i, r in enumerate(rows)], ["#", *columns]))


def cmd_recommend(args) -> int:
    run = _load(args.run)
    from ncf.explore import recommend

    df = recommend(run, args.user, k=args.k, exclude_seen=not args.include_seen)
    if not args.json:
        print(f"top {args.k} for user {args.user} from run {run.id} ({run.config.model.model}):")
    if "held_out" in df.columns and not args.json:
        df = df.assign(held_out=df["held_out"].map({True: "held out", False: ""}))
    _print_frame(df, ["item", "title", "genres", "score", "held_out"], args.json)
    return 0


def cmd_similar(args) -> int:
    run = _load(args.run)
    from ncf.explore import similar_items

    df = similar_items(run, args.item, k=args.k)
    if not args.json:
        print(f"items most similar to {args.item} in run {run.id} ({run.config.model.model}):")
    _print_frame(df, ["item", "title", "genres", "similarity"], args.json)
    return 0


def cmd_runs(args) -> int:
    from ncf.runs import delete_run, list_runs

    if args.delete:  # the operator's clean-up: the app lets a session delete only its own runs
        for run_id in args.delete:
            delete_run(run_id, models_dir=_path(args.out))
            print(f"deleted run {run_id}")
        return 0
    infos = list_runs(_path(args.out))
    if args.json:
        _print_json([{k: getattr(i, k, None) for k in ("id", "name", "path", "created", "config", "metrics",
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
        shown = [f"{k} {_fmt(metrics[k])}" for k in ("hr@10", "ndcg@10", "rmse") if k in metrics]
        seconds = f"{info.train_seconds:.1f}s" if info.train_seconds is not None else ""
        epochs = getattr(info, "epochs", None)
        epochs = "" if epochs is None else f"{epochs}{' (stopped)' if getattr(info, 'stopped', False) else ''}"
        rows.append({"id": info.id, "name": info.name or "", "model": model, "data": source, "epochs": epochs,
                     "created": str(info.created or "")[:19].replace("T", " "), "result": "  ".join(shown),
                     "time": seconds})
    print(_table(rows, ["id", "name", "model", "data", "created", "epochs", "time", "result"]))
    return 0


# ---------------------------------------------------------------------------------------------
# bench


def cmd_bench(args) -> int:
    import inspect

    from ncf.bench import throughput

    wanted = {"model": args.model, "quick": args.quick or None, "device": args.device, "seconds": args.seconds,
              "progress": _bench_progress}
    if args.batch_sizes:
        wanted["batch_sizes"] = _int_list(args.batch_sizes, "Batch sizes")
    params = inspect.signature(throughput).parameters
    kwargs = {k: v for k, v in wanted.items() if v is not None and k in params}
    rows = throughput(**kwargs)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    print(_table(rows, columns))
    if args.json:
        # The configuration asked: the model's fastest batch size (the only one when one was given).
        asked = [r for r in rows if r.get("model") in (args.model, None)] or rows
        best = max(asked, key=lambda r: r.get("samples_per_second") or 0) if asked else {}
        _print_json({**best, "model": best.get("model", args.model), "results": rows})
    return 0


def _bench_progress(row: dict) -> None:
    print("  ".join(f"{k} {_fmt(v)}" for k, v in row.items()), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from ncf import registry
    from ncf.config import LOSS_REDUCTIONS, OBJECTIVES, OPTIMIZERS, PRESETS

    p = argparse.ArgumentParser(prog="python -m ncf", description="NCF Lab: Neural Collaborative Filtering "
                                "from the command line (data, training, evaluation, recommendations).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("data", help="read a ratings source and summarise it")
    d.add_argument("source", help="synthetic, a MovieLens name (ml-100k, ml-1m, ...) or a path")
    d.add_argument("--columns", help="role=column pairs overriding detection, e.g. user=userId,item=movieId")
    d.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model and save the run",
                       description="Train a model; flags not given keep the tuned defaults.")
    t.add_argument("--data", default="synthetic", help="synthetic (default), a MovieLens name or a path")
    t.add_argument("--columns", help="role=column pairs overriding detection, e.g. user=userId,item=movieId")
    t.add_argument("--preset", choices=list(PRESETS), help="named settings under the flags given: "
                   + "; ".join(f"{p.name}: {p.label}" for p in PRESETS.values()))
    t.add_argument("--model", choices=registry.names(), help="default: neumf (or the preset's). " + registry.help_text())
    t.add_argument("--objective", choices=OBJECTIVES, help="default: the model's own (explicit for embnn, "
                   "implicit otherwise)")
    t.add_argument("--factors", type=int, help="predictive factors (GMF / dot embedding size)")
    t.add_argument("--layers", help="MLP tower, e.g. 64,32,16,8 (first = user+item embedding width)")
    t.add_argument("--emb-sizes", help="EmbeddingNN user,item embedding sizes (default: fastai's rule)")
    t.add_argument("--dropout", type=float, help="dropout after each ReLU of the tower (EmbeddingNN, MLP, NeuMF)")
    t.add_argument("--batch-norm", action="store_true", help="EmbeddingNN batch norm (fastai's use_bn)")
    t.add_argument("--features", help="EmbeddingNN side features beside the ids: none (default), all, or a comma "
                   "list such as age,occupation,genres (python -m ncf data SOURCE lists a source's)")
    t.add_argument("--id-dropout", type=float, help="EmbeddingNN with features: chance of zeroing a training "
                   "pair's id embeddings, so it learns to rank cold-start users from features alone (default 0)")
    t.add_argument("--by-activity", action="store_true", help="after training, print the metrics by the "
                   "training interactions of each test case's user and item")
    ials, knn = registry.get("ials").defaults, registry.get("itemknn").defaults
    grid = ", ".join(f"{x:g}" for x in registry.EASE_LAMBDAS)
    t.add_argument("--reg", type=float, help=f"EASE: λ (default: chosen from {grid} on held-out training "
                   f"interactions); iALS: regularisation (default {ials['reg']:g})")
    t.add_argument("--confidence", type=float, help=f"iALS: confidence weight α of an observed pair "
                   f"(default {ials['confidence']:g})")
    t.add_argument("--iterations", type=int, help=f"iALS: least-squares sweeps (default {ials['iterations']})")
    t.add_argument("--neighbours", type=int, help=f"item-kNN: neighbourhood size K (default {knn['neighbours']})")
    t.add_argument("--similarity", choices=registry.SIMILARITIES, help=f"item-kNN similarity "
                   f"(default {knn['similarity']})")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--neg", type=int, help="sampled negatives per observed pair (implicit)")
    t.add_argument("--exclude-seen", action="store_true", help="draw negatives only among unseen items")
    t.add_argument("--wd", type=float, help="weight decay")
    t.add_argument("--betas", help="Adam's beta1,beta2 (default 0.9,0.999)")
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--loss-reduction", choices=LOSS_REDUCTIONS, help="combine a batch's losses by their mean "
                   "(default) or sum (plain SGD then steps as per-example SGD would, Rendle et al. 2020)")
    t.add_argument("--example-l2", type=float, help="L2 on the rows each example touches, once per example "
                   "(Rendle et al.'s --regularization; default 0)")
    t.add_argument("--init-std", type=float, help="dot: standard deviation of the embeddings' initialisation "
                   "(default 0.01)")
    t.add_argument("--global-bias", action="store_true", help="dot: add a global bias b to b_u + b_i")
    t.add_argument("--one-cycle", action="store_true", help="fastai's one-cycle learning-rate schedule")
    t.add_argument("--seed", type=int, help="seed of initialisation, negatives and shuffling")
    t.add_argument("--device", help="auto (default), cpu, cuda or mps")
    t.add_argument("--amp", action="store_true", help="CUDA: bf16 mixed precision (slower for models this small)")
    t.add_argument("--no-cuda-graph", action="store_true", help="CUDA: take every step eagerly (by default a "
                   "constant-rate run records its step as a CUDA graph and replays it)")
    t.add_argument("--pretrain", action="store_true", help="NeuMF: train GMF and MLP first, then NeuMF from them")
    t.add_argument("--alpha", type=float, help="NeuMF pre-training: weight of the GMF half (default 0.5)")
    t.add_argument("--split", choices=sorted(SPLITS), help="default: loo (implicit) or ratio (explicit); "
                   "cold-users / cold-items hold out a seeded share of users / items completely")
    t.add_argument("--test-negatives", type=int, help="leave-one-out candidates per test user (default 99)")
    t.add_argument("--test-fraction", type=float, help="ratio split: held-out share of ratings; cold-users / "
                   "cold-items: held-out share of users / items (default 0.2)")
    t.add_argument("--data-seed", type=int, help="seed of the split (default 0)")
    t.add_argument("--validation", action="store_true",
                   help="leave-one-out: also hold out each user's second-latest item and keep the epoch "
                        "that ranks it best")
    t.add_argument("-k", type=int, help="cut-off of the ranking metrics (default 10)")
    t.add_argument("--resume", metavar="RUN", help="continue a saved run (id or folder) for --epochs more; "
                   "its model and data settings are kept, training flags given override its own")
    t.add_argument("--name", help="a name for the saved run")
    t.add_argument("--out", help="folder of saved runs (default: $NCF_MODELS_DIR or ./models)")
    t.add_argument("--json", action="store_true", help="last line of output: one JSON object with the results")
    t.set_defaults(func=cmd_train)

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

    ls = sub.add_parser("runs", help="list saved runs (refused folders with their reason)")
    ls.add_argument("--out", help="folder of saved runs (default: $NCF_MODELS_DIR or ./models)")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--delete", nargs="+", metavar="RUN_ID", help="delete these saved runs (for the server's operator)")
    ls.set_defaults(func=cmd_runs)

    b = sub.add_parser("bench", help="training throughput against the baselines")
    b.add_argument("--model", choices=[*registry.names(gradient=True), "all"], default="neumf",
                   help="a model fitted by gradient descent, or all of them")
    b.add_argument("--batch-sizes", help="e.g. 2048,8192 (default: the benchmark's sweep)")
    b.add_argument("--device", help="auto (default), cpu, cuda or mps")
    b.add_argument("--seconds", type=float, help="measuring time per configuration")
    b.add_argument("--quick", action="store_true", help="small data, short measurements (seconds in all)")
    b.add_argument("--json", action="store_true", help="last line: one JSON object with samples_per_second")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] in (["sweep"], ["search"]):  # the train flags after these are parsed per run
        args, args.flags = parser.parse_known_args(argv)
    else:
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NCFError as exc:
        sys.stdout.flush()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m ncf runs | head`
        sys.stderr.close()
        return 0
