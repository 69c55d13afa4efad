"""Runs side by side: a per-epoch value per run, final metrics as grouped bars, a metric against a swept
setting (with published figures beside it), and training time against quality."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from ncf import registry
from ncf.events import TrainEvent
from ncf.labels import is_rating_metric, metric_label
from ncf.plots.style import PALETTE, esc, new_figure
from ncf.plots.training import curves_frame


def compare_curves(histories: dict[str, Sequence[TrainEvent | dict]], metric: str) -> go.Figure:
    """One line per run of a per-epoch value (`train_loss` or a metric key such as hr@10)."""
    fig = new_figure(title=metric, xaxis_title="epoch", yaxis_title=metric, height=340,
               legend=dict(orientation="h", y=-0.25))
    for i, (label, events) in enumerate(histories.items()):
        _, epochs = curves_frame(events)
        if metric in epochs:
            fig.add_scatter(x=epochs["x"], y=epochs[metric], mode="lines+markers", name=label,
                            line_color=PALETTE[i % len(PALETTE)])
    return fig


def metric_bars(rows: pd.DataFrame, label_col: str, metrics: Sequence[str], negatives: int | None = 99) -> go.Figure:
    """Grouped bars: each metric on the x axis, one bar per run (for 'versus the popularity baseline').

    A metric a run does not have (a stopped run's full ranking) gets no bar and the words 'not
    computed': missing is not zero."""
    metrics = [m for m in metrics if m in rows]
    lower = bool(metrics) and all(is_rating_metric(m) for m in metrics)
    fig = new_figure(title="Final test metrics (" + ("lower" if lower else "higher") + " is better)", barmode="group",
               height=360, legend=dict(orientation="h", y=-0.2))
    names = [metric_label(m, negatives) for m in metrics]
    for i, (_, row) in enumerate(rows.iterrows()):
        values = [None if pd.isna(row[m]) else float(row[m]) for m in metrics]
        fig.add_bar(x=names, y=[0 if v is None else v for v in values], name=str(row[label_col]),
                    marker_color=PALETTE[i % len(PALETTE)], textposition="outside",
                    marker_opacity=[0 if v is None else 1 for v in values],
                    text=["not computed" if v is None else f"{v:.3f}" for v in values],
                    hovertemplate=["%{x}: not computed<extra>%{fullData.name}</extra>" if v is None
                                   else "%{x}: %{y:.4f}<extra>%{fullData.name}</extra>" for v in values])
    return fig


def sweep_chart(rows: Sequence[dict], x: str, metric: str = "hr@10", series: str = "model",
                published: Sequence = ()) -> go.Figure:
    """A metric against one swept setting, a line per `series` value with the mean over seeds and a band
    of min to max (the shape of He et al.'s Figures 4-7). Published figures (`ncf.reference.Published`)
    are drawn as hollow markers on dotted lines and named with their source, never as measured here."""
    frame = pd.DataFrame([r for r in rows if r.get(metric) is not None and r.get(x) is not None])
    fig = new_figure(height=400, xaxis_title=x.replace("_", " "), yaxis_title=metric_label(metric),
               legend=dict(orientation="h", y=-0.25))
    if frame.empty:
        return fig
    numeric = pd.api.types.is_numeric_dtype(frame[x])
    colours = px.colors.qualitative.D3
    for i, (key, group) in enumerate(frame.groupby(series, sort=False)):
        name = registry.get(key).label if series == "model" and key in registry.REGISTRY else key
        stats = group.groupby(x, sort=True)[metric].agg(["mean", "min", "max", "count"]).reset_index()
        colour = colours[i % len(colours)]
        if (stats["count"] > 1).any():
            fig.add_trace(go.Scatter(x=list(stats[x]) + list(stats[x])[::-1],
                                     y=list(stats["max"]) + list(stats["min"])[::-1], fill="toself",
                                     fillcolor=colour, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                                     showlegend=False))
        fig.add_trace(go.Scatter(x=stats[x], y=stats["mean"], mode="lines+markers", name=str(name),
                                 line=dict(color=colour), customdata=stats["count"],
                                 hovertemplate=f"{name}<br>{x} %{{x}}<br>%{{y:.4f}} (mean of %{{customdata}})"
                                               "<extra></extra>"))
    by_label: dict[str, list] = {}
    for p in published:
        if p.factors is not None and x == "factors":
            by_label.setdefault(p.label, []).append(p)
    for j, (label, points) in enumerate(by_label.items()):
        points.sort(key=lambda p: p.factors)
        value = [p.hr if metric.startswith("hr") else p.ndcg for p in points]
        fig.add_trace(go.Scatter(x=[p.factors for p in points], y=value, mode="lines+markers",
                                 name=f"{label} (published: {points[0].source})",
                                 line=dict(dash="dot", color="#555"), marker=dict(symbol=["circle-open", "square-open",
                                 "diamond-open"][j % 3], size=9, color="#555")))
    if numeric and frame[x].min() > 0 and frame[x].max() / frame[x].min() >= 8:
        fig.update_xaxes(type="log", tickvals=sorted(frame[x].unique()))
    return fig


def time_quality(rows: Sequence[dict], metric: str = "hr@10", series: str = "model",
                 hover: Sequence[str] = ()) -> go.Figure:
    """Each run as a point: training seconds against `metric`, a colour per `series` value. A point's
    customdata is its run id, so a page can open the run a reader clicks."""
    frame = pd.DataFrame([r for r in rows if r.get(metric) is not None and r.get("train_seconds") is not None])
    fig = new_figure(height=400, xaxis_title="training time (s)", yaxis_title=metric_label(metric),
               legend=dict(orientation="h", y=-0.25))
    if frame.empty:
        return fig
    colours = px.colors.qualitative.D3
    for i, (name, group) in enumerate(frame.groupby(series, sort=False)):
        text = ["<br>".join(f"{esc(k)} {esc(r[k])}" for k in hover if k in r) for _, r in group.iterrows()]
        fig.add_trace(go.Scatter(x=group["train_seconds"], y=group[metric], mode="markers", name=str(name),
                                 marker=dict(size=10, color=colours[i % len(colours)]), text=text,
                                 customdata=group["run"] if "run" in group.columns else None,
                                 hovertemplate=f"{esc(name)}<br>%{{text}}<br>%{{x:.1f}} s · %{{y:.4f}}"
                                               "<extra></extra>"))
    return fig
