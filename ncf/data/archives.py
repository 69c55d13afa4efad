"""Reading zip archives that a user hands us, without trusting them.

Members are never extracted by name: each is opened and streamed through a reader that counts
the bytes it lets out, so a member whose header lies about its size, or a decompression bomb,
stops within one chunk of the limit instead of filling memory or disk.
"""

from __future__ import annotations

import io
import os
import posixpath
import zipfile
import zlib
from pathlib import Path

from ncf.errors import DataError

ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!", b"\x28\xb5\x2f\xfd")
CHUNK = 1 << 20


def max_uncompressed_bytes() -> int:
    """The most an uploaded archive may expand to in total (env NCF_MAX_UNCOMPRESSED_MB, default 2048:
    ml-25m's ratings.csv is 647 MiB; tables much larger than this would not fit in memory once parsed)."""
    return int(float(os.environ.get("NCF_MAX_UNCOMPRESSED_MB", "2048")) * 2**20)


MAX_RATIO = 200  # ratings text compresses about 4-6x; a bomb compresses 1,000x and more


class BoundedReader(io.RawIOBase):
    """A read-only stream over `raw` that raises `DataError` once more than `limit` bytes came out."""

    def __init__(self, raw, limit: int, label: str):
        self._raw, self._limit, self._label, self._done = raw, limit, label, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._raw.read(min(len(buffer), CHUNK))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(f"{self._label}: the archive member is corrupt ({e}). Expected an intact zip.") from e
        self._done += len(data)
        if self._done > self._limit:
            raise DataError(
                f"{self._label}: expands to more than {self._limit / 2**20:,.0f} MiB "
                "(a decompression bomb, or simply too large). Expected an archive of a ratings table."
            )
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def looks_like_zip(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06"  # the second: an empty zip


class SafeZip:
    """A checked view of a zip: names are validated up front, members are read through a bound.

    `names` holds the member paths (files only, '/'-separated), all relative and inside the archive.
    """

    def __init__(self, source: bytes | Path, label: str, *, trusted: bool = False):
        self.label = label
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except zipfile.BadZipFile as e:
            raise DataError(f"{label}: not a readable zip archive ({e}). Expected a .zip of a ratings table.") from e
        self._infos = {}
        total = 0
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            self._check_name(info.filename)
            total += info.file_size
            self._infos[info.filename] = info
        if not self._infos:
            raise DataError(f"{label}: the archive is empty. Expected a .zip holding a ratings file.")
        self.limit = max_uncompressed_bytes() if not trusted else 1 << 62
        if total > self.limit:
            raise DataError(
                f"{label}: the archive says it expands to {total / 2**20:,.0f} MiB, over the limit of "
                f"{self.limit / 2**20:,.0f} MiB. Expected a smaller archive (or set NCF_MAX_UNCOMPRESSED_MB)."
            )
        if not trusted:
            for info in self._infos.values():
                if info.file_size > CHUNK and info.file_size > MAX_RATIO * max(1, info.compress_size):
                    raise DataError(
                        f"{label}: member {info.filename!r} expands {info.file_size / max(1, info.compress_size):,.0f}"
                        f" times (a decompression bomb?). Expected ordinary text, which compresses far less than "
                        f"{MAX_RATIO} times."
                    )
        self._left = self.limit  # shared by all members: the bound is on the archive as a whole

    def _check_name(self, name: str) -> None:
        norm = name.replace("\\", "/")
        parts = norm.split("/")
        if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in parts:
            raise DataError(
                f"{self.label}: member {name!r} would land outside the archive's folder "
                "(an absolute path or '..'). Expected plain relative names."
            )
        if norm.lower().endswith(ARCHIVE_SUFFIXES):
            raise DataError(
                f"{self.label}: holds another archive ({name!r}); nested archives are not opened. "
                "Expected the ratings file itself inside the zip."
            )

    @property
    def names(self) -> list[str]:
        return list(self._infos)

    def size(self, name: str) -> int:
        return self._infos[name].file_size

    def open(self, name: str) -> io.BufferedReader:
        """A buffered stream of one member; raises DataError past the archive's remaining budget."""
        info = self._infos[name]
        stream = io.BufferedReader(_Budget(self, self._zip.open(info), f"{self.label}: {name}"), buffer_size=CHUNK)
        if stream.peek(8)[:8].startswith(ARCHIVE_MAGIC):
            stream.close()
            raise DataError(
                f"{self.label}: member {name!r} is itself an archive; nested archives are not opened. "
                "Expected the ratings file itself inside the zip."
            )
        return stream

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        self._zip.close()


class _Budget(BoundedReader):
    """A BoundedReader that draws on (and gives back to) its archive's shared budget."""

    def __init__(self, owner: SafeZip, raw, label: str):
        super().__init__(raw, owner._left, label)
        self._owner = owner

    def readinto(self, buffer) -> int:
        n = super().readinto(buffer)
        self._owner._left -= n
        return n


def folders(names: list[str]) -> dict[str, list[str]]:
    """Member names grouped by their folder: {"ml-1m": ["ratings.dat", ...], "": [...]}."""
    out: dict[str, list[str]] = {}
    for name in names:
        folder, base = posixpath.split(name)
        if base.startswith(".") or folder.startswith("__MACOSX"):
            continue  # macOS resource forks and hidden files are not data
        out.setdefault(folder, []).append(base)
    return out
