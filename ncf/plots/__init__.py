"""Plotly figure builders for the app (and notebooks). Pure functions of core objects; no Streamlit.

Each builder takes plain data (a Dataset, a list of training events, a projection's DataFrame)
and returns a `plotly.graph_objects.Figure`, so a page is a single `st.plotly_chart(fig)` call.

By what the figures show: summaries.py (the Data page: ratings, long tail, interactions per user),
training.py (training curves, the learning-rate range test), embeddings.py (PCA scatter, explained
variance), architecture.py (the Model page's layer stack), comparison.py (runs side by side, sweeps,
time against quality); style.py what they share (colours, layout, escaping).
"""

from ncf.plots.architecture import architecture
from ncf.plots.comparison import compare_curves, metric_bars, sweep_chart, time_quality
from ncf.plots.embeddings import (
           GENRE_COLOURS,
           OTHER_COLOUR,
           explained_variance,
           genre_groups,
           hover_sample,
           pca_scatter,
)
from ncf.plots.style import ACCENT, MUTED, PALETTE, RANKING_METRICS
from ncf.plots.summaries import long_tail, per_user_histogram, rating_histogram
from ncf.plots.training import STAGE_TINTS, curves_frame, lr_finder, training_curves

__all__ = ["ACCENT", "GENRE_COLOURS", "MUTED", "OTHER_COLOUR", "PALETTE", "RANKING_METRICS", "STAGE_TINTS",
           "architecture", "compare_curves", "curves_frame", "explained_variance", "genre_groups", "hover_sample",
           "long_tail", "lr_finder", "metric_bars", "pca_scatter", "per_user_histogram", "rating_histogram",
           "sweep_chart", "time_quality", "training_curves"]
