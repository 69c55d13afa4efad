"""`python -m ncf train`: the flags, the run configuration they describe, and one training run
(one rank of it under torchrun)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

from ncf.cli.common import (
    SPLITS,
    float_list,
    fmt,
    int_list,
    load_run_arg,
    optional_path,
    parse_columns,
    print_breakdown,
    print_json,
    stop_on_interrupt,
)
from ncf.cli.progress import LoadingLog, ProgressPrinter, download_bar, say_loading
from ncf.errors import ConfigError


def parse_features(text: str | None) -> tuple[str, ...]:
    """'none' (or nothing) -> (); 'all' -> ("all",), resolved once the data is read; 'a,b' -> ("a", "b")."""
    from ncf.data.features import check_names

    if text is None or text.strip().lower() in ("", "none"):
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    names = ("all",) if names == ("all",) else names
    check_names(names)
    return names


def train_overrides(args) -> dict:
    """The training settings given as flags (the rest keep their defaults, or a resumed run's)."""
    train_kw = {}
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("neg", "n_negatives"),
                      ("wd", "weight_decay"), ("optimizer", "optimizer"), ("seed", "seed"), ("device", "device"),
                      ("k", "k"), ("loss_reduction", "loss_reduction"), ("example_l2", "example_l2")):
        if getattr(args, flag) is not None:
            train_kw[key] = getattr(args, flag)
    if args.betas is not None:
        betas = tuple(float(b) for b in float_list(args.betas, "Adam's betas"))
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
        if getattr(args, flag) is not None:
            model_kw[key] = getattr(args, flag)
    if args.global_bias:
        model_kw["global_bias"] = True
    if args.layers is not None:
        model_kw["layers"] = int_list(args.layers, "Tower layers")
    if args.emb_sizes is not None:
        sizes = int_list(args.emb_sizes, "Embedding sizes")
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
    except BaseException:
        distributed.shutdown()
        raise
    # The job is done and saved. Tearing gloo down can still abort a rank in its threads' destructors
    # under load (exit -6 after a good run), so a finished rank leaves at once and the OS closes its sockets.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _train_and_save(args, ctx=None) -> int:
    if args.resume:
        cfg, split, model = _resumed(args)
    else:
        cfg = config_from_args(args)  # bad flags fail here, before any data or torch is touched
    main = ctx is None or ctx.is_main
    if not args.resume:
        from ncf.data import load_split

        t0 = time.perf_counter()
        if main:
            say_loading(cfg.data.source)
        loading = contextlib.nullcontext()
        if ctx is not None:  # a job of many: rank 0 downloads and caches, the others then read its cache
            from ncf import distributed

            loading = distributed.main_first()
        # (A single process imports no torch before its data has loaded: a bad file fails fast.)
        with loading:
            split = load_split(cfg.data, cfg.model.resolved_objective, progress=download_bar if main else None,
                               on_stage=LoadingLog(cfg.data.source) if main else None)
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
    progress = ProgressPrinter(cfg.model.model) if main else None
    with stop_on_interrupt(stop):
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
    run = save_run(result, cfg, split, name=cfg.name, models_dir=optional_path(args.out))
    print(f"saved run {run.id} in {run.path}")
    if args.json:
        summary = dict(result.metrics)
        summary.update(epochs=result.epochs, train_seconds=result.train_seconds,
                       samples_per_second=result.samples_per_second, run=str(run.path), run_id=run.id,
                       model=cfg.model.model, stopped=result.stopped, device=str(result.device),
                       best_epoch=result.best_epoch, world_size=ctx.world_size)
        print_json(summary)
    else:
        print("  ".join(f"{k} {fmt(v)}" for k, v in result.metrics.items()))
    if args.by_activity:
        print_breakdown(result.model, split, cfg.train.k if cfg.train.k else 10, args.json)
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


def _resumed(args):
    """Continues a saved run: its model, split and settings; training flags given override them.
    The result is saved as a new run (the original stays as it was)."""
    from ncf.config import TrainConfig

    run = load_run_arg(args.resume)
    train_cfg = TrainConfig.from_dict({**run.config.train.to_dict(), **train_overrides(args)}).validate()
    cfg = run.config.replace(train=train_cfg, name=args.name or run.name)
    print(f"continuing run {run.id} ({cfg.model.model}, {run.info.get('epochs', '?')} epochs so far) for "
          f"{train_cfg.epochs} more", flush=True)
    cfg, split = _resumed_split(run, cfg)
    return cfg, split, run.model_copy()


def _resumed_split(run, cfg):
    """The run's split, with its validation hold-out where it had one. A run folder keeps the
    validation pairs among the known interactions, so the hold-out is drawn again from the source (the
    same seeded split, checked against the saved test pairs); without that the resumed run would train
    on the pairs it chooses its epoch by. Where that cannot be done it continues without choosing."""
    import numpy as np

    from ncf.data import load_split
    from ncf.errors import NCFError

    split = run.split()
    if not cfg.data.validation:
        return cfg, split
    try:
        again = load_split(cfg.data, cfg.model.resolved_objective)
        why = None if (np.array_equal(again.test_user, split.test_user) and again.n_items == split.n_items
                       and np.array_equal(again.test_item, split.test_item)) else "it now splits differently"
    except NCFError as exc:
        why = str(exc)
    if why is None:
        return cfg, again
    print(f"note: run {run.id} chose its epoch on a validation hold-out that its folder does not keep apart, and "
          f"its data {cfg.data.source!r} could not give it again ({why}); continuing without a hold-out, so "
          "the last epoch is kept.", file=sys.stderr, flush=True)
    return cfg.replace(data=cfg.data.replace(validation=False)), split


def add_parser(sub) -> None:
    from ncf import registry
    from ncf.config import LOSS_REDUCTIONS, OBJECTIVES, OPTIMIZERS, PRESETS

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
                   "list such as age,occupation,genres (python -m ncf data SOURCE lists a source's). The time "
                   "features hour,weekday,years_since_release (EmbeddingNN only) are each interaction's; "
                   "evaluate and recommend use each user's last training interaction time, a new user the "
                   "latest time in the training data")
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
