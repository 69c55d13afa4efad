"""What every figure of `ncf.plots` shares: its colours, its layout, and text from data made safe for
Plotly's annotations."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go

ACCENT = "#d1495b"
MUTED = "#8a99a8"
PALETTE = px.colors.qualitative.Bold
LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", font=dict(size=13))

# Metric keys whose larger value is better: the rest (losses, errors) are "lower is better".
RANKING_METRICS = ("hr@", "ndcg@", "full_recall@", "full_ndcg@")


def new_figure(**layout) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(**{**LAYOUT, **layout})
    return fig


def esc(text: object) -> str:
    """Plotly annotations accept a little HTML; names from data must be shown as text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
