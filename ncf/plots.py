"""Plotly figure builders for the app (and notebooks). Pure functions of core objects; no Streamlit.

Each builder takes plain data (a Dataset, a list of training events, a projection's DataFrame)
and returns a `plotly.graph_objects.Figure`, so a page is a single `st.plotly_chart(fig)` call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from ncf import registry
from ncf.aggregates import DataSummary
from ncf.events import Batch, Done, Epoch, Start, TrainEvent, parse_all
from ncf.labels import is_full_ranking, is_rating_metric, metric_label

ACCENT = "#d1495b"
MUTED = "#8a99a8"
PALETTE = px.colors.qualitative.Bold
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", font=dict(size=13))

# Metric keys whose larger value is better: the rest (losses, errors) are "lower is better".
RANKING_METRICS = ("hr@", "ndcg@", "full_recall@", "full_ndcg@")


def _fig(**layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(**{**_LAYOUT, **layout})
    return fig


# ---------------------------------------------------------------- the data page


def rating_histogram(summary: DataSummary) -> go.Figure:
    """Counts of each rating value (`ncf.aggregates.summarize`); a note instead of bars for implicit feedback."""
    fig = _fig(title="Ratings", xaxis_title="rating", yaxis_title="interactions", height=300)
    if summary.rating_values is None or not len(summary.rating_values):
        fig.add_annotation(text="Implicit feedback: every interaction counts as a 1", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")
        return fig
    values, counts = summary.rating_values, summary.rating_counts
    fig.add_bar(x=values, y=counts, marker_color=ACCENT, hovertemplate="rating %{x}: %{y:,} interactions")
    if len(values) <= 12:  # a tick under every star value (1…5, or 0.5…5 in half stars)
        fig.update_xaxes(tickvals=[float(v) for v in values])
    return fig


def long_tail(summary: DataSummary) -> go.Figure:
    """Items sorted by popularity: a few items carry most interactions (the 'long tail'). Drawn from at
    most a few hundred ranks of the curve, whatever the size of the catalogue."""
    head, n = summary.head_items, summary.n_items
    fig = _fig(title=f"Long tail of popularity<br><sup>the top {head:,} of {n:,} items hold half of "
                     "all interactions</sup>",
               xaxis_title="items, most popular first", yaxis_title="interactions per item", height=300)
    fig.add_scatter(x=summary.tail_rank, y=summary.tail_count, mode="lines", fill="tozeroy",
                    line_color=ACCENT, hovertemplate="item rank %{x:,}: %{y:,} interactions", name="items")
    fig.add_vrect(x0=0.5, x1=head + 0.5, fillcolor=MUTED, opacity=0.15, line_width=0)
    return fig


def per_user_histogram(summary: DataSummary) -> go.Figure:
    """Users per number of interactions, as bars counted in `ncf.aggregates` (not one value per user)."""
    median = summary.user_median
    fig = _fig(title=f"Interactions per user (median {median:g})" if np.isfinite(median) else "Interactions per user",
               xaxis_title="interactions of a user", yaxis_title="users", height=300)
    edges, counts = summary.user_edges, summary.user_counts
    if len(counts):
        width = float(edges[1] - edges[0])
        label = [f"{lo:,.0f}" if width == 1 else f"{lo:,.0f}–{lo + width - 1:,.0f}" for lo in edges[:-1]]
        fig.add_bar(x=(edges[:-1] + width / 2 - 0.5), y=counts, width=width, marker_color=MUTED, customdata=label,
                    hovertemplate="%{customdata} interactions: %{y:,} users<extra></extra>")
    return fig


# ---------------------------------------------------------------- training curves


def _stage_offsets(events: Sequence[TrainEvent]) -> dict[str, int]:
    """Pre-training runs GMF, MLP then NeuMF in one job: their epochs are laid end to end."""
    offsets: dict[str, int] = {}
    total = 0
    for e in events:
        if isinstance(e, Start) and e.stage not in offsets:
            offsets[e.stage] = total
            total += e.epochs
    return offsets


def curves_frame(events: Iterable[TrainEvent | dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training events (typed, or as a run's JSON) -> (batch losses: x, loss, stage) and (per-epoch:
    x, stage, train_loss, metrics…).

    x is in epochs (fractional within an epoch), counted across pre-training stages.
    """
    events = parse_all(events)
    offsets = _stage_offsets(events)
    batches, epochs = [], []
    for e in events:
        if isinstance(e, Batch) and e.loss is not None and not math.isnan(e.loss):
            x = offsets.get(e.stage, 0) + (e.epoch - 1) + e.step / max(1, e.steps)
            batches.append({"x": x, "loss": float(e.loss), "stage": e.stage})
        elif isinstance(e, Epoch):
            row = {"x": offsets.get(e.stage, 0) + e.epoch, "stage": e.stage, "train_loss": e.train_loss}
            row.update({k: v for k, v in e.metrics.items() if isinstance(v, int | float)})
            epochs.append(row)
    return pd.DataFrame(batches, columns=["x", "loss", "stage"]), pd.DataFrame(epochs)


def _stage_spans(events: Sequence[TrainEvent]) -> list[tuple[str, int, int]]:
    """(stage, first x, last x) of each pre-training stage, when there is more than one."""
    offsets = _stage_offsets(events)
    starts = {e.stage: e.epochs for e in events if isinstance(e, Start)}
    spans = [(stage, off, off + starts.get(stage, 0)) for stage, off in offsets.items() if stage]
    return spans if len(spans) > 1 else []


STAGE_TINTS = ("rgba(46,134,193,0.10)", "rgba(241,143,1,0.10)", "rgba(0,0,0,0.0)")


def training_curves(events: Iterable[TrainEvent | dict], *, height: int = 380, negatives: int | None = 99) -> go.Figure:
    """Loss (every batch report and each epoch's mean) beside the held-out metrics per epoch, with
    the epoch kept marked where a validation hold-out chose one other than the last.

    The right panel shows ranking metrics (higher is better) or, when the run predicts ratings,
    rating errors (lower is better): never both on one axis. Full-ranking metrics are computed
    once, at the end, and drawn as single labelled points. Pre-training stages are shaded bands.

    Two side-by-side axes are laid out by hand rather than with `make_subplots`: the Train page
    rebuilds this figure every second, and the hand-made layout costs a third of the time."""
    events = parse_all(events)
    batches, epochs = curves_frame(events)
    metric_cols = [c for c in epochs.columns if c not in ("x", "stage", "train_loss")]
    rating = [c for c in metric_cols if is_rating_metric(c)]
    metric_cols = rating or [c for c in metric_cols if not is_rating_metric(c)]
    title = ("Rating error on held-out ratings (lower is better)" if rating
             else "Ranking of held-out items (higher is better)")
    fig = go.Figure(layout=dict(
        **_LAYOUT, height=height, uirevision="keep",  # keep the user's zoom while new points arrive
        legend=dict(orientation="h", y=-0.25),
        xaxis=dict(domain=[0, 0.46], title="epoch", rangemode="tozero"),
        xaxis2=dict(domain=[0.54, 1], title="epoch", rangemode="tozero", anchor="y2"),
        yaxis2=dict(anchor="x2"),
        annotations=[dict(text=text, x=x, y=1.08, xref="paper", yref="paper", showarrow=False, font=dict(size=14))
                     for text, x in (("Training loss (lower is better)", 0.23), (title, 0.77))],
    ))
    for i, (stage, x0, x1) in enumerate(_stage_spans(events)):
        for xref, yref in (("x", "y domain"), ("x2", "y2 domain")):
            fig.add_shape(type="rect", xref=xref, yref=yref, x0=x0, x1=x1, y0=0, y1=1, layer="below",
                          line_width=0, fillcolor=STAGE_TINTS[i % len(STAGE_TINTS)])
            fig.add_annotation(x=(x0 + x1) / 2, y=1.0, xref=xref, yref=yref, text=f"<b>{_esc(stage)}</b> stage",
                               showarrow=False, yanchor="top", font=dict(size=11, color="#333"))
    if len(batches):
        fig.add_scatter(x=batches["x"].tolist(), y=batches["loss"].tolist(), mode="lines", name="loss (batches)",
                        line=dict(color=MUTED, width=1))
    if len(epochs) and epochs["train_loss"].notna().any():
        fig.add_scatter(x=epochs["x"].tolist(), y=epochs["train_loss"].tolist(), mode="lines+markers",
                        name="loss (epoch mean)", line=dict(color=ACCENT, width=2))
    # A validation metric is drawn dotted in its test counterpart's colour: the gap between the two is
    # the point of holding items out twice.
    test_cols = [c for c in metric_cols if not c.startswith("val_")]
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(test_cols)}
    for i, col in enumerate(c for c in metric_cols if c.startswith("val_")):
        colour[col] = colour.get(col[4:], PALETTE[(len(test_cols) + i) % len(PALETTE)])
    for col in metric_cols:
        name = metric_label(col, negatives)
        if is_full_ranking(col):  # computed once, after the last epoch: a point, not a curve
            fig.add_scatter(x=epochs["x"].tolist(), y=epochs[col].tolist(), mode="markers",
                            name=f"{name}, computed at the end", xaxis="x2", yaxis="y2",
                            marker=dict(color=colour[col], size=11, symbol="diamond"))
            continue
        dash = "dot" if col.startswith("val_") else "solid"
        fig.add_scatter(x=epochs["x"].tolist(), y=epochs[col].tolist(), mode="lines+markers", name=name,
                        line=dict(color=colour[col], dash=dash), xaxis="x2", yaxis="y2")
    kept = _kept_epoch(events)
    if kept is not None:
        fig.add_shape(type="line", xref="x2", yref="y2 domain", x0=kept, x1=kept, y0=0, y1=1,
                      line=dict(color=MUTED, dash="dash"))
        fig.add_annotation(x=kept, y=0.02, xref="x2", yref="y2 domain", text=" kept", xanchor="left",
                           showarrow=False, yanchor="bottom", font=dict(size=11, color=MUTED))
    return fig


def _kept_epoch(events: Sequence[TrainEvent]) -> float | None:
    """x of the epoch a validation hold-out kept, when it was not the last one trained."""
    done = next((e for e in reversed(events) if isinstance(e, Done)), None)
    if not done or done.best_epoch is None or done.best_epoch == done.epochs:
        return None
    last_stage = next((e.stage for e in reversed(events) if isinstance(e, Start)), None)
    return _stage_offsets(events).get(last_stage, 0) + int(done.best_epoch)


def lr_finder(lrs: Sequence[float], losses: Sequence[float], suggestion: float | None = None) -> go.Figure:
    fig = _fig(title="Learning-rate range test", xaxis_title="learning rate (log scale)", yaxis_title="loss",
               height=300)
    fig.add_scatter(x=list(lrs), y=list(losses), mode="lines", line_color=ACCENT, name="loss")
    fig.update_xaxes(type="log")
    if suggestion:
        fig.add_vline(x=suggestion, line_dash="dash", line_color=MUTED,
                      annotation_text=f"suggested {suggestion:.2g}")
    return fig


def compare_curves(histories: dict[str, Sequence[TrainEvent | dict]], metric: str) -> go.Figure:
    """One line per run of a per-epoch value (`train_loss` or a metric key such as hr@10)."""
    fig = _fig(title=metric, xaxis_title="epoch", yaxis_title=metric, height=340,
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
    fig = _fig(title="Final test metrics (" + ("lower" if lower else "higher") + " is better)", barmode="group",
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


# ---------------------------------------------------------------- embeddings


GENRE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#393b79")  # ten that stay apart (Tableau 10, the grey swapped for navy)
OTHER_COLOUR = "#c7c7c7"


def genre_groups(genres: pd.Series, *, focus: str | None = None, max_groups: int = 10) -> pd.Series:
    """One colour category per row from pipe-joined genres ('Action|Comedy').

    Without `focus`: the primary (first-listed) genre, the `max_groups - 1` most common kept and the
    rest called 'other genres', so a legend never outgrows the colours people can tell apart.
    With `focus`: that genre against the rest ('Comedy' / 'not Comedy')."""
    # Split each distinct genre list once: 59,000 items have a few hundred of them.
    codes, lists = pd.factorize(genres.fillna("").astype(str))
    if focus:
        has = np.asarray([focus in g.split("|") for g in lists], dtype=bool)[codes]
        return pd.Series(np.where(has, focus, f"not {focus}"), index=genres.index)
    first = pd.Series(np.asarray([g.split("|")[0] or "unknown" for g in lists], dtype=object)[codes],
                      index=genres.index)
    keep = first.value_counts().index[: max_groups - 1]
    return first.where(first.isin(keep), "other genres")


def hover_sample(coords: pd.DataFrame, max_hover: int, seed: int = 0) -> np.ndarray:
    """(len(coords),) bool: the rows whose names a large scatter carries for hovering: the `max_hover`
    most popular where `coords` has a popularity column, else a seeded random sample; all when few."""
    n = len(coords)
    keep = np.zeros(n, dtype=bool)
    if n <= max_hover:
        keep[:] = True
    elif "popularity" in coords:
        keep[np.argsort(-coords["popularity"].to_numpy(), kind="stable")[:max_hover]] = True
    else:
        keep[np.random.default_rng(seed).choice(n, max_hover, replace=False)] = True
    return keep


def pca_scatter(coords: pd.DataFrame, color: str, *, dims: int = 2, highlight: Sequence[int] = (),
                kind: str = "item", focus: str | None = None, max_labels: int = 12,
                max_hover: int = 5000) -> go.Figure:
    """Items (or users) at their first principal components; hover shows the title.

    `coords` has pc1..pcN, `title`, and the colour column; `highlight` lists row positions of search
    matches, drawn as large labelled markers (the first `max_labels` get their title written).
    Genres colour by primary genre (at most ten colours) or one `focus` genre against the rest;
    numbers by a colour scale. WebGL traces (Scattergl; Scatter3d is WebGL too), one per colour: a
    few, not one per genre combination. Beyond `max_hover` points every point is still drawn, but
    only a sample (`hover_sample`: the most popular) carries its name for hovering, in a trace of
    its own beside an unnamed one per colour: names are most of what a figure of 59,000 items
    weighs, and the search finds any title.
    """
    three = dims == 3 and "pc3" in coords
    named = hover_sample(coords, max_hover)
    sampled = not named.all()
    # Hover names for the named rows only: building 59,000 strings costs as much as the rest of the figure.
    shown = coords.loc[named]
    if "title" in shown or "id" in shown:
        hover = shown["title" if "title" in shown else "id"].astype(str)
    else:
        hover = pd.Series(np.flatnonzero(named).astype(str), index=shown.index)
    if "genres" in shown:
        hover = hover + "<br>" + shown["genres"].fillna("").astype(str).str.replace("|", ", ", regex=False)
    hover_of = np.full(len(coords), None, dtype=object)
    hover_of[named] = hover.to_numpy()
    title = f"{kind.capitalize()} embeddings, first principal components"
    if sampled:
        which = "most popular" if "popularity" in coords else "sampled"
        title += (f"<br><sup>all {len(coords):,} {kind}s drawn; names on hover for the {int(named.sum()):,} "
                  f"{which}, search to find any other</sup>")
    fig = _fig(height=580, title=title, legend=dict(itemsizing="constant", title=None))
    xyz = ("pc1", "pc2", "pc3") if three else ("pc1", "pc2")

    def trace(rows: np.ndarray, name: str, marker: dict, show: bool, with_names: bool) -> None:
        pts = {a: coords[c].to_numpy()[rows] for a, c in zip("xyz", xyz, strict=False)}
        marker = {**marker, "size": 3.5 if three else 7}
        if isinstance(marker.get("color"), np.ndarray):
            marker["color"] = marker["color"][rows]
        kw = dict(mode="markers", name=name, showlegend=show, legendgroup=name, hoverinfo="skip")
        if with_names:
            kw.update(hovertext=hover_of[rows], hoverinfo="text")
        elif "colorbar" in marker:
            marker["showscale"] = False  # one colour bar, on the named trace
        fig.add_trace(go.Scatter3d(**pts, marker=marker, **kw) if three else go.Scattergl(**pts, marker=marker, **kw))

    def add(mask: np.ndarray, name: str, marker: dict, show: bool = True) -> None:
        if sampled:  # the unnamed points first, under the named ones; one legend entry toggles both
            trace(np.flatnonzero(mask & ~named), name, marker, show=False, with_names=False)
        trace(np.flatnonzero(mask & named), name, marker, show=show, with_names=True)

    if color == "genres" and "genres" in coords:
        groups = genre_groups(coords["genres"], focus=focus)
        order = ([focus, f"not {focus}"] if focus else
                 [g for g in groups.value_counts().index if g != "other genres"] + ["other genres"])
        for i, g in enumerate(order):
            mask = (groups == g).to_numpy()
            if mask.any():
                grey = g in ("other genres", f"not {focus}")
                add(mask, g, dict(color=OTHER_COLOUR if grey else GENRE_COLOURS[i % len(GENRE_COLOURS)],
                                  opacity=0.45 if grey else 0.8))
    elif color in coords:
        values = coords[color].astype(np.float32).to_numpy()
        everything = np.ones(len(coords), dtype=bool)
        finite = values[np.isfinite(values)]
        scale = dict(cmin=float(finite.min()), cmax=float(finite.max())) if len(finite) else {}  # both traces alike
        add(everything, color.replace("_", " "), dict(color=values, colorscale="Viridis", opacity=0.8, **scale,
                                                      colorbar=dict(title=color.replace("_", " "))), show=False)
    else:
        add(np.ones(len(coords), dtype=bool), kind, dict(color=MUTED, opacity=0.8))
    if len(highlight):
        sel = coords.iloc[list(highlight)]
        names = sel["title"].astype(str) if "title" in sel else sel.get("id", pd.Series(dtype=str)).astype(str)
        text = [n if j < max_labels else "" for j, n in enumerate(names)]
        pts = {a: sel[c].to_numpy() for a, c in zip("xyz", xyz, strict=False)}
        style = dict(mode="markers+text", text=text, name="search matches", hovertext=names.to_numpy(),
                     hoverinfo="text", textfont=dict(size=13, color="#111"))
        if three:
            fig.add_scatter3d(**pts, marker=dict(size=7, color=ACCENT, symbol="diamond", line=dict(color="#111")),
                              **style)
        else:
            fig.add_scatter(**pts, textposition="top center",
                            marker=dict(size=14, color=ACCENT, symbol="star", line=dict(color="#111", width=1.5)),
                            **style)
    if three:
        fig.update_layout(scene=dict(xaxis_title="PC1", yaxis_title="PC2", zaxis_title="PC3"))
    else:
        fig.update_layout(xaxis_title="PC1", yaxis_title="PC2")
    return fig


def explained_variance(ratios: Sequence[float]) -> go.Figure:
    ratios = [float(r) for r in ratios]
    fig = _fig(title="Share of the embedding variance per component", xaxis_title="component",
               yaxis_title="explained variance", height=260)
    fig.add_bar(x=[f"PC{i + 1}" for i in range(len(ratios))], y=ratios, marker_color=ACCENT,
                text=[f"{r:.0%}" for r in ratios], textposition="outside")
    fig.update_yaxes(tickformat=".0%", range=[0, max(ratios + [0.01]) * 1.25])
    return fig


# ---------------------------------------------------------------- the model page


def architecture(layers: Sequence[dict]) -> go.Figure:
    """The layers of `ncf.models.describe_architecture` as a stack of boxes, input at the bottom,
    each labelled with its tensor shape and parameter count (and the arithmetic behind the shape)."""
    n = len(layers)
    fig = _fig(height=max(220, 62 * n + 40), margin=dict(l=0, r=0, t=10, b=0), showlegend=False)
    for i, layer in enumerate(layers):
        y = i  # input at the bottom, prediction on top, as in the paper's figures
        name = str(layer.get("name", ""))
        family = name.split()[0].lower().rstrip(":") if name else ""
        colour = {"gmf": "#fde2e4", "mlp": "#e2ecf9", "neumf": "#fff1cc"}.get(family, "#eef1f4")
        fig.add_shape(type="rect", x0=0.02, x1=0.98, y0=y - 0.38, y1=y + 0.38, fillcolor=colour,
                      line=dict(color="#b8c2cc"), layer="below")
        params = int(layer.get("params") or 0)
        fig.add_annotation(x=0.04, y=y + 0.12, text=f"<b>{_esc(name)}</b>", showarrow=False, xanchor="left",
                           font=dict(size=13))
        fig.add_annotation(x=0.96, y=y + 0.12, text=f"{_esc(layer.get('shape', ''))}", showarrow=False,
                           xanchor="right", font=dict(size=13, family="monospace"))
        detail = _esc(str(layer.get("note") or ""))
        detail += ("  ·  " if detail else "") + (f"{params:,} parameters" if params else "no parameters")
        fig.add_annotation(x=0.04, y=y - 0.17, text=detail, showarrow=False, xanchor="left",
                           font=dict(size=11, color="#52606d"))
    fig.update_xaxes(visible=False, range=[0, 1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.6, n - 0.4], fixedrange=True)
    return fig


def _esc(text: object) -> str:
    """Plotly annotations accept a little HTML; names from data must be shown as text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sweep_chart(rows: Sequence[dict], x: str, metric: str = "hr@10", series: str = "model",
                published: Sequence = ()) -> go.Figure:
    """A metric against one swept setting, a line per `series` value with the mean over seeds and a band
    of min to max (the shape of He et al.'s Figures 4-7). Published figures (`ncf.reference.Published`)
    are drawn as hollow markers on dotted lines and named with their source, never as measured here."""
    frame = pd.DataFrame([r for r in rows if r.get(metric) is not None and r.get(x) is not None])
    fig = _fig(height=400, xaxis_title=x.replace("_", " "), yaxis_title=metric_label(metric),
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
        if getattr(p, "factors", None) is not None and x == "factors":
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
    fig = _fig(height=400, xaxis_title="training time (s)", yaxis_title=metric_label(metric),
               legend=dict(orientation="h", y=-0.25))
    if frame.empty:
        return fig
    colours = px.colors.qualitative.D3
    for i, (name, group) in enumerate(frame.groupby(series, sort=False)):
        text = ["<br>".join(f"{_esc(k)} {_esc(r[k])}" for k in hover if k in r) for _, r in group.iterrows()]
        fig.add_trace(go.Scatter(x=group["train_seconds"], y=group[metric], mode="markers", name=str(name),
                                 marker=dict(size=10, color=colours[i % len(colours)]), text=text,
                                 customdata=group["run"] if "run" in group.columns else None,
                                 hovertemplate=f"{_esc(name)}<br>%{{text}}<br>%{{x:.1f}} s · %{{y:.4f}}"
                                               "<extra></extra>"))
    return fig
