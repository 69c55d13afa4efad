"""One entry point for every ratings source: `load("synthetic" | "ml-1m" | a path)`.

Dispatch only; the parsing lives in `files` (a user's table), `movielens` (GroupLens' layouts
and downloads), `published` (He et al.'s split) and `archives` (zips). Parsed sources are kept
in the cache (`cache`) so the second load is quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from ncf.config import DataConfig
from ncf.data import cache, folders, movielens
from ncf.data.archives import SafeZip, looks_like_zip
from ncf.data.builder import to_dataset
from ncf.data.dataset import Dataset
from ncf.data.files import SNIFF_BYTES, load_bytes, load_file, ratings_member, read_table, sniff
from ncf.data.published import load_published, published_files, published_prefix
from ncf.data.split import filter_min_interactions
from ncf.data.split_cache import cached_split
from ncf.data.synthetic import synthetic
from ncf.data.uploads import upload_key, upload_name
from ncf.errors import DataError
from ncf.memory import check_parse_fits, check_pipeline_fits

Progress = Callable[[int, "int | None"], None]
Stage = Callable[[str], None]  # told each stage of a load as it begins: "reading the cache", "parsing", ...


def max_upload_bytes() -> int:
    """The largest upload accepted (env NCF_MAX_UPLOAD_MB, default 200)."""
    try:
        return int(float(os.environ.get("NCF_MAX_UPLOAD_MB", "200")) * 2**20)
    except ValueError:
        raise DataError(f"NCF_MAX_UPLOAD_MB={os.environ['NCF_MAX_UPLOAD_MB']!r} is not a number of megabytes.") from None


def load(source: str = "synthetic", *, columns: dict | None = None, progress: Progress | None = None,
         use_cache: bool = True, on_stage: Stage | None = None) -> Dataset:
    """Any source as a Dataset. See the module docstring of `ncf.data` for what `source` may be.
    `progress` follows a download; `on_stage` is told each stage (reading the cache, or parsing
    and then writing the cache), so a long load can say what it is doing. `columns["join"]` (one
    or a list of {"path", "kinds"}) joins features files by user or item id (ncf.data.extra),
    after the source itself is read (and cached) as usual."""
    if columns and columns.get("join"):
        base = {k: v for k, v in columns.items() if k != "join"} or None
        return _joined(load(source, columns=base, progress=progress, use_cache=use_cache, on_stage=on_stage),
                       columns["join"])
    text = str(source).strip()
    if text == "synthetic":
        return synthetic()
    if text.lower() in movielens.RELEASES:
        location = movielens.locate(text.lower(), progress)
        release = movielens.RELEASES[text.lower()]
        return _cached(text.lower(), _paths(location), columns, use_cache,
                       lambda: _load_path(location, columns, release=release, source=release.name), on_stage)
    path = Path(text).expanduser()
    prefix = published_prefix(path)
    if prefix is not None:
        return _cached(str(prefix.resolve()), published_files(prefix), None, use_cache,
                       lambda: load_published(prefix), on_stage)
    if path.exists():
        return _cached(str(path.resolve()), _paths(path), columns, use_cache,
                       lambda: _load_path(path, columns, source=str(path)), on_stage)
    raise DataError(
        f"{text!r}: no such file or folder, and not a known source. Expected 'synthetic', a MovieLens release "
        f"({', '.join(movielens.RELEASES)}), or a path to a .csv/.tsv/.dat/.txt/.zip file, a MovieLens folder, "
        "or an NCF NAME.train.rating."
    )


def load_upload(filename: str, data: bytes, *, columns: dict | None = None, use_cache: bool = True) -> Dataset:
    """An uploaded file's bytes: checked for size first, parsed in memory (nothing is written
    except the parsed form, in the cache folder)."""
    limit = max_upload_bytes()
    if len(data) > limit:
        raise DataError(
            f"{filename}: the file is {len(data) / 2**20:,.1f} MiB, over the upload limit of {limit / 2**20:,.0f} MiB. "
            "Expected a smaller file (or raise NCF_MAX_UPLOAD_MB)."
        )
    name = upload_name(filename)
    if columns and columns.get("join"):
        base = {k: v for k, v in columns.items() if k != "join"} or None
        return _joined(load_upload(filename, data, columns=base, use_cache=use_cache), columns["join"])

    def parse() -> Dataset:
        if looks_like_zip(data[:4]):
            return _load_zip(data, name, columns, source=f"upload:{name}")
        return load_bytes(name, data, columns)

    if not use_cache:
        return parse()
    return _from_cache(upload_key(filename, data, columns), parse)


def _joined(ds: Dataset, specs) -> Dataset:
    from ncf.data.extra import apply_join

    for spec in specs if isinstance(specs, list) else [specs]:
        ds = apply_join(ds, spec)
    return ds


def _paths(location: Path) -> list[Path]:
    """The files a source is read from, for the cache key: an edit to any of them invalidates it."""
    if location.is_dir():
        return [p for p in location.iterdir() if p.is_file()]
    siblings = [location.parent / n for n in ("movies.csv", "movies.dat", "u.item")]
    return [location] + [p for p in siblings if p.is_file()]


def _cached(source: str, paths: list[Path], columns, use_cache: bool, parse: Callable[[], Dataset],
            on_stage: Stage | None = None) -> Dataset:
    say = on_stage or _silent
    if not use_cache:
        say("parsing")
        return parse()
    key = cache.source_key(source, paths, json.dumps(columns, sort_keys=True, default=str))
    return _from_cache(key, parse, say)


def _silent(stage: str) -> None:
    pass


def _from_cache(key: str, parse: Callable[[], Dataset], on_stage: Stage = _silent) -> Dataset:
    on_stage("reading the cache")
    ds = cache.load(key)
    if ds is None:
        on_stage("parsing (once: later loads read the cache)")
        ds = parse()
        on_stage("writing the cache")
        with contextlib.suppress(OSError):  # a read-only or full cache costs speed, never the data
            cache.save(ds, key)
    return ds


def _load_path(path: Path, columns, *, source: str, release: movielens.Release | None = None) -> Dataset:
    name = release.name if release else path.name
    if path.is_dir():
        files = folders.FolderFiles(path)
        found = folders.ratings_file(files.names)
        if found and not _overrides(files, found[0], columns):
            return folders.load_layout(files, name=name, source=source, release=release)
        member = ratings_member(files.names, path.name)
        return load_file(path / member, columns)
    with open(path, "rb") as f:
        head = f.read(8)
    if looks_like_zip(head):
        return _load_zip(path, name, columns, source=source, release=release)
    return load_file(path, columns)


def _overrides(files, ratings: str, columns) -> bool:
    """Whether `columns` changes what detection finds in a MovieLens ratings file (the app always
    passes the roles it shows, usually just the detected ones: those keep GroupLens' parser)."""
    if not columns:
        return False
    with files.open(ratings) as f:
        head = f.read(SNIFF_BYTES)
    return sniff(head, ratings).positions != sniff(head, ratings, columns).positions


def _load_zip(data: bytes | Path, label: str, columns, *, source: str,
              release: movielens.Release | None = None) -> Dataset:
    """A zip holding a MovieLens folder, or one ratings table (plus, perhaps, its movies file)."""
    archive = SafeZip(data, label, trusted=release is not None)  # a release is checksum-verified
    try:
        member = ratings_member(archive.names, label)
        folder = posixpath.dirname(member)
        files = folders.ZipFolderFiles(archive, folder)
        name = release.name if release else (posixpath.basename(folder) or label)
        found = folders.ratings_file(files.names)
        if found and posixpath.basename(member) == found[0] and not _overrides(files, found[0], columns):
            return folders.load_layout(files, name=name, source=source, release=release)
        member_label = f"{label}: {member}"
        # The size the member expands to, from the central directory: refused before inflating any of it.
        check_parse_fits(archive.size(member), member_label)
        with archive.open(member) as f:
            guess = sniff(f.peek(SNIFF_BYTES)[:SNIFF_BYTES], member_label, columns)
            frame = read_table(f, member_label, guess)
        return to_dataset(frame, name=name, source=source, label=member_label,
                          item_info=folders.read_item_info(files))
    finally:
        archive.close()


def format_summary(ds: Dataset) -> str:
    """The plain lines `python -m ncf data` prints."""
    s = ds.summary()
    counts = ds.per_user_counts()

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    lines = [
        f"Dataset:        {s['name']}",
        f"Users:          {s['users']:,}",
        f"Items:          {s['items']:,}",
        f"Interactions:   {s['interactions']:,}",
        f"Ratings:        {s['ratings']}",
        f"Density:        {s['density']:.4%}",
        f"Per user:       min {s['per_user_min']:,}, median {s['per_user_median']:,g}, max {s['per_user_max']:,}"
        if len(counts) else "Per user:       -",
        f"Timestamps:     {yes(s['timestamps'])}",
        f"Titles:         {yes(s['titles'])}",
        f"Genres:         {yes(s['genres'])}",
        "User info:      " + (", ".join(map(str, ds.user_info.columns)) if ds.user_info is not None else "no"),
    ]
    if "test_users" in s:
        lines.append(f"Test users:     {s['test_users']:,} (published split)")
        lines.append(f"Negatives:      {s['negatives_per_test_user']:,} per test user")
    if s["dropped"]:
        lines.append("Dropped:        " + "; ".join(f"{n:,} {why}" for why, n in s["dropped"].items()))
    else:
        lines.append("Dropped:        none")
    lines += [f"Note:           {note}" for note in ds.notes]
    return "\n".join(lines)


def load_split(data: DataConfig, objective: str = "implicit", progress=None, on_stage: Stage | None = None):
    """The evaluation split a data configuration describes (loads the source, filters, splits).

    Used by the job worker and the CLI alike, so both train on exactly the same split. `progress`
    and `on_stage` follow the load as in `load`; the split is its last stage, "splitting"."""
    ds = load(data.source, columns=data.columns, progress=progress, on_stage=on_stage)
    if on_stage is not None:
        on_stage("splitting")
    if data.min_per_user > 1:
        ds = filter_min_interactions(ds, min_per_user=data.min_per_user)
    if objective == "explicit" and ds.implicit:
        raise DataError(f"{ds.name} has no ratings, so the explicit (rating) objective cannot be trained; "
                        "choose the implicit objective.")
    # Refused here, before the split's own peak (about 100 bytes a row), rather than half-way by the OOM killer.
    check_pipeline_fits(ds.n_interactions, ds.n_users, ds.n_items, 0 if objective == "explicit" else 4)
    # Kept on disk for large data: the next run, job or server reads it back instead of drawing it.
    return cached_split(ds, data.split, seed=data.seed, n_negatives=data.test_negatives,
                        test_fraction=data.test_fraction, validation=data.validation)
