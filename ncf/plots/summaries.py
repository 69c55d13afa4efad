"""The Data page's figures, drawn from `ncf.aggregates.DataSummary` (bounded, whatever the data's size):
ratings, the long tail of popularity, interactions per user."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ncf.aggregates import DataSummary
from ncf.plots.style import ACCENT, MUTED, new_figure


def rating_histogram(summary: DataSummary) -> go.Figure:
    """Counts of each rating value (`ncf.aggregates.summarize`); a note instead of bars for implicit feedback."""
    fig = new_figure(title="Ratings", xaxis_title="rating", yaxis_title="interactions", height=300)
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
    fig = new_figure(title=f"Long tail of popularity<br><sup>the top {head:,} of {n:,} items hold half of "
                     "all interactions</sup>",
               xaxis_title="items, most popular first", yaxis_title="interactions per item", height=300)
    fig.add_scatter(x=summary.tail_rank, y=summary.tail_count, mode="lines", fill="tozeroy",
                    line_color=ACCENT, hovertemplate="item rank %{x:,}: %{y:,} interactions", name="items")
    fig.add_vrect(x0=0.5, x1=head + 0.5, fillcolor=MUTED, opacity=0.15, line_width=0)
    return fig


def per_user_histogram(summary: DataSummary) -> go.Figure:
    """Users per number of interactions, as bars counted in `ncf.aggregates` (not one value per user)."""
    median = summary.user_median
    fig = new_figure(title=f"Interactions per user (median {median:g})" if np.isfinite(median) else "Interactions per user",
               xaxis_title="interactions of a user", yaxis_title="users", height=300)
    edges, counts = summary.user_edges, summary.user_counts
    if len(counts):
        width = float(edges[1] - edges[0])
        label = [f"{lo:,.0f}" if width == 1 else f"{lo:,.0f}–{lo + width - 1:,.0f}" for lo in edges[:-1]]
        fig.add_bar(x=(edges[:-1] + width / 2 - 0.5), y=counts, width=width, marker_color=MUTED, customdata=label,
                    hovertemplate="%{customdata} interactions: %{y:,} users<extra></extra>")
    return fig
