"""Every kind of bad input ends in one DataError that says what was found and what is expected."""

import io
import struct
import time
import zipfile

import pytest

from ncf.data import detect_columns, load, load_upload
from ncf.errors import DataError

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


GOOD = b"user,item,rating\n1,1,4\n2,1,5\n"


@pytest.mark.parametrize(("content", "found", "expected"), [
    (b"", "the file is empty", "Expected a table of user, item"),
    (b"\n\r\n  \n", "the file is empty", "Expected a table"),
    (b"userId,movieId,rating\n", "has a header", "but no rows"),
    (b"42\n43\n44\n", "single column", "Expected at least two columns"),
    (b"userId,title,rating\n1,Heat,4\n", "no recognisable item column", "columns={'item'"),
    (b"user,item,rating\n1,1,good\n2,1,bad\n", "non-numeric values such as 'good'", "Expected numbers"),
    (PNG, "binary (PNG image?)", "Expected a table"),
    (bytes(range(256)) * 20, "binary", "Expected a table"),
    (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n",
     "looks like an HTML page (perhaps an error page saved by a browser)", "not a ratings table"),
    (b"\xef\xbb\xbf  <html><body>Error</body></html>", "looks like an HTML page", "not a ratings table"),
    (b"user,item,rating,timestamp\n1,1,4,yesterday\n", "neither numbers nor dates", "Expected Unix seconds"),
])
def test_bad_tables(tmp_path, content, found, expected):
    path = tmp_path / "ratings.csv"
    path.write_bytes(content)
    for attempt in (lambda: load(str(path)), lambda: load_upload("ratings.csv", content)):
        with pytest.raises(DataError) as info:
            attempt()
        assert found in str(info.value) and expected in str(info.value)
        assert "ratings.csv" in str(info.value)  # names the file


def test_detect_columns_gives_the_same_errors():
    with pytest.raises(DataError, match="looks like an HTML page"):
        detect_columns("r.csv", b"<html>oops</html>")


@pytest.mark.parametrize(("members", "found"), [
    ({"../../evil.csv": GOOD}, "outside the archive's folder"),
    ({"/etc/ratings.csv": GOOD}, "outside the archive's folder"),
    ({"data/..\\..\\x.csv": GOOD}, "outside the archive's folder"),
    ({"inner.zip": _zip({"ratings.csv": GOOD})}, "nested archives are not opened"),
    ({"ratings.csv": _zip({"r.csv": GOOD})}, "is itself an archive"),  # a zip renamed .csv inside a zip
    ({"README.txt": b"no data here", "movies.csv": b"movieId,title\n"}, "no ratings file found"),
])
def test_bad_archives(tmp_path, members, found):
    data = _zip(members)
    with pytest.raises(DataError, match=found):
        load_upload("upload.zip", data)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing extracted, nothing cached


def test_empty_archive():
    with pytest.raises(DataError, match="the archive is empty"):
        load_upload("empty.zip", _zip({}))


def test_decompression_bomb_by_ratio_is_refused_quickly_without_reading_it():
    bomb = _zip({"ratings.csv": b"0" * (64 << 20)})  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 1 << 20
    start = time.perf_counter()
    with pytest.raises(DataError, match="decompression bomb"):
        load_upload("bomb.zip", bomb)
    assert time.perf_counter() - start < 5  # refused from the headers, not by inflating


def test_archive_over_the_total_size_bound_is_refused(monkeypatch):
    monkeypatch.setenv("NCF_MAX_UNCOMPRESSED_MB", "0.01")  # 10 KiB
    rows = b"".join(b"%d,%d,%d\n" % (u, u * 7 % 101, u % 5 + 1) for u in range(3000))
    with pytest.raises(DataError, match="over the limit"):
        load_upload("big.zip", _zip({"ratings.csv": b"user,item,rating\n" + rows}))


def test_a_member_whose_header_lies_about_its_size_is_stopped():
    data = bytearray(_zip({"ratings.csv": GOOD * 2000}))
    # Shrink the declared size in the central directory: the real data is longer than announced.
    at = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, at + 24, 100)
    with pytest.raises(DataError, match="corrupt|over the limit|decompression"):
        load_upload("liar.zip", bytes(data))


def test_files_over_the_upload_limit_are_refused_before_reading(monkeypatch):
    monkeypatch.setenv("NCF_MAX_UPLOAD_MB", "0.001")  # about 1 KB
    with pytest.raises(DataError, match="over the upload limit of"):
        load_upload("r.csv", GOOD * 100)


def test_unknown_sources_say_what_is_accepted():
    with pytest.raises(DataError, match="Expected 'synthetic', a MovieLens release"):
        load("no/such/file.csv")


def test_not_a_zip_renamed_zip_is_read_as_what_it_is(tmp_path):
    path = tmp_path / "r.zip"
    path.write_bytes(PNG)
    with pytest.raises(DataError, match="binary"):
        load(str(path))
