"""Folders in GroupLens' layout, on disk or inside a zip: the ratings file, titles and genres, user
demographics, and `load_layout`, which reads one whole folder into a `Dataset`.

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
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ncf.data.builder import to_dataset
from ncf.data.dataset import Dataset
from ncf.errors import DataError
from ncf.memory import check_parse_fits

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

    def size(self, name: str) -> int:
        return (self.path / name).stat().st_size

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

    def size(self, name: str) -> int:
        """The member's uncompressed size, as the archive's central directory records it."""
        return self.archive.size(self._members[name])


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


def load_layout(files, *, name: str, source: str, release=None) -> Dataset:
    """A folder in GroupLens' layout (on disk or in a zip) -> Dataset with item and user metadata."""
    found = ratings_file(files.names)
    if found is None:
        raise DataError(
            f"{files.label}: no MovieLens ratings file (found {', '.join(files.names[:8]) or 'nothing'}). "
            "Expected u.data, ratings.dat or ratings.csv."
        )
    ratings, partial = found
    # Refused before reading (the uncompressed size, for a zip), not half-way through by the OOM killer.
    check_parse_fits(files.size(ratings), f"{files.label}/{ratings}")
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
