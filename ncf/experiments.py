"""Sweeps: the product of several values per setting (times seeds), run one after another, each an
ordinary saved run, with one row of results per run.

The settings are the `train` command's flags (`--factors 8,16,32`), so a sweep validates exactly as
`train` does, every configuration before the first run starts. Selection is not done here: rows
carry the validation figure (`val_hr@10`) where the split has a hold-out, and whoever picks a
setting picks on that, never on the test items.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ncf.config import RunConfig
from ncf.errors import ConfigError

# Flags whose own value is a comma list: their alternatives are separated by "/" instead.
LIST_FLAGS = frozenset({"--layers", "--emb-sizes", "--betas", "--columns"})
# Flags that belong to the sweep as a whole, not to one run.
SWEEP_FLAGS = frozenset({"--json", "--out", "--name"})
DEFAULT_MAX_RUNS = 64  # a session's sweep on a shared server; NCF_MAX_SWEEP_RUNS changes it
REPORTED_METRICS = ("hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10", "val_hr@10", "rmse")


def max_runs() -> int:
    raw = os.environ.get("NCF_MAX_SWEEP_RUNS", str(DEFAULT_MAX_RUNS))
    try:
        return max(1, int(raw))
    except ValueError:
        raise ConfigError(f"NCF_MAX_SWEEP_RUNS is a whole number of runs, got {raw!r}.") from None


def _typed(text: str):
    """'8' -> 8, '0.01' -> 0.01, 'gmf' -> 'gmf': rows carry numbers as numbers."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: the swept flags' values (by flag name without dashes) and its argv."""

    values: dict[str, object]
    argv: tuple[str, ...]


def split_flags(argv: list[str]) -> list[tuple[str, str | None]]:
    """['--model', 'gmf,mlp', '--pretrain'] -> [('--model', 'gmf,mlp'), ('--pretrain', None)]."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        flag = argv[i]
        if not flag.startswith("-"):
            raise ConfigError(f"Expected a flag such as --factors, got {flag!r}.")
        if "=" in flag:
            name, value = flag.split("=", 1)
            pairs.append((name, value))
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            pairs.append((flag, argv[i + 1]))
            i += 2
        else:
            pairs.append((flag, None))
            i += 1
    return pairs


def expand(argv: list[str], seeds: list[int] | None = None) -> list[SweepPoint]:
    """The grid the flags describe, first flag slowest, seeds fastest. A flag's value is a comma list
    of alternatives ('/' for flags whose value is itself a comma list, such as --layers 64,32/128,64)."""
    fixed: list[str] = []
    axes: list[tuple[str, list[str]]] = []
    for flag, value in split_flags(argv):
        if value is None:
            fixed.append(flag)
            continue
        alternatives = [v.strip() for v in value.split("/" if flag in LIST_FLAGS else ",")]
        if any(not v for v in alternatives):
            raise ConfigError(f"{flag} has an empty value in {value!r}.")
        if flag in SWEEP_FLAGS:
            fixed += [flag, value]
        elif len(alternatives) == 1:
            fixed += [flag, alternatives[0]]
        else:
            axes.append((flag, alternatives))
    if seeds:
        if any(flag in ("--seed",) for flag, _ in axes) or "--seed" in fixed:
            raise ConfigError("Give seeds either as --seeds or as --seed, not both.")
        axes.append(("--seed", [str(s) for s in seeds]))
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        values = {flag.lstrip("-").replace("-", "_"): _typed(v) for (flag, _), v in zip(axes, combo, strict=True)}
        argv_run = list(fixed)
        for (flag, _), v in zip(axes, combo, strict=True):
            argv_run += [flag, v]
        points.append(SweepPoint(values=values, argv=tuple(argv_run)))
    cap = max_runs()
    if len(points) > cap:
        raise ConfigError(f"This sweep has {len(points)} runs, more than the {cap} allowed "
                          f"(NCF_MAX_SWEEP_RUNS); sweep fewer values or split it in parts.")
    return points


def result_row(point: SweepPoint, cfg: RunConfig, result, run_path: str) -> dict:
    """One row of a sweep's table: model, the swept values, seed, the metrics and the run."""
    row: dict = {"model": cfg.model.model, **point.values, "seed": cfg.train.seed}
    row.update({k: result.metrics[k] for k in REPORTED_METRICS if k in result.metrics})
    row.update(epochs=result.epochs, train_seconds=round(result.train_seconds, 2), stopped=result.stopped,
               run=run_path)
    return row


def run_sweep(configs: list[tuple[SweepPoint, RunConfig]], *, load_split: Callable, save: Callable,
              on_start: Callable | None = None, on_row: Callable | None = None, on_event=None,
              stop=None) -> list[dict]:
    """Trains and saves each configuration in turn; a split is loaded once per distinct data setting.
    A set `stop` ends the run in progress (it is still saved) and skips the rest."""
    from ncf.train import train

    splits: dict[str, object] = {}
    rows: list[dict] = []
    for i, (point, cfg) in enumerate(configs):
        if stop is not None and stop.is_set():
            break
        key = f"{cfg.data.to_dict()}|{cfg.model.resolved_objective}"
        if key not in splits:
            splits[key] = load_split(cfg.data, cfg.model.resolved_objective)
        if on_start is not None:
            on_start(i, point, cfg)
        start = time.perf_counter()
        result = train(cfg, splits[key], on_event=on_event, stop=stop)
        run = save(result, cfg, splits[key])
        row = result_row(point, cfg, result, str(run.path))
        row["seconds"] = round(time.perf_counter() - start, 2)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


# Gaps smaller than these are within one seed's noise here (results_experiments.md), so a swap of two
# models that close says nothing about the metrics.
SAMPLED_NOISE = 0.01
FULL_NOISE = 0.005


def orderings_disagree(rows: list[dict], series: str = "model", sampled: str = "hr@10",
                       full: str = "full_recall@10") -> bool:
    """Whether the sampled and the full-ranking metric order two series' best results the opposite way,
    each by more than noise (Krichene and Rendle, KDD 2020: sampled metrics can reverse the order of
    models)."""
    best: dict[str, tuple[float, float]] = {}
    for r in rows:
        if r.get(sampled) is None or r.get(full) is None:
            continue
        s, f = best.get(r[series], (-1.0, -1.0))
        best[r[series]] = (max(s, r[sampled]), max(f, r[full]))
    names = list(best)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d_sampled, d_full = best[a][0] - best[b][0], best[a][1] - best[b][1]
            if d_sampled * d_full < 0 and abs(d_sampled) >= SAMPLED_NOISE and abs(d_full) >= FULL_NOISE:
                return True
    return False
