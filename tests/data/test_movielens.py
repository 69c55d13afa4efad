"""Each GroupLens layout, written small in the real layout, parsed from a folder, a zip and NCF_DATA_DIR."""

import numpy as np
import pytest

from ncf.data import RELEASES, load, load_upload, release_status
from ncf.data.folders import ML100K_GENRES

from .conftest import GENRES, RATINGS, TITLES, write_csv_release, write_ml1m, zip_folder


def _check(ds, kind):
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (4, 5, 10)
    assert ds.users.to_list() == [1, 2, 3, 4] and ds.items.to_list() == [1, 2, 3, 4, 5]
    assert ds.rating.dtype == np.float32 and ds.timestamp.dtype == np.int64
    expected = np.array([r for _, _, r, _ in RATINGS], dtype=np.float32) - (0.5 if kind == "ml-10m" else 0)
    assert np.array_equal(ds.rating, expected)
    assert ds.timestamp.tolist() == [t for *_, t in RATINGS]
    assert ds.titles(ds.items.index([2, 3, 4])) == [TITLES[2], TITLES[3], TITLES[4]]  # latin-1, ':' and ','
    assert ds.item_info["genres"].tolist() == [GENRES[i] for i in range(1, 6)]


def test_each_layout_parses_from_its_folder(layout):
    kind, folder = layout
    ds = load(str(folder))
    _check(ds, kind)
    if kind in ("ml-100k", "ml-1m"):
        assert ds.user_info.columns.tolist() == ["age", "gender", "occupation", "zip"]
        assert len(ds.user_info) == 4
    if kind == "ml-1m":
        assert ds.user_info["occupation"].tolist()[:2] == ["K-12 student", "self-employed"]
        assert ds.user_info["zip"].tolist()[3] == "02460"  # zip codes stay text


def test_each_layout_parses_from_its_zip(layout, tmp_path):
    kind, folder = layout
    archive = tmp_path / "release.zip"
    archive.write_bytes(zip_folder(folder))
    _check(load(str(archive)), kind)
    _check(load_upload("release.zip", archive.read_bytes()), kind)


def test_ml100k_genre_names_come_from_u_genre(tmp_path):
    from .conftest import write_ml100k

    folder = write_ml100k(tmp_path)
    (folder / "u.genre").write_text("".join(f"{g.upper()}|{k}\n" for k, g in enumerate(ML100K_GENRES)))
    assert load(str(folder)).item_info["genres"][4] == "ACTION"


def test_release_name_uses_ncf_data_dir(tmp_path, monkeypatch):
    write_csv_release(tmp_path, "ml-latest-small")
    monkeypatch.setenv("NCF_DATA_DIR", str(tmp_path))
    assert release_status("ml-latest-small")["local"] is True
    ds = load("ml-latest-small")
    assert ds.name == "ml-latest-small" and ds.n_interactions == 10


def test_ml10m_is_found_under_its_own_folder_name(tmp_path, monkeypatch):
    from .conftest import write_ml10m

    write_ml10m(tmp_path)
    monkeypatch.setenv("NCF_DATA_DIR", str(tmp_path))
    assert load("ml-10m").rating_scale == (0.5, 4.5)


def test_a_lone_partial_ratings_file_is_used_and_named(tmp_path, monkeypatch):
    write_ml1m(tmp_path, ratings_name="ratings.users-1-4.partial.dat")
    monkeypatch.setenv("NCF_DATA_DIR", str(tmp_path))
    ds = load("ml-1m")
    assert ds.name == "ml-1m (users 1–4 only: ratings.users-1-4.partial.dat)"
    assert ds.dropped == {"absent from the partial ratings file ratings.users-1-4.partial.dat":
                          RELEASES["ml-1m"].n_ratings - 10}


def test_catalog_lists_every_release_with_the_published_checksums():
    assert list(RELEASES) == ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"]
    assert RELEASES["ml-1m"].md5 == "c4d9eecfca2ab87c1945afe126590906"
    assert RELEASES["ml-32m"].md5 is None and RELEASES["ml-32m"].size_bytes > 0
    status = release_status("ml-25m")
    assert status == {"name": "ml-25m", "size_bytes": RELEASES["ml-25m"].size_bytes, "cached": False,
                      "local": False, "description": RELEASES["ml-25m"].description}


@pytest.mark.parametrize("name", ["ml-1m", "ML-1M"])
def test_release_names_are_case_insensitive_in_release_status(name):
    assert release_status(name)["name"] == "ml-1m"


def test_columns_that_repeat_detection_keep_the_layout_parser(tmp_path):
    from .conftest import write_ml100k

    data = zip_folder(write_ml100k(tmp_path))
    # The app passes the roles it shows; for u.data those are the detected positional ones.
    same = {"user": "column 1", "item": "column 2", "rating": "column 3", "timestamp": "column 4"}
    ds = load_upload("ml-100k.zip", data, columns=same)
    assert ds.name == "ml-100k" and ds.user_info is not None
    implicit = load_upload("ml-100k.zip", data, columns={**same, "rating": None})
    assert implicit.implicit and implicit.titles([0]) == ["Toy Story (1995)"]
