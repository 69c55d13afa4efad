"""Small copies of each GroupLens layout, written byte for byte the way GroupLens writes them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

# (user, item, rating, timestamp): 4 users, 5 movies, 10 ratings.
RATINGS = [(1, 1, 5, 874965758), (1, 2, 3, 876893171), (1, 3, 4, 878542960), (2, 1, 4, 888550871),
           (2, 4, 2, 888551000), (3, 2, 5, 881250949), (3, 5, 1, 881251000), (4, 3, 3, 879372434),
           (4, 4, 4, 879372500), (4, 5, 5, 879372600)]
TITLES = {1: "Toy Story (1995)", 2: "Misérables, Les (1995)", 3: "Star Wars: Episode IV (1977)",
          4: "Amélie (2001)", 5: "Heat (1995)"}
GENRES = {1: "Animation|Children's|Comedy", 2: "Drama|War", 3: "Action|Sci-Fi", 4: "Comedy|Romance", 5: "Action"}
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western"]


def write_ml100k(root: Path) -> Path:
    folder = root / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    lines = []
    for i, title in TITLES.items():
        flags = ["1" if g in GENRES[i].split("|") else "0" for g in ML100K_GENRES]
        lines.append("|".join([str(i), title, "01-Jan-1995", "", "http://us.imdb.com/x", *flags]))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
                                   "4|24|M|technician|43537\n")
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(ML100K_GENRES)) + "\n")
    return folder


def write_ml1m(root: Path, ratings_name: str = "ratings.dat") -> Path:
    folder = root / "ml-1m"
    folder.mkdir(parents=True)
    (folder / ratings_name).write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in RATINGS))
    (folder / "movies.dat").write_bytes(
        "".join(f"{i}::{t}::{GENRES[i]}\n" for i, t in TITLES.items()).encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
                                      "4::M::45::7::02460\n")
    return folder


def write_ml10m(root: Path) -> Path:
    folder = root / "ml-10M100K"
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text(
        "".join(f"{u}::{i}::{r - 0.5}::{t}\n" for u, i, r, t in RATINGS))  # half stars
    (folder / "movies.dat").write_text("".join(f"{i}::{t}::{GENRES[i]}\n" for i, t in TITLES.items()))
    (folder / "tags.dat").write_text("1::1::funny::1188263867\n")
    return folder


def write_csv_release(root: Path, name: str = "ml-latest-small") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r}.0,{t}\n" for u, i, r, t in RATINGS))
    rows = [f'{i},"{t}",{GENRES[i]}' if "," in t else f"{i},{t},{GENRES[i]}" for i, t in TITLES.items()]
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n")
    return folder


def zip_folder(folder: Path, inside: str | None = None) -> bytes:
    """The folder as a zip, members under `inside/` (GroupLens zips hold one top folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{inside or folder.name}/{path.name}")
    return buffer.getvalue()


LAYOUTS = {"ml-100k": write_ml100k, "ml-1m": write_ml1m, "ml-10m": write_ml10m, "csv": write_csv_release}


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request, tmp_path):
    """(kind, folder) for each GroupLens layout."""
    return request.param, LAYOUTS[request.param](tmp_path / "releases")
