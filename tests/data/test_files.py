"""A user's own ratings file: delimiter, header, encoding, column roles, ids, duplicates."""

import numpy as np
import pytest

from ncf.data import detect_columns, load, load_upload
from ncf.errors import DataError


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("sep", [",", "\t", ";", "|", "::", " "])
def test_delimiters_are_detected(tmp_path, sep):
    rows = ["1", "10", "4", "978300760"], ["1", "20", "3", "978300761"], ["2", "10", "5", "978300762"]
    path = _write(tmp_path, "r.txt", "\n".join(sep.join(r) for r in rows) + "\n")
    ds = load(str(path))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    assert ds.rating.tolist() == [4, 3, 5] and ds.timestamp.tolist()[0] == 978300760


def test_columns_in_any_order_under_usual_names_with_extras_ignored(tmp_path):
    text = "Time,comment,Rating,movie_id,UserID\n978300760,great,4.5,m1,u1\n978300761,meh,2,m2,u1\n" \
           "978300762,ok,3,m1,u2\n"
    guess = detect_columns("r.csv", text.encode())
    assert guess.roles == {"timestamp": "Time", "rating": "Rating", "item": "movie_id", "user": "UserID"}
    assert guess.header and guess.delimiter == "," and guess.preview.shape == (3, 5)
    ds = load(str(_write(tmp_path, "r.csv", text)))
    assert ds.users.to_list() == ["u1", "u2"] and ds.items.to_list() == ["m1", "m2"]  # string ids
    assert ds.rating.tolist() == [4.5, 2.0, 3.0]  # half stars


def test_bom_crlf_and_latin1_are_handled(tmp_path):
    text = "user,item,rating\r\nJosé,Amélie,5\r\nZoë,Amélie,4\r\n"
    with_bom = load(str(_write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + text.encode())))
    assert with_bom.users.to_list() == ["José", "Zoë"] and with_bom.items.to_list() == ["Amélie"]
    latin = load(str(_write(tmp_path, "latin.csv", text, "latin-1")))
    assert latin.users.to_list() == ["José", "Zoë"]
    assert detect_columns("latin.csv", text.encode("latin-1")).encoding == "latin-1"
    old_mac = load(str(_write(tmp_path, "cr.csv", text.replace("\r\n", "\r"))))
    assert old_mac.n_interactions == 2


def test_two_columns_mean_implicit_feedback(tmp_path):
    ds = load(str(_write(tmp_path, "clicks.tsv", "a\tx\na\ty\nb\tx\n")))
    assert ds.implicit and ds.timestamp is None and ds.n_interactions == 3


def test_headerless_columns_found_by_content(tmp_path):
    # user, item, timestamp, rating: the timestamp is recognised by its size
    ds = load(str(_write(tmp_path, "r.dat", "1 5 978300760 3\n2 5 978300761 4\n")))
    assert ds.rating.tolist() == [3, 4] and ds.timestamp.tolist() == [978300760, 978300761]


def test_duplicate_pairs_keep_the_latest_and_are_counted(tmp_path):
    text = "userId,movieId,rating,timestamp\n1,1,2,300\n1,1,5,100\n1,2,3,50\n1,1,4,200\n"
    ds = load(str(_write(tmp_path, "r.csv", text)))
    assert ds.n_interactions == 2
    assert ds.rating[ds.item == ds.items.index(1)[0]].tolist() == [2.0]  # timestamp 300 is the latest
    assert ds.dropped == {"duplicate (user, item) pairs, kept the latest": 2}


def test_duplicates_without_timestamps_keep_the_last_row(tmp_path):
    ds = load(str(_write(tmp_path, "r.csv", "user,item,rating\n1,1,2\n1,1,5\n")))
    assert ds.rating.tolist() == [5.0]


def test_dates_and_milliseconds_become_seconds(tmp_path):
    dates = load(str(_write(tmp_path, "d.csv", "user,item,date\n1,1,2020-01-01\n1,2,2020-01-02 00:00:10\n")))
    assert dates.timestamp.tolist() == [1577836800, 1577923210]
    ms = load(str(_write(tmp_path, "m.csv", "user,item,timestamp\n1,1,1577836800000\n")))
    assert ms.timestamp.tolist() == [1577836800]


def test_explicit_columns_override_detection(tmp_path):
    text = "a,b,c,d\n1,7,3,9\n2,8,4,9\n"
    path = _write(tmp_path, "r.csv", text)
    ds = load(str(path), columns={"user": "b", "item": "a", "rating": "d"})
    assert ds.users.to_list() == [7, 8] and ds.rating.tolist() == [9, 9]
    implicit = load(str(path), columns={"user": 0, "item": 1, "rating": None})
    assert implicit.implicit
    with pytest.raises(DataError, match="there is no column 'zzz'"):
        load(str(path), columns={"user": "zzz", "item": "a"})


def test_missing_cells_are_dropped_and_counted(tmp_path):
    ds = load(str(_write(tmp_path, "r.csv", "user,item,rating\n1,1,4\n2,,3\n3,2,\n")))
    assert ds.n_interactions == 1 and ds.dropped == {"missing user, item or rating": 2}


def test_a_sibling_movies_file_adds_titles_and_genres(tmp_path):
    _write(tmp_path, "my_ratings.csv", "user,item,rating\n1,1,4\n1,2,3\n")
    _write(tmp_path, "movies.csv", 'movieId,title,genres\n1,"Heat, The (1995)",Action|Crime\n')
    ds = load(str(tmp_path / "my_ratings.csv"))
    assert ds.titles([0, 1]) == ["Heat, The (1995)", "2"] and ds.item_info["genres"].tolist() == ["Action|Crime", ""]


def test_a_zip_holding_one_table_and_its_movies_file(tmp_path):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mine/scores.txt", "u1\tm1\t4\nu2\tm1\t5\n")
        zf.writestr("mine/movies.dat", "m1::Film One (2000)::Drama\n")
    ds = load_upload("mine.zip", buffer.getvalue())
    assert ds.n_users == 2 and ds.titles([0]) == ["Film One (2000)"]


def test_uploads_parse_in_memory_and_integer_ids_stay_integers():
    ds = load_upload("r.csv", b"user_id,item_id,score\n10,100,1.5\n11,100,2\n")
    assert ds.users.is_numeric and ds.users.to_list() == [10, 11] and ds.rating.dtype == np.float32


def test_latest_per_pair_matches_a_plain_groupby():
    import pandas as pd

    from ncf.data.builder import latest_per_pair

    rng = np.random.default_rng(0)
    user, item = rng.integers(0, 30, 2000), rng.integers(0, 20, 2000)
    time = rng.integers(0, 50, 2000)  # many ties: file order breaks them
    keep = latest_per_pair(user, item, time, 20)
    frame = pd.DataFrame({"u": user, "i": item, "t": time, "row": np.arange(2000)})
    expected = frame.sort_values(["t", "row"]).groupby(["u", "i"])["row"].last().sort_values().to_numpy()
    assert np.array_equal(keep, expected)
    assert latest_per_pair(np.arange(5), np.arange(5), None, 5) is None


def test_fast_integer_encoding_matches_the_vocabulary_encoding():
    from ncf.data import Vocab
    from ncf.data.builder import encode_ids

    values = np.array([907, 3, 3, 15, 907, 0])
    fast_vocab, fast_codes = encode_ids(values, "user")
    vocab, codes = Vocab.encode(values, "user")
    assert fast_vocab.to_list() == vocab.to_list() and np.array_equal(fast_codes, codes)
    huge = np.array([10**12, 5])  # out of the table's range: falls back to hashing
    assert encode_ids(huge, "item")[0].to_list() == [5, 10**12]


def test_repeated_headers_and_infinite_ratings_are_dropped_and_counted():
    ds = load_upload("r.tsv", b"user\titem\trating\nu1\ti1\t4\nuser\titem\trating\nu2\ti1\t1e400\nu2\ti2\t3\n")
    assert ds.users.to_list() == ["u1", "u2"] and ds.n_interactions == 2
    assert ds.dropped == {"repeated header rows": 1, "missing user, item or rating": 1}


def test_detect_columns_looks_inside_a_zip_and_the_upload_limit_defaults_to_200_mb(monkeypatch):
    import io
    import zipfile

    from ncf.data import max_upload_bytes

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
        zf.writestr("ml-1m/movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n")
    guess = detect_columns("ml-1m.zip", buffer.getvalue())
    assert guess.delimiter == "::" and not guess.header
    assert list(guess.roles) == ["user", "item", "rating", "timestamp"]
    assert guess.preview.iloc[0].tolist() == ["1", "1193", "5", "978300760"]
    monkeypatch.delenv("NCF_MAX_UPLOAD_MB", raising=False)
    assert max_upload_bytes() == 200 * 2**20
