"""Side features read from each GroupLens layout, encoded per user and item index."""

from __future__ import annotations

import numpy as np
import pytest

from ncf.data import load
from ncf.data.features import available, build, encode
from ncf.errors import ConfigError

from .conftest import LAYOUTS

TIME = ("hour", "weekday", "years_since_release")  # every layout here has timestamps and titles with years
EXPECTED = {
    "ml-100k": ("age", "gender", "occupation", "zip", "genres", "year", *TIME),
    "ml-1m": ("age", "gender", "occupation", "zip", "genres", "year", *TIME),
    "ml-10m": ("genres", "year", *TIME),
    "csv": ("genres", "year", *TIME),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_offers_its_side_features(layout, tmp_path):
    ds = load(str(LAYOUTS[layout](tmp_path)))
    assert available(ds) == EXPECTED[layout]
    fs = build(ds, ["all"])
    assert fs.names == EXPECTED[layout]
    for spec in fs.specs:
        if spec.side == "context":  # per interaction: the model reads them from the batch's context
            continue
        n = ds.n_users if spec.side == "user" else ds.n_items
        assert len(fs.tables[spec.name]) == n


def _decode_bag(spec, codes) -> set[str]:
    return {spec.categories[c - 1] for c in codes if c > 0}


@pytest.mark.parametrize("layout", ["ml-100k", "ml-1m", "csv"])
def test_genres_are_a_multi_hot_bag(layout, tmp_path):
    ds = load(str(LAYOUTS[layout](tmp_path)))
    fs = build(ds, ("genres",))
    spec = fs.specs[0]
    assert spec.kind == "bag" and spec.max_len == 3  # Toy Story: Animation, Children's, Comedy
    toy = int(ds.items.index(1)[0])
    assert _decode_bag(spec, fs.tables["genres"][toy]) == {"Animation", "Children's", "Comedy"}
    heat = int(ds.items.index(5)[0])
    assert _decode_bag(spec, fs.tables["genres"][heat]) == {"Action"}
    assert (fs.tables["genres"][heat][1:] == 0).all()  # padded with the unknown/padding code


def test_release_year_comes_from_the_title_and_is_normalised(tmp_path):
    ds = load(str(LAYOUTS["ml-100k"](tmp_path)))
    fs = build(ds, ("year",))
    spec = fs.specs[0]
    years = fs.tables["year"] * spec.std + spec.mean
    assert np.allclose(years, [1995, 1995, 1977, 2001, 1995], atol=1e-3)
    assert abs(float(fs.tables["year"].mean())) < 1e-5


def test_ml1m_users_have_demographics_and_zip_regions(tmp_path):
    ds = load(str(LAYOUTS["ml-1m"](tmp_path)))
    fs = build(ds, ("gender", "occupation", "zip"))
    spec = fs.specs[1]
    assert spec.name == "occupation" and "K-12 student" in spec.categories
    assert spec.categories[fs.tables["occupation"][0] - 1] == "K-12 student"  # user 1: code 10
    assert fs.specs[2].categories == ("0", "4", "5", "7")


def test_a_category_unseen_in_training_maps_to_unknown_with_a_note(tmp_path):
    ds = load(str(LAYOUTS["ml-100k"](tmp_path)))
    only_other = int(ds.users.index(2)[0])  # the one user whose occupation is 'other'
    seen = {"user": np.array([i for i in range(ds.n_users) if i != only_other])}
    fs = build(ds, ("occupation",), train_index=seen)
    assert "other" not in fs.specs[0].categories
    assert fs.tables["occupation"][only_other] == 0
    assert (fs.tables["occupation"][seen["user"]] > 0).all()
    assert any("other" in note and "unknown" in note for note in fs.notes)


def test_a_genre_never_seen_is_left_out_of_the_bag(tmp_path):
    ds = load(str(LAYOUTS["ml-100k"](tmp_path)))
    spec = build(ds, ("genres",)).specs[0]
    codes, note = encode(spec, ["Action|Space Opera", "Space Opera"])
    assert _decode_bag(spec, codes[0]) == {"Action"} and (codes[1] == 0).all()
    assert "Space Opera" in note


def test_asking_for_a_feature_the_source_lacks_is_refused(tmp_path):
    ds = load(str(LAYOUTS["ml-10m"](tmp_path)))
    with pytest.raises(ConfigError, match="no side feature occupation"):
        build(ds, ("occupation",))
