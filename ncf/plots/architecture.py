"""The Model page's figure: a network's layers as a stack of labelled boxes."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ncf.plots.style import esc, new_figure


def architecture(layers: Sequence[dict]) -> go.Figure:
    """The layers of `ncf.models.describe_architecture` as a stack of boxes, input at the bottom,
    each labelled with its tensor shape and parameter count (and the arithmetic behind the shape)."""
    n = len(layers)
    fig = new_figure(height=max(220, 62 * n + 40), margin=dict(l=0, r=0, t=10, b=0), showlegend=False)
    for i, layer in enumerate(layers):
        y = i  # input at the bottom, prediction on top, as in the paper's figures
        name = str(layer.get("name", ""))
        family = name.split()[0].lower().rstrip(":") if name else ""
        colour = {"gmf": "#fde2e4", "mlp": "#e2ecf9", "neumf": "#fff1cc"}.get(family, "#eef1f4")
        fig.add_shape(type="rect", x0=0.02, x1=0.98, y0=y - 0.38, y1=y + 0.38, fillcolor=colour,
                      line=dict(color="#b8c2cc"), layer="below")
        params = int(layer.get("params") or 0)
        fig.add_annotation(x=0.04, y=y + 0.12, text=f"<b>{esc(name)}</b>", showarrow=False, xanchor="left",
                           font=dict(size=13))
        fig.add_annotation(x=0.96, y=y + 0.12, text=f"{esc(layer.get('shape', ''))}", showarrow=False,
                           xanchor="right", font=dict(size=13, family="monospace"))
        detail = esc(str(layer.get("note") or ""))
        detail += ("  ·  " if detail else "") + (f"{params:,} parameters" if params else "no parameters")
        fig.add_annotation(x=0.04, y=y - 0.17, text=detail, showarrow=False, xanchor="left",
                           font=dict(size=11, color="#52606d"))
    fig.update_xaxes(visible=False, range=[0, 1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.6, n - 0.4], fixedrange=True)
    return fig
