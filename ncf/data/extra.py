"""Side features from a user's own files: the extra columns of an uploaded ratings table (beyond user,
item, rating and timestamp), or a second table joined to the users or the items by id.

Each extra column is categorical or numeric: guessed from its values (fractions, or whole numbers with
many distinct values, are numeric; text, and a handful of codes such as 0/1, categorical), and correctable by the
caller (the Data page, or `columns={"features": {"device": "categorical", "notes": "ignore"}}`). A
column of the ratings table that never changes within a user is a user feature, else one that never
changes within an item an item feature; a column that varies within both is about the interaction, and is
left out with a note (only the time features are per interaction).

A feature from a file is named ``extra:COLUMN`` and lives in the dataset's `user_info` / `item_info` under
that name: a float column when numeric, text when categorical ("" when missing). `ncf.data.features`
offers these beside the built-in ones; a value unseen in training maps to the unknown bucket there.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ncf.errors import DataError

EXTRA = "extra:"  # prefix of a feature that came from a file
KINDS = ("categorical", "numeric", "ignore")
CONFIG_KEYS = ("features", "join")  # keys of a `columns` mapping that are about features, not roles
NUMERIC_MIN_DISTINCT = 12  # fewer distinct numbers than this look like codes (0/1, 1-5 levels): categorical


def feature_name(column: str) -> str:
    return EXTRA + re.sub(r"[\s,.]+", "_", str(column).strip())


def guess_kind(values) -> str:
    """'numeric' for fractions, or whole numbers with many distinct values; else 'categorical' (text, or a
    few whole numbers: codes such as 0/1 or 1-5 levels)."""
    values = [str(v).strip() for v in values if str(v).strip() not in ("", "nan", "NaN")]
    if not values:
        return "categorical"
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    if not numbers.notna().all():
        return "categorical"
    if (numbers != numbers.round()).any():  # fractions are measurements, not codes
        return "numeric"
    return "numeric" if numbers.nunique() >= min(NUMERIC_MIN_DISTINCT, max(3, len(values) // 2)) else "categorical"
    return "categorical"


def check_kinds(kinds: dict | None, columns: list[str], label: str) -> dict[str, str]:
    """A caller's {column: kind} checked against the file's columns and the kinds there are."""
    kinds = dict(kinds or {})
    for column, kind in kinds.items():
        if column not in columns:
            raise DataError(f"{label}: there is no column {column!r} to use as a feature; the file has "
                            f"{', '.join(map(repr, columns))}.")
        if kind not in KINDS:
            raise DataError(f"{label}: a feature column is one of {', '.join(KINDS)}, not {kind!r} (column {column!r}).")
    return kinds


def convert(values: pd.Series, kind: str) -> pd.Series:
    """Raw cells -> float64 (numeric, NaN when missing or unreadable) or text ("" when missing)."""
    if kind == "numeric":
        return pd.to_numeric(values, errors="coerce").astype(np.float64)
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return text.where(~text.isin(("nan", "NaN", "None")), "")


def by_side(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int,
            extras: dict[str, pd.Series]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Extra columns of the interactions (already converted, one value a row) as user and item tables
    (one row per index) by where they are constant; notes name the columns left out."""
    users, items, notes = pd.DataFrame(index=range(n_users)), pd.DataFrame(index=range(n_items)), []
    for name, values in extras.items():
        frame = pd.DataFrame({"user": user, "item": item, "v": values.to_numpy()})
        if frame["v"].dtype == object:
            frame["v"] = frame["v"].replace("", np.nan)
        for side, table, n in (("user", users, n_users), ("item", items, n_items)):
            if (frame.groupby(side)["v"].nunique(dropna=True) <= 1).all():
                first = frame.groupby(side)["v"].first().reindex(range(n))
                table[name] = first.to_numpy() if values.dtype != object else first.fillna("").astype(str).to_numpy()
                break
        else:
            notes.append(f"Column {name.removeprefix(EXTRA)!r} changes within users and within items: it describes "
                         "the interaction, not the user or the item, so it is not used as a side feature.")
    return users, items, notes


def merge_info(info: pd.DataFrame | None, extra: pd.DataFrame) -> pd.DataFrame | None:
    if extra.shape[1] == 0:
        return info
    if info is None:
        return extra.reset_index(drop=True)
    return pd.concat([info.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)


# --- a second file: features joined by id -----------------------------------------------------------


@dataclass(frozen=True)
class FeatureFile:
    """What reading a features table found: the id column, which side it joins, each other column's kind."""

    side: str  # "user" or "item"
    id_column: str
    kinds: dict[str, str]  # column -> categorical / numeric / ignore (guessed, or as asked)
    frame: pd.DataFrame  # every column as text
    matched: int  # ids of the dataset found in the file
    unknown: int  # rows of the file whose id the dataset does not have
    total: int = 0  # the dataset's users or items

    @property
    def preview(self) -> pd.DataFrame:
        return self.frame.head(8)


def read_feature_file(ds, filename: str, data: bytes, kinds: dict | None = None, side: str | None = None) -> FeatureFile:
    """A CSV/TSV with a header: an id column (named like the user or item column, else the first) and
    attributes. The side is the one whose ids it holds (or `side`)."""
    from ncf.data.files import ALIASES, SNIFF_BYTES, check_text, normalize_header, sniff_delimiter, sniff_encoding

    check_text(data[:SNIFF_BYTES], filename)
    encoding = sniff_encoding(data[:SNIFF_BYTES])
    lines = [line for line in data[:SNIFF_BYTES].decode(encoding, errors="replace").splitlines() if line.strip()][:50]
    delimiter = sniff_delimiter(lines, filename)
    sep = r"\s+" if delimiter == " " else ("::" if delimiter == "::" else delimiter)
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False, encoding=encoding,
                            encoding_errors="replace", engine="python" if delimiter == "::" else "c")
    except (ValueError, UnicodeError) as e:
        raise DataError(f"{filename}: could not be read as a table ({str(e).strip().splitlines()[0]}). Expected a "
                        "header row, an id column and attribute columns.") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.shape[1] < 2 or len(frame) == 0:
        raise DataError(f"{filename}: found {frame.shape[1]} column(s) and {len(frame)} row(s). Expected a header, "
                        "an id column (user or item) and at least one attribute column.")
    named = {role: c for c in frame.columns for role in ("user", "item") if normalize_header(c) in ALIASES[role]}
    vocab = {"user": ds.users, "item": ds.items}
    found = {s: _match(vocab[s], frame[named.get(s, frame.columns[0])]) for s in ("user", "item")}
    if side is None:
        side = next((s for s in ("user", "item") if s in named and found[s].any()), None)
        side = side or max(("item", "user"), key=lambda s: found[s].sum())
    if side not in ("user", "item"):
        raise DataError(f"A features file joins the users or the items, not {side!r}.")
    id_column = named.get(side, frame.columns[0])
    hits = found[side]
    if not hits.any():
        raise DataError(f"{filename}: none of the ids in column {id_column!r} is a {side} of {ds.name} (for "
                        f"example {frame[id_column].iloc[0]!r}). Expected the {side} ids of the ratings file.")
    attributes = [c for c in frame.columns if c != id_column]
    asked = check_kinds(kinds, attributes, filename)
    kinds = {c: asked.get(c) or guess_kind(frame[c].head(1000)) for c in attributes}
    index = vocab[side]._index().get_indexer(_coerce(vocab[side], frame[id_column]))
    return FeatureFile(side=side, id_column=id_column, kinds=kinds, frame=frame,
                       matched=len(np.unique(index[index >= 0])), unknown=int((index < 0).sum()),
                       total=len(vocab[side]))


def _coerce(vocab, ids: pd.Series) -> list:
    return [vocab.coerce(v.strip()) for v in ids.astype(str)]


def _match(vocab, ids: pd.Series) -> np.ndarray:
    """(n_rows,) bool: the row's id is in the vocabulary."""
    return vocab._index().get_indexer(_coerce(vocab, ids)) >= 0


def join(ds, found: FeatureFile, filename: str = "features file"):
    """`ds` with the file's attributes (all but the ignored) as features of its users or items; ids the
    file lacks get missing values (the unknown bucket, or the mean), ids the dataset lacks are skipped."""
    vocab = ds.users if found.side == "user" else ds.items
    n = len(vocab)
    index = vocab._index().get_indexer(_coerce(vocab, found.frame[found.id_column]))
    keep = index >= 0
    table = pd.DataFrame(index=range(n))
    for column, kind in found.kinds.items():
        if kind == "ignore":
            continue
        values = convert(found.frame.loc[keep, column].reset_index(drop=True), kind)
        series = pd.Series(values.to_numpy(), index=index[keep])
        series = series[~series.index.duplicated(keep="first")].reindex(range(n))
        table[feature_name(column)] = series.to_numpy() if kind == "numeric" else series.fillna("").astype(str).to_numpy()
    notes = list(ds.notes)
    missing = n - found.matched
    notes.append(f"{filename}: {table.shape[1]} {found.side} feature(s) joined by {found.id_column!r}"
                 + (f"; {missing:,} {found.side}s not in the file get the unknown value" if missing else "")
                 + (f"; {found.unknown:,} rows name ids the ratings do not have and are skipped" if found.unknown else "")
                 + ".")
    if found.side == "user":
        info = merge_info(ds.user_info.drop(columns=[c for c in table.columns if ds.user_info is not None
                                                     and c in ds.user_info.columns]) if ds.user_info is not None
                          else None, table)
        return replace(ds, user_info=info, notes=tuple(notes))
    info = merge_info(ds.item_info.drop(columns=[c for c in table.columns if c in ds.item_info.columns])
                      if ds.item_info is not None else None, table)
    return replace(ds, item_info=info, notes=tuple(notes))


def apply_join(ds, spec: dict):
    """A `columns["join"]` entry ({"path": ..., "kinds": {...}, "side": optional}) applied to `ds`."""
    if not isinstance(spec, dict) or "path" not in spec:
        raise DataError("A features file to join is given as {'path': ..., 'kinds': {column: kind}}.")
    path = Path(spec["path"])
    if not path.is_file():
        raise DataError(f"The features file {path.name} is no longer available ({path}); upload it again.")
    data = path.read_bytes()
    found = read_feature_file(ds, path.name, data, spec.get("kinds"), spec.get("side"))
    return join(ds, found, path.name)


def kept_path(filename: str, data: bytes) -> Path:
    """Where `keep_file` keeps these bytes (nothing is written)."""
    from ncf.data.cache import cache_dir

    digest = hashlib.sha256(data).hexdigest()[:20]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:80].lstrip(".") or "features.csv"
    return cache_dir() / "features" / digest / safe


def keep_file(filename: str, data: bytes) -> Path:
    """Keeps an uploaded features file in the cache folder, named by its content's hash (a training job is
    another process and reads it by path); returns its path."""
    path = kept_path(filename, data)
    folder, safe = path.parent, path.name
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = folder / f".{safe}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
