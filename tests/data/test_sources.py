"""The one entry point: dispatch, the parsed cache and the summary."""

import numpy as np

from ncf.data import cache as data_cache
from ncf.data import format_summary, load, load_upload

from .conftest import write_ml1m


def test_synthetic_is_the_default():
    assert load().name == "synthetic" and load("synthetic").fingerprint() == load().fingerprint()


def test_second_load_comes_from_the_cache_with_everything_kept(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating,timestamp\nu1,m1,4.5,100\nu2,m1,3,200\nu1,m2,1,300\n")
    first = load(str(path))
    parsed = list((tmp_path / "cache" / "parsed").iterdir())
    assert len(parsed) == 1 and (parsed[0] / "meta.json").is_file()
    again = load(str(path))
    assert again.fingerprint() == first.fingerprint()
    assert again.users.to_list() == ["u1", "u2"] and again.items.index("m2").tolist() == [1]
    assert again.rating.dtype == np.float32 and again.timestamp.dtype == np.int64
    for name in ("user", "item", "rating", "timestamp", "users_raw", "items_raw"):  # arrays only: no pickle
        assert np.load(parsed[0] / f"{name}.npy", allow_pickle=False).shape[0] in (2, 3)
    again.user[0] = 1  # the reloaded arrays are writable (copy-on-write)...
    assert load(str(path)).user[0] == first.user[0]  # ...and writing changes nothing on disk


def test_cache_keeps_metadata_and_is_invalidated_by_an_edit(tmp_path):
    folder = write_ml1m(tmp_path)
    first = load(str(folder))
    cached = load(str(folder))
    assert cached.item_info.equals(first.item_info) and cached.user_info["zip"].tolist() == ["48067", "70072",
                                                                                             "55117", "02460"]
    with open(folder / "ratings.dat", "a") as f:
        f.write("5::1::2::978300000\n")
    assert load(str(folder)).n_users == 5


def test_a_damaged_cache_entry_is_parsed_again(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item\n1,1\n2,1\n")
    load(str(path))
    entry = next((tmp_path / "cache" / "parsed").iterdir())
    (entry / "user.npy").write_bytes(b"garbage")
    assert load(str(path)).n_users == 2
    assert (entry / "meta.json").is_file()  # parsed and written again


def test_use_cache_false_writes_nothing(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item\n1,1\n")
    load(str(path), use_cache=False)
    load_upload("r.csv", path.read_bytes(), use_cache=False)
    assert not (tmp_path / "cache").exists()


def test_uploads_are_cached_by_content(tmp_path):
    data = b"user,item\n1,1\n2,1\n"
    load_upload("r.csv", data)
    assert data_cache.load(data_cache.bytes_key("r.csv", data, "null")) is not None


def test_summary_lines():
    text = format_summary(load("synthetic"))
    for line in ("Users:          600", "Items:          400", "Ratings:        1–5", "Timestamps:     yes",
                 "Titles:         yes", "Genres:         yes", "Dropped:        none"):
        assert line in text
    assert "Per user:       min " in text and "Density:" in text


def test_a_half_written_cache_entry_is_replaced(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item\n1,1\n2,1\n")
    load(str(path))
    entry = next((tmp_path / "cache" / "parsed").iterdir())
    (entry / "meta.json").unlink()  # as if the process died before the rename completed
    assert load(str(path)).n_users == 2 and (entry / "meta.json").is_file()
