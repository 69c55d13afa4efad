"""GroupLens' MovieLens releases: the catalog, local copies and the verified download. Reading a
release's folder is `ncf.data.folders`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ncf.data.cache import cache_dir
from ncf.data.folders import FolderFiles, ratings_file
from ncf.errors import DataError

DEFAULT_URL = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class Release:
    """One MovieLens release. `md5` is GroupLens' published sum; None where none is published,
    in which case the download is checked against `size_bytes` (approximate, ±5%) and the
    server's announced length."""

    name: str
    md5: str | None
    size_bytes: int
    description: str
    n_ratings: int
    folder: str  # the folder inside the zip

    @property
    def filename(self) -> str:
        return f"{self.name}.zip"

    @property
    def url(self) -> str:
        base = os.environ.get("NCF_MOVIELENS_URL") or DEFAULT_URL
        return base.rstrip("/") + "/" + self.filename


RELEASES: dict[str, Release] = {r.name: r for r in (
    Release("ml-100k", "0e33842e24a9c977be4e0107933c0723", 4_924_029,
            "100,000 ratings (1–5) by 943 users on 1,682 movies, with demographics (1998).", 100_000, "ml-100k"),
    Release("ml-1m", "c4d9eecfca2ab87c1945afe126590906", 5_917_549,
            "1,000,209 ratings (1–5) by 6,040 users on 3,706 movies, with demographics (2003). "
            "The NCF paper's data set.", 1_000_209, "ml-1m"),
    Release("ml-10m", "ce571fd55effeba0271552578f2648bd", 65_566_137,
            "10,000,054 ratings (0.5–5, half stars) by 69,878 users on 10,677 movies (2009).", 10_000_054,
            "ml-10M100K"),
    Release("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3", 198_702_078,
            "20,000,263 ratings (0.5–5) by 138,493 users on 26,744 movies (2016).", 20_000_263, "ml-20m"),
    Release("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada", 261_978_986,
            "25,000,095 ratings (0.5–5) by 162,541 users on 59,047 movies (2019).", 25_000_095, "ml-25m"),
    Release("ml-32m", None, 239_000_000,
            "32,000,204 ratings (0.5–5) by 200,948 users on 84,432 movies (2023). Not pinned by a checksum.",
            32_000_204, "ml-32m"),
    Release("ml-latest-small", None, 978_202,
            "100,836 ratings (0.5–5) by 610 users on 9,742 movies; changes over time. Not pinned by a checksum.",
            100_836, "ml-latest-small"),
)}

# --- the catalog: local copies and verified downloads -------------------------------------------------


def get_release(name: str) -> Release:
    try:
        return RELEASES[name.lower()]
    except KeyError:
        raise DataError(f"Unknown MovieLens release {name!r}; expected one of {', '.join(RELEASES)}.") from None


def local_folder(release: Release) -> Path | None:
    """The release's extracted folder under NCF_DATA_DIR, if there is one with a ratings file."""
    root = os.environ.get("NCF_DATA_DIR")
    if not root:
        return None
    for folder in dict.fromkeys((release.name, release.folder)):
        path = Path(root).expanduser() / folder
        if path.is_dir() and ratings_file(FolderFiles(path).names):
            return path
    return None


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


class _Progress:
    """The progress-bar object pooch drives (tqdm's interface), turned into progress(done, total).

    Calls are spaced at least 0.1 s apart (a page redraws a bar on each), except the last one.
    """

    def __init__(self, callback: Callable[[int, int | None], None] | None):
        self.callback, self.total, self.done, self._last = callback, 0, 0, 0.0

    def update(self, n: int) -> None:
        self.done += n
        total = self.total or None
        done = min(self.done, total) if total else self.done
        now = time.monotonic()
        if self.callback is not None and (done == total or now - self._last >= 0.1):
            self._last = now
            self.callback(done, total)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def download(release: Release, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The release's zip in the cache, downloaded once and verified (MD5, else size).

    pooch streams into a temporary file and moves it into place only when the checksum matches,
    so a corrupt or truncated download is deleted, never used.
    """
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")  # our progress callback reports; pooch's log lines would repeat it
    bar = _Progress(progress)
    try:
        path = Path(pooch.retrieve(
            release.url,
            known_hash=f"md5:{release.md5}" if release.md5 else None,
            fname=release.filename,
            path=downloads_dir(),
            downloader=pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 20, timeout=60),
        ))
    except ValueError as e:  # pooch: hash mismatch (the temporary file is already gone)
        raise DataError(
            f"{release.name}: the download from {release.url} does not match GroupLens' checksum "
            f"(md5 {release.md5}); it is corrupt or truncated and was deleted. Try again, or set NCF_DATA_DIR "
            "to a folder of extracted releases."
        ) from e
    except requests.RequestException as e:
        raise DataError(
            f"{release.name}: could not download {release.url} ({str(e)[:200]}); nothing was kept. Expected the "
            "GroupLens server (or NCF_MOVIELENS_URL) to be reachable, or NCF_DATA_DIR to hold an extracted copy."
        ) from e
    except OSError as e:  # a full disk or an unwritable cache folder
        raise DataError(
            f"{release.name}: could not write the download to {downloads_dir()} ({e}). Expected a writable cache "
            "folder with room for it (set NCF_CACHE_DIR to move it)."
        ) from e
    if release.md5 is None:
        _check_size(path, release, announced=bar.total or None)
    return path


def _check_size(path: Path, release: Release, announced: int | None) -> None:
    size = path.stat().st_size
    short = announced is not None and size != announced
    far = abs(size - release.size_bytes) > 0.05 * release.size_bytes
    if short or far:
        path.unlink(missing_ok=True)
        expected = f"{announced:,} bytes as announced" if short else f"about {release.size_bytes:,} bytes"
        raise DataError(
            f"{release.name}: the download from {release.url} has {size:,} bytes, expected {expected}; it is "
            "truncated or not the release and was deleted. Try again."
        )


def locate(name: str, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Where the release's files are: its folder under NCF_DATA_DIR, else its (downloaded) zip."""
    release = get_release(name)
    return local_folder(release) or download(release, progress)


def release_status(name: str) -> dict:
    release = get_release(name)
    return {
        "name": release.name,
        "size_bytes": release.size_bytes,
        "cached": (downloads_dir() / release.filename).is_file(),
        "local": local_folder(release) is not None,
        "description": release.description,
    }
