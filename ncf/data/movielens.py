"""GroupLens' MovieLens releases: the catalog, the verified download, and a parser for each layout.

Layouts, as GroupLens ships them:
- ml-100k: `u.data` (tab: user item rating timestamp), `u.item` ('|', latin-1, 19 genre flags),
  `u.user` ('|': id age gender occupation zip), `u.genre`.
- ml-1m, ml-10m (folder `ml-10M100K/`): `ratings.dat`, `movies.dat`, `users.dat` (1m only),
  fields separated by '::', latin-1 (1m) or UTF-8.
- ml-20m, ml-25m, ml-32m, ml-latest-small: `ratings.csv` and `movies.csv` with headers.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ncf.data.cache import cache_dir
from ncf.data.dataset import Dataset
from ncf.data.files import to_dataset
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

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
ML1M_OCCUPATIONS = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
                    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
RATINGS_FILES = ("ratings.csv", "ratings.dat", "u.data")


# --- where files come from: a folder on disk or a folder inside a zip ----------------------------------


class FolderFiles:
    """The files of one folder, by base name."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.label = self.path.name

    @property
    def names(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_file()) if self.path.is_dir() else []

    def open(self, name: str):
        return open(self.path / name, "rb")

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def paths(self) -> list[Path]:
        return [self.path / n for n in self.names]


class ZipFolderFiles:
    """The files of one folder inside a checked zip (`SafeZip`), by base name."""

    def __init__(self, archive, folder: str):
        self.archive, self.folder = archive, folder
        self.label = f"{archive.label}: {folder}" if folder else archive.label
        prefix = folder + "/" if folder else ""
        self._members = {n[len(prefix):]: n for n in archive.names
                         if n.startswith(prefix) and "/" not in n[len(prefix):]}

    @property
    def names(self) -> list[str]:
        return sorted(self._members)

    def open(self, name: str):
        return self.archive.open(self._members[name])

    def read(self, name: str) -> bytes:
        return self.archive.read(self._members[name])


# --- parsers ---------------------------------------------------------------------------------------


def ratings_file(names: list[str]) -> tuple[str, bool] | None:
    """The ratings file of a MovieLens folder and whether it is a partial copy (a lone ratings*.dat)."""
    for wanted in RATINGS_FILES:
        if wanted in names:
            return wanted, False
    partial = [n for n in names if n.startswith("ratings") and n.endswith(".dat")]
    if len(partial) == 1:
        return partial[0], True
    return None


def read_ratings(files, name: str) -> pd.DataFrame:
    """One GroupLens ratings file as columns user, item, rating, timestamp (C engine throughout)."""
    dtypes = {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}
    with files.open(name) as f:
        try:
            if name == "u.data":
                return pd.read_csv(f, sep="\t", header=None, names=list(dtypes), dtype=dtypes, engine="c")
            if name.endswith(".dat"):
                # '::' separated: split on ':' and keep fields 0, 2, 4, 6 so the C engine can do it.
                frame = pd.read_csv(f, sep=":", header=None, usecols=[0, 2, 4, 6], engine="c",
                                    dtype={0: np.int64, 2: np.int64, 4: np.float32, 6: np.int64})
                frame.columns = list(dtypes)
                return frame
            frame = pd.read_csv(f, engine="c", dtype={"userId": np.int64, "movieId": np.int64,
                                                       "rating": np.float32, "timestamp": np.int64})
            return frame.rename(columns={"userId": "user", "movieId": "item"})[list(dtypes)]
        except (ValueError, KeyError, pd.errors.ParserError) as e:
            raise DataError(
                f"{files.label}/{name}: not in GroupLens' layout ({str(e).splitlines()[0]}). Expected "
                "user, item, rating, timestamp rows as in the MovieLens release."
            ) from e


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # ml-100k and ml-1m metadata are latin-1


def _small_table(files, name: str, sep: str, names: list[str]) -> pd.DataFrame:
    """A metadata file (thousands of rows): decoded whole, '::' turned into one character."""
    text = _decode(files.read(name))
    if sep == "::":
        text, sep = text.replace("::", "\x1f"), "\x1f"
    return pd.read_csv(io.StringIO(text), sep=sep, header=None, names=names, quoting=csv.QUOTE_NONE,
                       dtype=str, keep_default_na=False, engine="c", index_col=False)


def _int_index(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """`frame` indexed by its id column: integers where every id is one (GroupLens'), else text."""
    ids = pd.to_numeric(frame[column], errors="coerce")
    index = ids.astype(np.int64).to_numpy() if ids.notna().all() else frame[column].astype(str).to_numpy()
    return frame.drop(columns=column).set_axis(index)


def read_item_info(files) -> pd.DataFrame | None:
    """Titles and genres ("A|B") by raw movie id, from movies.csv, movies.dat or u.item."""
    names = files.names
    try:
        if "movies.csv" in names:
            with files.open("movies.csv") as f:
                frame = pd.read_csv(f, dtype={"movieId": np.int64, "title": str, "genres": str})
            return frame.set_index("movieId")[["title", "genres"]]
        if "movies.dat" in names:
            return _int_index(_small_table(files, "movies.dat", "::", ["id", "title", "genres"]), "id")
        if "u.item" in names:
            flags = [f"g{k}" for k in range(19)]
            frame = _small_table(files, "u.item", "|", ["id", "title", "release_date", "video_date", "url", *flags])
            genres = _ml100k_genres(files)
            on = frame[flags].to_numpy() == "1"  # (n_items, 19)
            frame["genres"] = ["|".join(g for g, yes in zip(genres, row, strict=False) if yes) for row in on]
            return _int_index(frame[["id", "title", "genres", "release_date"]], "id")
    except (ValueError, KeyError, pd.errors.ParserError) as e:
        raise DataError(f"{files.label}: the movies file is not in GroupLens' layout ({e}).") from e
    return None


def _ml100k_genres(files) -> tuple[str, ...]:
    if "u.genre" not in files.names:
        return ML100K_GENRES
    pairs = [line.rsplit("|", 1) for line in _decode(files.read("u.genre")).splitlines() if "|" in line]
    by_index = {int(i): g for g, i in pairs if i.strip().isdigit()}
    return tuple(by_index.get(k, ML100K_GENRES[k]) for k in range(19))


def read_user_info(files) -> pd.DataFrame | None:
    """Demographics by raw user id, from users.dat (ml-1m) or u.user (ml-100k)."""
    names = files.names
    if "users.dat" in names:
        frame = _small_table(files, "users.dat", "::", ["id", "gender", "age", "occupation", "zip"])
        codes = pd.to_numeric(frame["occupation"], errors="coerce")
        frame["occupation"] = [ML1M_OCCUPATIONS[int(c)] if c == c and 0 <= c < 21 else "" for c in codes]
        frame["age"] = pd.to_numeric(frame["age"], errors="coerce")  # ml-1m: the lower end of an age band
    elif "u.user" in names:
        frame = _small_table(files, "u.user", "|", ["id", "age", "gender", "occupation", "zip"])
        frame["age"] = pd.to_numeric(frame["age"], errors="coerce")
    else:
        return None
    return _int_index(frame[["id", "age", "gender", "occupation", "zip"]], "id")


def load_layout(files, *, name: str, source: str, release: Release | None = None) -> Dataset:
    """A folder in GroupLens' layout (on disk or in a zip) -> Dataset with item and user metadata."""
    found = ratings_file(files.names)
    if found is None:
        raise DataError(
            f"{files.label}: no MovieLens ratings file (found {', '.join(files.names[:8]) or 'nothing'}). "
            "Expected u.data, ratings.dat or ratings.csv."
        )
    ratings, partial = found
    frame = read_ratings(files, ratings)
    dropped = {}
    if partial:
        users = re.search(r"users-(\d+)-(\d+)", ratings)
        what = f"users {users.group(1)}–{users.group(2)} only" if users else "partial copy"
        name = f"{name} ({what}: {ratings})"
        if release is not None and release.n_ratings > len(frame):
            dropped[f"absent from the partial ratings file {ratings}"] = release.n_ratings - len(frame)
    return to_dataset(frame, name=name, source=source, label=f"{files.label}/{ratings}",
                      item_info=read_item_info(files), user_info=read_user_info(files), dropped=dropped)


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
