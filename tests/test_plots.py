"""The figure builders: right traces from real events and data, names from data shown as text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ncf import aggregates, plots
from ncf.data import synthetic
from ncf.data.dataset import Dataset

EVENTS = [
    {"event": "start", "epochs": 2, "stage": "neumf"},
    {"event": "batch", "epoch": 1, "step": 10, "steps": 20, "loss": 0.69, "stage": "neumf"},
    {"event": "batch", "epoch": 1, "step": 20, "steps": 20, "loss": 0.5, "stage": "neumf"},
    {"event": "epoch", "epoch": 1, "train_loss": 0.6, "metrics": {"hr@10": 0.3, "ndcg@10": 0.2}, "stage": "neumf"},
    {"event": "batch", "epoch": 2, "step": 10, "steps": 20, "loss": 0.4, "stage": "neumf"},
]


def traces(fig) -> dict:
    return {t.name: t for t in fig.data}


def test_training_curves_place_batches_within_their_epoch():
    fig = plots.training_curves(EVENTS)
    t = traces(fig)
    assert list(t["loss (batches)"].x) == [0.5, 1.0, 1.5]
    hr = t["HR@10 (99 sampled negatives)"]
    assert list(hr.y) == [0.3] and hr.xaxis == "x2"
    assert list(t["loss (epoch mean)"].x) == [1]


def test_full_ranking_metrics_are_points_computed_at_the_end_and_errors_get_their_own_panel():
    events = [*EVENTS, {"event": "epoch", "epoch": 2, "train_loss": 0.5, "stage": "neumf",
                        "metrics": {"hr@10": 0.4, "full_recall@10": 0.1}}]
    t = traces(plots.training_curves(events))
    full = t["Recall@10 (full ranking), computed at the end"]
    assert full.mode == "markers"
    rating = [{"event": "start", "epochs": 1, "stage": "embnn"},
              {"event": "epoch", "epoch": 1, "train_loss": 0.9, "stage": "embnn",
               "metrics": {"rmse": 0.95, "mae": 0.75, "hr@10": 0.15}}]
    fig = plots.training_curves(rating)
    assert set(traces(fig)) == {"loss (epoch mean)", "RMSE", "MAE"}  # no ranking metric beside the errors
    assert any("lower is better" in a.text for a in fig.layout.annotations)


def test_pretraining_stages_are_labelled_bands():
    events = [{"event": "start", "epochs": 2, "stage": "gmf"}, {"event": "start", "epochs": 2, "stage": "mlp"},
              {"event": "start", "epochs": 3, "stage": "neumf"}]
    fig = plots.training_curves(events)
    bands = [s for s in fig.layout.shapes if s.type == "rect" and s.xref == "x"]
    assert [(b.x0, b.x1) for b in bands] == [(0, 2), (2, 4), (4, 7)]
    assert {a.text for a in fig.layout.annotations} >= {"<b>gmf</b> stage", "<b>mlp</b> stage", "<b>neumf</b> stage"}


def test_pretraining_stages_are_laid_end_to_end():
    events = [{"event": "start", "epochs": 3, "stage": "gmf"},
              {"event": "epoch", "epoch": 3, "train_loss": 0.3, "metrics": {}, "stage": "gmf"},
              {"event": "start", "epochs": 2, "stage": "neumf"},
              {"event": "epoch", "epoch": 1, "train_loss": 0.2, "metrics": {}, "stage": "neumf"}]
    _, epochs = plots.curves_frame(events)
    assert list(epochs["x"]) == [3, 4]


def test_the_epoch_a_validation_hold_out_kept_is_marked_after_the_earlier_stages():
    events = [{"event": "start", "epochs": 3, "stage": "gmf"},
              {"event": "start", "epochs": 3, "stage": "neumf"},
              *({"event": "epoch", "epoch": e, "train_loss": 0.2, "metrics": {"val_hr@10": 0.5}, "stage": "neumf"}
                for e in (1, 2, 3))]
    kept = [*events, {"event": "done", "epochs": 3, "best_epoch": 0}]
    (line,) = [s for s in plots.training_curves(kept).layout.shapes if s.type == "line"]
    assert line.x0 == 3 and line.xref == "x2"  # the NeuMF as initialised, right after GMF's 3 epochs
    for last in ({"event": "done", "epochs": 3, "best_epoch": 3}, {"event": "done", "epochs": 3, "best_epoch": None}):
        assert not [s for s in plots.training_curves([*events, last]).layout.shapes if s.type == "line"]


def test_no_events_gives_an_empty_figure():
    assert not plots.training_curves([]).data


def test_data_figures_count_what_is_there():
    ds = synthetic()
    summary = aggregates.summarize(ds)
    hist = plots.rating_histogram(summary)
    assert sum(hist.data[0].y) == ds.n_interactions
    tail = plots.long_tail(summary)
    assert list(tail.data[0].y) == sorted(ds.per_item_counts(), reverse=True)
    users = plots.per_user_histogram(summary)
    assert sum(users.data[0].y) == ds.n_users and users.data[0].type == "bar"  # bars, not a value per user
    implicit = aggregates.summarize(Dataset(name="i", user=ds.user, item=ds.item, rating=None, timestamp=None,
                                            users=ds.users, items=ds.items))
    assert "Implicit" in plots.rating_histogram(implicit).layout.annotations[0].text


def test_pca_scatter_highlights_matches_in_2d_and_3d():
    coords = pd.DataFrame({"pc1": [0, 1, 2], "pc2": [1, 0, 1], "pc3": [0, 0, 1], "title": ["A", "B", "C"],
                           "genres": ["X|Y", "Y", "X"]})
    fig2 = plots.pca_scatter(coords, "genres", dims=2, highlight=[2])
    assert [a.text for a in fig2.layout.annotations] == ["C"]  # a few matches are labelled
    assert {t.name for t in fig2.data} >= {"X", "Y"}  # first genre of "X|Y" colours it
    fig3 = plots.pca_scatter(coords, "genres", dims=3)
    assert fig3.data[0].type == "scatter3d"


def test_architecture_escapes_markup_from_names():
    layers = [{"name": "<b>user</b> embedding", "shape": "(B, 8)", "params": 80, "note": "10 users × 8"}]
    text = " ".join(a.text for a in plots.architecture(layers).layout.annotations)
    assert "&lt;b&gt;user&lt;/b&gt;" in text and "80 parameters" in text


def test_explained_variance_and_metric_bars():
    fig = plots.explained_variance(np.array([0.5, 0.25]))
    assert list(fig.data[0].x) == ["PC1", "PC2"]
    rows = pd.DataFrame({"label": ["neumf", "pop"], "hr@10": [0.6, 0.4], "ndcg@10": [0.35, 0.2]})
    bars = plots.metric_bars(rows, "label", ["hr@10", "ndcg@10"])
    assert [t.name for t in bars.data] == ["neumf", "pop"] and list(bars.data[1].y) == [0.4, 0.2]


def test_genres_colour_by_primary_genre_in_at_most_ten_groups_or_one_against_the_rest():
    genres = pd.Series([f"G{i % 15}|Drama" for i in range(300)] + ["Comedy|Romance"] * 40 + [None])
    groups = plots.genre_groups(genres)
    assert groups.nunique() <= 10 and "other genres" in set(groups) and groups.iloc[-1] == "other genres"
    focus = plots.genre_groups(genres, focus="Drama")
    assert set(focus) == {"Drama", "not Drama"} and (focus == "Drama").sum() == 300


def test_the_embedding_scatter_has_few_traces_and_labels_the_highlighted_titles():
    n = 3000
    rng = np.random.default_rng(0)
    coords = pd.DataFrame({"pc1": rng.normal(size=n), "pc2": rng.normal(size=n), "title": [f"t{i}" for i in range(n)],
                           "genres": ["|".join(rng.choice(list("ABCDEFGHIJKLMNOPQR"), 3)) for _ in range(n)]})
    fig = plots.pca_scatter(coords, "genres", highlight=[0, 1, 2])
    assert len(fig.data) <= 11  # ten colours and the matches, not one trace per genre combination
    assert [a.text for a in fig.layout.annotations] == ["t0", "t1", "t2"]


def test_a_large_scatter_is_webgl_with_names_only_for_the_popular_sample_and_the_matches():
    n, sample = 20_000, 500
    rng = np.random.default_rng(0)
    coords = pd.DataFrame({"pc1": rng.normal(size=n), "pc2": rng.normal(size=n), "title": [f"t{i}" for i in range(n)],
                           "genres": rng.choice(["A", "B|C", "C", "D|A"], n), "popularity": rng.permutation(n)})
    for colour in ("genres", "popularity"):
        fig = plots.pca_scatter(coords, colour, highlight=[7, 8], max_hover=sample)
        points = [t for t in fig.data if t.name != "search matches"]
        assert {t.type for t in points} == {"scattergl"}
        assert sum(len(t.x) for t in points) == n  # every point drawn
        named = [h for t in points if t.hovertext is not None for h in t.hovertext]
        most_popular = coords.nlargest(sample, "popularity")["title"]
        assert len(named) == sample and {h.split("<br>")[0] for h in named} == set(most_popular)
        assert all(t.hoverinfo == "skip" for t in points if t.hovertext is None)
        assert [a.text for a in fig.layout.annotations] == ["t7", "t8"]  # labels: the matches only
        assert "names on hover for the 500 most popular" in fig.layout.title.text
    assert plots.hover_sample(coords.drop(columns="popularity"), sample).sum() == sample  # seeded sample


def _catalogue(n: int, seed: int = 0) -> pd.DataFrame:
    """ML-32M's item count with titles, pipe-joined genres and a long-tailed popularity."""
    rng = np.random.default_rng(seed)
    genres = np.array(["Drama", "Comedy|Romance", "Action|Sci-Fi", "Horror", "Documentary", "Western|Action"])
    return pd.DataFrame({"pc1": rng.normal(size=n).astype(np.float32), "pc2": rng.normal(size=n).astype(np.float32),
                         "title": [f"Film {i} (1999)" for i in range(n)], "genres": rng.choice(genres, n),
                         "popularity": rng.zipf(1.5, n)})


def test_the_scatter_sent_for_84_000_items_stays_small_and_typed():
    import json

    import plotly.io as pio

    n = 84_432
    coords = _catalogue(n)
    for colour in ("genres", "popularity"):
        spec = pio.to_json(plots.pca_scatter(coords, colour, highlight=[3, 10]), validate=False)
        # Coordinates as base64 float32 (about 10.7 bytes a point in 2D) and names for the 5,000-item
        # sample: 1.39 MB with genres, 1.89 MB with a colour value per point. A name on every point made
        # it 4.95 MB, and plain lists of float64 coordinates would add about 2 MB.
        assert len(spec) < (1_500_000 if colour == "genres" else 2_000_000), (colour, len(spec))
        points = [t for t in json.loads(spec)["data"] if t["name"] != "search matches"]
        assert all(t["x"]["dtype"] == "f4" and "bdata" in t["x"] for t in points)
        named = sum(len(t.get("hovertext") or []) for t in points)
        assert named == 5_000  # names for the sample only; the matches carry their own


def test_a_large_scatter_draws_once_with_small_markers_and_the_matches_on_top():
    small, large = _catalogue(2_000), _catalogue(84_432)
    fig = plots.pca_scatter(large, "genres", highlight=[3, 10])
    # Fixed margins: the template's automargin made plotly draw every point twice (measure, then redraw).
    assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False
    assert fig.layout.margin.l >= 60 and fig.layout.margin.b >= 40  # room for the ticks and "PC1"/"PC2"
    sizes = {t.marker.size for t in fig.data if t.name != "search matches"}
    assert sizes == {4.0}  # past 20,000 points big markers merge, and their pixels are most of the drawing
    assert {t.marker.size for t in plots.pca_scatter(small, "genres").data} == {7.0}
    # The stars in the same WebGL layer as the points, after them (an SVG trace lay under the canvas);
    # their titles as annotations, which plotly draws above the canvas.
    assert fig.data[-1].name == "search matches" and fig.data[-1].type == "scattergl"
    assert [a.text for a in fig.layout.annotations] == ["Film 3 (1999)", "Film 10 (1999)"]
    many = plots.pca_scatter(large, "popularity", highlight=list(range(40)))
    assert len(many.layout.annotations) == 12 and len(many.data[-1].x) == 40  # 12 titles, every star
    assert plots.pca_scatter(_catalogue(50).assign(title="<b>x</b>"), "genres",
                             highlight=[0]).layout.annotations[0].text == "&lt;b&gt;x&lt;/b&gt;"  # text, not markup
