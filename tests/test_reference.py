"""Published figures appear only beside results on the same protocol, named as published."""

from __future__ import annotations

from ncf.config import DataConfig
from ncf.plots import sweep_chart
from ncf.reference import PUBLISHED, published_for


def test_published_figures_show_only_for_ml1m_leave_one_out_with_99_negatives():
    paper = DataConfig(source="ml-1m", split="leave_one_out", test_negatives=99)
    assert published_for(paper)
    assert not published_for(paper.replace(source="ml-100k"))
    assert not published_for(paper.replace(test_negatives=999))
    assert not published_for(paper.replace(split="ratio"))
    assert not published_for(paper, k=20)
    assert {p.model for p in published_for(paper, models={"neumf"})} == {"neumf"}


def test_every_published_figure_names_its_source_and_is_a_rate():
    for p in PUBLISHED:
        assert p.source and 0 < p.ndcg < p.hr < 1


def test_the_sweep_chart_draws_a_line_per_model_a_band_over_seeds_and_published_points_apart():
    rows = [{"model": m, "factors": f, "seed": s, "hr@10": 0.5 + 0.01 * f / 8 + 0.001 * s}
            for m in ("gmf", "neumf") for f in (8, 16, 32, 64) for s in (0, 1)]
    published = published_for(DataConfig(source="ml-1m"), models={"neumf"})
    fig = sweep_chart(rows, "factors", "hr@10", published=published)
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names[:2] == ["GMF", "NeuMF"]  # the registry's labels
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2  # two seeds: a min-max band per model
    published_traces = [t for t in fig.data if t.name and "published" in t.name]
    # He et al.'s two NeuMF series and Dacrema et al.'s single re-run point
    assert len(published_traces) == 3 and all(t.line.dash == "dot" for t in published_traces)
    assert fig.layout.yaxis.title.text.startswith("HR@10")
