"""Zipped ratings and uploads are refused before parsing when parsing them would not fit in memory.

A plain file was already checked by its size on disk; a zip is checked by the size its ratings
member expands to (from the central directory: the compressed size would let it through), an upload
by its bytes. The memory is bounded with NCF_MEMORY_LIMIT_GB (what this process may still take, on
top of what it holds). The files are valid: were the parser entered, each would load, and the test
would fail for the missing refusal; with no bound, each does load.
"""

import io
import zipfile

import numpy as np
import pytest

from ncf.data import load, load_upload
from ncf.errors import ConfigError
from ncf.memory import PARSE_BYTES_PER_FILE_BYTE, USABLE_SHARE, resident_bytes

ROWS = 1_000_000
BUDGET = 40 * 2**20  # what the process may take beyond what it holds while the check runs


@pytest.fixture(scope="module")
def ratings_csv() -> bytes:
    """1M ratings in ml-latest's columns, about 20 MiB, compressing about 9 times."""
    rng = np.random.default_rng(0)
    user, rating = np.arange(ROWS) // 50, rng.integers(1, 6, ROWS)
    item = np.arange(ROWS) % 50 + 50 * rng.integers(0, 4, ROWS // 50).repeat(50)  # 50 distinct a user
    body = "".join(f"{u},{i},{r}.0,1000000000\n" for u, i, r in zip(user, item, rating, strict=True))
    return ("userId,movieId,rating,timestamp\n" + body).encode()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def bound_memory(monkeypatch):
    monkeypatch.setenv("NCF_MEMORY_LIMIT_GB", str((resident_bytes() + BUDGET) / 2**30))


def refused(monkeypatch, load_it, what: str) -> None:
    bound_memory(monkeypatch)
    with pytest.raises(ConfigError, match=r"needs about .* GiB of memory, but only .* are available") as e:
        load_it()
    assert what in str(e.value) and "Use a sample of the file" in str(e.value)
    monkeypatch.delenv("NCF_MEMORY_LIMIT_GB")
    assert load_it().n_interactions == ROWS  # the same file, unbounded: parsed and loaded


def test_the_sizes_straddle_the_bound(ratings_csv):
    compressed = len(zipped({"ratings.csv": ratings_csv}))
    assert PARSE_BYTES_PER_FILE_BYTE * compressed < USABLE_SHARE * BUDGET < PARSE_BYTES_PER_FILE_BYTE * len(ratings_csv)


def test_a_zipped_table_on_disk_is_refused_by_its_uncompressed_size(ratings_csv, tmp_path, monkeypatch):
    path = tmp_path / "mine.zip"
    path.write_bytes(zipped({"my_ratings.csv": ratings_csv}))
    refused(monkeypatch, lambda: load(str(path)), "my_ratings.csv")


def test_a_zipped_movielens_folder_is_refused_by_its_ratings_file(ratings_csv, tmp_path, monkeypatch):
    path = tmp_path / "ml-big.zip"
    path.write_bytes(zipped({"ml-big/ratings.csv": ratings_csv, "ml-big/movies.csv": b"movieId,title,genres\n"}))
    refused(monkeypatch, lambda: load(str(path)), "ml-big/ratings.csv")


def test_a_movielens_folder_on_disk_is_refused_by_its_ratings_file(ratings_csv, tmp_path, monkeypatch):
    folder = tmp_path / "ml-big"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(ratings_csv)
    refused(monkeypatch, lambda: load(str(folder)), "ml-big/ratings.csv")


def test_an_upload_is_refused_by_its_size(ratings_csv, monkeypatch):
    refused(monkeypatch, lambda: load_upload("big.csv", ratings_csv), "big.csv")


def test_a_zipped_upload_is_refused_by_its_uncompressed_size(ratings_csv, monkeypatch):
    data = zipped({"ratings.csv": ratings_csv})
    refused(monkeypatch, lambda: load_upload("big.zip", data), "ratings.csv")


def test_a_published_split_is_refused_by_its_three_files(tmp_path, monkeypatch):
    """He et al.'s NAME.train.rating / .test.rating / .test.negative, checked together before reading."""
    n_users, per_user = 20_000, 50
    user, item = np.arange(n_users * per_user) // per_user, np.arange(n_users * per_user) % 1000
    (tmp_path / "big.train.rating").write_text(
        "".join(f"{u}\t{i}\t4\t1000000000\n" for u, i in zip(user, item, strict=True)))
    (tmp_path / "big.test.rating").write_text("".join(f"{u}\t1000\t5\t1000000001\n" for u in range(n_users)))
    negatives = "\t".join(str(1001 + k) for k in range(99))
    (tmp_path / "big.test.negative").write_text("".join(f"({u},1000)\t{negatives}\n" for u in range(n_users)))
    sizes = sum((tmp_path / f"big{s}").stat().st_size for s in (".train.rating", ".test.rating", ".test.negative"))
    assert PARSE_BYTES_PER_FILE_BYTE * sizes > USABLE_SHARE * BUDGET  # would not fit the bound below
    bound_memory(monkeypatch)
    with pytest.raises(ConfigError, match=r"needs about .* GiB of memory, but only .* are available") as e:
        load(str(tmp_path / "big"))
    assert "big.*" in str(e.value)
    monkeypatch.delenv("NCF_MEMORY_LIMIT_GB")
    assert load(str(tmp_path / "big")).n_interactions == n_users * per_user  # unbounded: the files load
