"""Embeddings at their principal components: a WebGL scatter coloured by genre or a number, search matches
marked, names on hover for a sample of a large catalogue; and the variance each component explains."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ncf.plots.style import ACCENT, MUTED, esc, new_figure

GENRE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#393b79")  # ten that stay apart (Tableau 10, the grey swapped for navy)
OTHER_COLOUR = "#c7c7c7"
AXIS_MARGIN = {"l": 64, "b": 48}  # px: room for the tick labels and the axis title of a 2D scatter


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


def marker_size(n: int, full: float = 7.0, smallest: float = 4.0, up_to: int = 20_000) -> float:
    """Pixels across a 2D scatter's marker for `n` points: `full` up to `up_to` points, then shrinking
    as 1/sqrt(n) (the same ink in all), never below `smallest`. Past 20,000 points big markers merge into
    one blot, and in a browser that draws WebGL in software (headless Chromium) their pixels are most of
    the drawing: 84,432 points took 2.7 s of CPU at 7 px and 1.8 s at 4 px."""
    return float(np.clip(full * (up_to / max(n, 1)) ** 0.5, smallest, full))


def pca_scatter(coords: pd.DataFrame, color: str, *, dims: int = 2, highlight: Sequence[int] = (),
                kind: str = "item", focus: str | None = None, max_labels: int = 12,
                max_hover: int = 5000) -> go.Figure:
    """Items (or users) at their first principal components; hover shows the title.

    `coords` has pc1..pcN, `title`, and the colour column; `highlight` lists row positions of search
    matches, drawn as large markers on top, the first `max_labels` with their title written (in 2D as
    layout annotations, in 3D as the trace's text).
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
    fig = new_figure(height=580, title=title, legend=dict(itemsizing="constant", title=None))
    xyz = ("pc1", "pc2", "pc3") if three else ("pc1", "pc2")
    size = marker_size(len(coords))

    def trace(rows: np.ndarray, name: str, marker: dict, show: bool, with_names: bool) -> None:
        pts = {a: coords[c].to_numpy()[rows] for a, c in zip("xyz", xyz, strict=False)}
        marker = {**marker, "size": 3.5 if three else size}
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
        # The colour bar stops short of the top right corner, where the legend puts 'search matches'.
        bar = dict(title=color.replace("_", " "), len=0.8, y=0, yanchor="bottom")
        add(everything, color.replace("_", " "), dict(color=values, colorscale="Viridis", opacity=0.8, **scale,
                                                      colorbar=bar), show=False)
    else:
        add(np.ones(len(coords), dtype=bool), kind, dict(color=MUTED, opacity=0.8))
    if len(highlight):
        sel = coords.iloc[list(highlight)]
        names = sel["title"].astype(str) if "title" in sel else sel.get("id", pd.Series(dtype=str)).astype(str)
        pts = {a: sel[c].to_numpy() for a, c in zip("xyz", xyz, strict=False)}
        style = dict(name="search matches", hovertext=names.to_numpy(), hoverinfo="text")
        if three:
            text = [n if j < max_labels else "" for j, n in enumerate(names)]
            fig.add_scatter3d(**pts, mode="markers+text", text=text, textfont=dict(size=13, color="#111"),
                              marker=dict(size=7, color=ACCENT, symbol="diamond", line=dict(color="#111")), **style)
        else:
            # The stars a WebGL trace, drawn after the points: plotly puts its WebGL canvas over the SVG layer,
            # where an SVG trace's stars lay hidden under 84,000 points. The titles are annotations, which
            # plotly draws above the canvas, on a white ground: readable over a dark colour scale too.
            fig.add_scattergl(**pts, mode="markers", **style,
                              marker=dict(size=14, color=ACCENT, symbol="star", line=dict(color="#111", width=1.5)))
            for x, y, name in zip(pts["x"][:max_labels], pts["y"][:max_labels], names.iloc[:max_labels], strict=True):
                fig.add_annotation(x=float(x), y=float(y), text=esc(name), showarrow=True, arrowhead=0, arrowwidth=1,
                                   arrowcolor="#111", ax=0, ay=-22, font=dict(size=12, color="#111"),
                                   bgcolor="rgba(255,255,255,0.85)", borderpad=2)
    if three:
        fig.update_layout(scene=dict(xaxis_title="PC1", yaxis_title="PC2", zaxis_title="PC3"))
    else:
        # Fixed margins instead of the template's automargin: automargin measures the tick labels after a
        # first draw and draws again, and a redraw of 84,000 WebGL points costs the browser about a second
        # (1.5 s against 2.5 s for ML-32M's items in headless Chromium). The margins fit ticks like
        # "−0.04" and the axis titles.
        fig.update_layout(xaxis=dict(title=dict(text="PC1", standoff=8), automargin=False),
                          yaxis=dict(title=dict(text="PC2", standoff=8), automargin=False),
                          margin=dict(l=AXIS_MARGIN["l"], b=AXIS_MARGIN["b"]))
    return fig


def explained_variance(ratios: Sequence[float]) -> go.Figure:
    ratios = [float(r) for r in ratios]
    fig = new_figure(title="Share of the embedding variance per component", xaxis_title="component",
               yaxis_title="explained variance", height=260)
    fig.add_bar(x=[f"PC{i + 1}" for i in range(len(ratios))], y=ratios, marker_color=ACCENT,
                text=[f"{r:.0%}" for r in ratios], textposition="outside")
    fig.update_yaxes(tickformat=".0%", range=[0, max(ratios + [0.01]) * 1.25])
    return fig
