"""Comparing saved runs fairly: which runs can stand side by side, what sets them apart.

A figure is comparable with another only on the same data, the same split and the same kind of
task (ranking items or predicting ratings). `scope` names that triple; `setting_rows` lists the
settings of each run that apply to its model, so a table can show the ones that differ; the
epochs are those actually run, per pre-training stage. No Streamlit: the Compare page lays these
out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ncf import events
from ncf.labels import is_rating_metric

RANKING_KEYS = ("hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10")
RATING_KEYS = ("rmse", "mae")


def source_label(source: str) -> str:
    """A run's data source for display: uploads are cache paths; show just the file name."""
    return str(source).replace("\\", "/").rsplit("/", 1)[-1]


def objective(cfg: dict) -> str:
    m = cfg.get("model", {})
    if m.get("objective"):
        return m["objective"]
    return "explicit" if m.get("model") == "embnn" else "implicit"


def protocol(cfg: dict) -> str:
    """How a run was tested, in words: two runs compare only under the same protocol."""
    d = cfg.get("data", {})
    task = "rating prediction" if objective(cfg) == "explicit" else "ranking"
    kind = d.get("split", "leave_one_out")
    if kind == "leave_one_out":
        how = f"leave-one-out, {d.get('test_negatives', 99)} sampled negatives"
    elif kind == "ratio":
        how = f"random {float(d.get('test_fraction', 0.2)):.0%} of ratings held out"
    else:
        how = "published split"
    return f"{task} · {how} · split seed {d.get('seed', 0)}"


def scope(cfg: dict) -> tuple[str, str]:
    return source_label(cfg.get("data", {}).get("source", "?")), protocol(cfg)


def mixing_message(scopes: Sequence[tuple[str, str]]) -> str | None:
    """Why these runs' figures must not share one bar chart, or None when they may."""
    datasets = sorted({d for d, _ in scopes})
    protocols = sorted({p for _, p in scopes})
    if len(datasets) > 1:
        return (f"These runs are on different datasets ({', '.join(datasets)}): their figures measure different "
                "things and are not drawn side by side. Choose one dataset.")
    if len(protocols) > 1:
        return ("These runs were tested differently (" + "; ".join(protocols) + "): a figure under one protocol "
                "says nothing about another. Choose one protocol.")
    return None


def metric_keys(cfg: dict) -> tuple[str, ...]:
    return RATING_KEYS if objective(cfg) == "explicit" else RANKING_KEYS


def stage_epochs(history: Sequence[dict]) -> list[tuple[str, int, int]]:
    """(stage, epochs run, epochs planned) per training stage, from a run's events."""
    return [(run.start.stage or "", run.epochs_run, run.start.epochs or 0) for run in events.stages(history)]


def read_history(run_path: str | Path) -> list[dict]:
    """A saved run's events (history.jsonl), without loading its model; [] when unreadable."""
    try:
        text = (Path(run_path) / "history.jsonl").read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def epochs_text(stages: Sequence[tuple[str, int, int]]) -> str:
    """'8' · '9 of 20 (stopped)' · 'gmf 8 + mlp 8 + neumf 8'."""
    def one(ran: int, planned: int) -> str:
        return f"{ran}" if ran == planned else f"{ran} of {planned}"
    if not stages:
        return ""
    if len(stages) == 1:
        return one(*stages[0][1:])
    return " + ".join(f"{s} {one(r, p)}" for s, r, p in stages)


def settings(cfg: dict, stages: Sequence[tuple[str, int, int]] = ()) -> dict[str, str]:
    """The settings that apply to this run's model, as text ('' where one does not apply)."""
    m, t, d = cfg.get("model", {}), cfg.get("train", {}), cfg.get("data", {})
    model = m.get("model", "")
    layers = m.get("layers")
    if layers is None:  # the default tower, as ModelConfig.resolved_layers
        f = int(m.get("factors") or 32)
        layers = [100, 50] if model == "embnn" else [4 * f, 2 * f, f]
    out: dict[str, str] = {}
    if model == "pop":
        return {"epochs run": "counts only"}
    out["objective"] = objective(cfg)
    if model in ("gmf", "neumf", "dot"):
        out["factors"] = str(m.get("factors"))
    if model in ("mlp", "neumf", "embnn"):
        out["layers"] = ",".join(map(str, layers))
    if model == "embnn":
        sizes = m.get("emb_sizes")
        out["embedding sizes"] = "rule" if not sizes else f"{sizes[0]}, {sizes[1]}"
        out["dropout"] = f"{m.get('dropout', 0):g}"
        out["batch norm"] = "yes" if m.get("batch_norm") else "no"
    if model == "neumf":
        out["pre-training"] = f"yes, α {m.get('alpha', 0.5):g}" if m.get("pretrain") else "no"
    if objective(cfg) == "implicit":
        out["negatives"] = str(t.get("n_negatives", 4))

    def val(key: str, fmt: str = "{}") -> str:
        return "recipe" if t.get(key) is None else fmt.format(t[key])
    out["optimizer"] = val("optimizer")
    out["lr"] = val("lr", "{:g}")
    out["batch size"] = val("batch_size")
    out["weight decay"] = val("weight_decay", "{:g}")
    out["schedule"] = "recipe" if t.get("one_cycle") is None else ("one-cycle" if t["one_cycle"] else "constant")
    out["seed"] = str(t.get("seed", 0))
    out["validation hold-out"] = "yes" if d.get("validation") else "no"
    out["epochs run"] = epochs_text(stages) or val("epochs")
    return out


def differing(rows: Sequence[dict[str, str]]) -> list[str]:
    """The setting names whose value is not the same in every row (missing counts as a value)."""
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    return [k for k in names if len({r.get(k, "") for r in rows}) > 1]


def readable_time(iso: str) -> str:
    """'2026-11-30T17:29:40+00:00' -> '30 Nov 17:29'."""
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %H:%M")
    except (TypeError, ValueError):
        return str(iso or "")


def readable_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(float(seconds)))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def lower_is_better(keys: Sequence[str]) -> bool:
    return bool(keys) and all(is_rating_metric(k) for k in keys)
