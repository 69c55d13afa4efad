"""Storing an upload: one content hash (the parsed cache's) names both its parsed form and its bytes."""

from __future__ import annotations

from ncf.data import cache as data_cache
from ncf.data import load, load_upload
from ncf.data.uploads import keep_upload, upload_key

DATA = b"user,item\n1,1\n2,1\n"


def test_the_upload_key_is_the_parsed_caches_key():
    key = upload_key("r.csv", DATA, {"user": "user", "item": "item"})
    load_upload("r.csv", DATA, columns={"user": "user", "item": "item"})
    assert data_cache.load(key) is not None


def test_the_key_follows_content_name_and_column_choice():
    key = upload_key("r.csv", DATA)
    assert upload_key("dir/r.csv", DATA) == key  # only the file's own name counts
    assert upload_key("r.csv", DATA + b"3,1\n") != key
    assert upload_key("s.csv", DATA) != key
    assert upload_key("r.csv", DATA, {"user": "item", "item": "user"}) != key


def test_a_kept_upload_is_written_once_under_its_key_with_a_safe_name(tmp_path):
    path = keep_upload("../../my ratings;rm.csv", DATA)
    assert path.parent == tmp_path / "cache" / "uploads" / upload_key("../../my ratings;rm.csv", DATA)
    assert path.name == "my_ratings_rm.csv" and path.read_bytes() == DATA
    mtime = path.stat().st_mtime_ns
    assert keep_upload("../../my ratings;rm.csv", DATA) == path and path.stat().st_mtime_ns == mtime
    assert load(str(path)).n_interactions == 2  # what a training job in another process reads
