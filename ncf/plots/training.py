"""Training curves from a run's events (loss beside the held-out metrics, pre-training stages laid end to
end, the epoch a validation hold-out kept) and the learning-rate range test."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

from ncf.events import Batch, Done, Epoch, Start, TrainEvent, parse_all
from ncf.labels import is_full_ranking, is_rating_metric, metric_label
from ncf.plots.style import ACCENT, LAYOUT, MUTED, PALETTE, esc, new_figure


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
        **LAYOUT, height=height, uirevision="keep",  # keep the user's zoom while new points arrive
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
            fig.add_annotation(x=(x0 + x1) / 2, y=1.0, xref=xref, yref=yref, text=f"<b>{esc(stage)}</b> stage",
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
    fig = new_figure(title="Learning-rate range test", xaxis_title="learning rate (log scale)", yaxis_title="loss",
               height=300)
    fig.add_scatter(x=list(lrs), y=list(losses), mode="lines", line_color=ACCENT, name="loss")
    fig.update_xaxes(type="log")
    if suggestion:
        fig.add_vline(x=suggestion, line_dash="dash", line_color=MUTED,
                      annotation_text=f"suggested {suggestion:.2g}")
    return fig
