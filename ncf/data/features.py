"""Side features: what a Dataset knows about its users and items, as per-index tables a model can look up.

A model that takes features (EmbeddingNN) gets one `FeatureSet`: for each feature a small `FeatureSpec`
(name, side, kind, cardinality, width, and the category list or the mean and spread that encode it)
and one table indexed by user or item index:

- categorical (gender, occupation, zip code's first character): (n,) int64 codes, 0 = unknown;
- bag (genres, several per item): (n, max_len) int64 codes padded with 0, the model averages the
  embeddings of the non-zero ones (fastai's TabularModel has no bags; this is the usual extension);
- numeric (age, release year): (n,) float32, normalised by the training data's mean and spread,
  a missing value set to the mean (0).

The specs round-trip through JSON, so a saved run encodes a new user's or item's attributes with the
same categories; a value unseen when the run was trained maps to the unknown code 0, with a note.

Timestamp features (hour, weekday, years since release) are per interaction: side "context". Their
encoders are fixed (24 hours, 7 weekdays, UTC) or fitted on the training interactions (years since
release: mean and spread). The model reads a (B, 3) context [hour, weekday, time in years] beside the
ids (`train_context`: one row per training interaction, which a sampled negative shares with its
positive) and computes years since release itself from the item's release year, so a negative item
gets its own age at the positive's moment. With no context given (evaluation, recommendation) the
model uses each user's last training interaction (`FeatureSet.tables[USER_TIME]`); a user with none,
or a new user, the latest time in the training data.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ncf.data.extra import EXTRA
from ncf.errors import ConfigError

# name -> (side, kind, column it is read from, description)
FEATURES: dict[str, tuple[str, str, str, str]] = {
    "age": ("user", "numeric", "age", "the user's age (ML-1M: the lower end of an age band)"),
    "gender": ("user", "categorical", "gender", "the user's gender as recorded (M/F)"),
    "occupation": ("user", "categorical", "occupation", "the user's occupation"),
    "zip": ("user", "categorical", "zip", "the first character of the user's zip code (a US region)"),
    "genres": ("item", "bag", "genres", "the item's genres, a multi-hot set"),
    "year": ("item", "numeric", "title", "the item's release year, read from its title '(1995)'"),
    "hour": ("context", "categorical", "timestamp", "the interaction's hour of day (UTC); recommending: the "
             "user's last interaction's"),
    "weekday": ("context", "categorical", "timestamp", "the interaction's day of the week (UTC); recommending: "
                "the user's last interaction's"),
    "years_since_release": ("context", "numeric", "timestamp", "the interaction's year minus the item's release "
                            "year; recommending: at the user's last interaction"),
}
TIME_FEATURES = ("hour", "weekday", "years_since_release")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Context tables (not features themselves): keys of FeatureSet.tables that a time-feature model keeps as
# buffers; the per-interaction context is built by `train_context` for the trainer alone.
USER_TIME = "_user_time"  # (n_users, 3) float32: hour, weekday, time in years of the user's last training interaction
ITEM_YEAR = "_item_year"  # (n_items,) float32: release year, NaN where unknown
SECONDS_PER_YEAR = 365.25 * 86400
UNKNOWN = 0  # the code of a category unseen when the encoder was built (and of padding in a bag)
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def emb_width(n_categories: int) -> int:
    """fastai's rule of thumb (emb_sz_rule) for a categorical feature's embedding width."""
    return int(min(600, round(1.6 * n_categories**0.56)))


@dataclass(frozen=True)
class FeatureSpec:
    """One feature's encoder. `cardinality` counts the unknown code 0; `width` is what the feature
    adds to the model's concatenated input (its embedding width, or 1 for a number)."""

    name: str
    side: str  # "user" or "item"
    kind: str  # "categorical", "bag" or "numeric"
    cardinality: int = 0  # categories + 1 (unknown); 0 for numeric
    width: int = 1
    categories: tuple[str, ...] = ()  # code i + 1 is categories[i]
    max_len: int = 1  # bag: the longest set (the table's second dimension)
    mean: float = 0.0  # numeric: (x - mean) / std
    std: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        try:
            return cls(**{**d, "categories": tuple(d.get("categories", ()))})
        except TypeError as exc:
            raise ConfigError(f"A feature description is not in the expected form ({exc}).") from None


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """The specs of the chosen features and their per-index tables (see the module docstring)."""

    specs: tuple[FeatureSpec, ...]
    tables: dict[str, np.ndarray]
    notes: tuple[str, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def side(self, side: str) -> tuple[FeatureSpec, ...]:
        return tuple(s for s in self.specs if s.side == side)

    def width(self, side: str) -> int:
        return sum(s.width for s in self.side(side))

    def to_json(self) -> dict:
        return {"specs": [s.to_dict() for s in self.specs]}

    @classmethod
    def empty_like(cls, obj: dict, n_users: int, n_items: int) -> FeatureSet:
        """A set with the stored specs and zero tables of the right shapes: a saved run's weights fill them."""
        if not isinstance(obj, dict) or not isinstance(obj.get("specs"), list):
            raise ConfigError("features.json does not hold a list of feature specs.")
        specs = tuple(FeatureSpec.from_dict(s) for s in obj["specs"])
        tables = {}
        if any(s.side == "context" for s in specs):
            tables[USER_TIME] = np.zeros((n_users, 3), np.float32)
            tables[ITEM_YEAR] = np.zeros(n_items, np.float32)
        for s in specs:
            if s.side == "context":
                continue
            n = n_users if s.side == "user" else n_items
            tables[s.name] = (np.zeros((n, s.max_len), np.int64) if s.kind == "bag" else
                              np.zeros(n, np.float32) if s.kind == "numeric" else np.zeros(n, np.int64))
        return cls(specs, tables)


def _frame(ds, side: str) -> pd.DataFrame | None:
    return ds.user_info if side == "user" else ds.item_info


def _extras(ds) -> dict[str, tuple[str, str, str, str]]:
    """Features from the user's own files (ncf.data.extra): name -> (side, kind, column, description)."""
    out = {}
    for side in ("user", "item"):
        frame = _frame(ds, side)
        for column in (frame.columns if frame is not None else ()):
            if str(column).startswith(EXTRA):
                kind = "numeric" if frame[column].dtype.kind in "iuf" else "categorical"
                out[str(column)] = (side, kind, column, f"column {str(column).removeprefix(EXTRA)!r} of your file "
                                    f"({kind}, one value per {side})")
    return out


def meta(ds, name: str) -> tuple[str, str, str, str]:
    """(side, kind, column, description) of a built-in feature or of one from the user's files."""
    if name in FEATURES:
        return FEATURES[name]
    found = _extras(ds).get(name)
    if found is None:
        raise ConfigError(f"{ds.name} has no side feature {name!r}.")
    return found


def _raw_column(ds, name: str) -> pd.Series | None:
    """The values a feature is read from, one per user or item index; None when the source lacks them."""
    side, kind, column, _ = meta(ds, name)
    if side == "context":  # per interaction: there when the source has timestamps (and, for ages, years)
        if ds.timestamp is None or (name == "years_since_release" and _raw_column(ds, "year") is None):
            return None
        return pd.Series(ds.timestamp, copy=False)  # pandas 3 copies an array by default: 32M rows, 0.08 s
    frame = _frame(ds, side)
    if frame is None or column not in frame.columns:
        return None
    values = frame[column].reset_index(drop=True)
    if name.startswith(EXTRA):
        values = values.astype(float) if kind == "numeric" else values.fillna("").astype(str).str.strip()
    elif name == "zip":
        values = values.astype(str).str.strip().str[:1]
    elif name == "year":
        values = values.astype(str).str.extract(_YEAR, expand=False).astype(float)
    elif name == "age":
        values = pd.to_numeric(values, errors="coerce").astype(float)
    elif name == "genres":
        values = values.fillna("").astype(str)
    else:
        values = values.fillna("").astype(str).str.strip()
    if kind == "numeric":
        return None if values.notna().sum() == 0 else values
    if kind == "bag":
        has = values.str.len() > 0
        return values if has.any() and not (values[has] == "(no genres listed)").all() else None
    return values if (values != "").any() else None


def available(ds) -> tuple[str, ...]:
    """The side features this dataset has, in the order of FEATURES, then those from the user's files."""
    return tuple(name for name in (*FEATURES, *_extras(ds)) if _raw_column(ds, name) is not None)


_described: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_described_lock = threading.Lock()


def describe_available(ds) -> list[dict]:
    """One row per feature this dataset has: name, side, kind, number of categories, description.
    Remembered per dataset object (immutable and shared, as for ncf.aggregates.summarize): at ML-32M's
    size the genre and year scans took 1.7-2.7 s, on every run of the Data page."""
    with _described_lock:
        found = _described.get(ds)
    if found is None:
        found = _describe_available(ds)
        with _described_lock:
            _described[ds] = found
    return [dict(row) for row in found]


def _describe_available(ds) -> list[dict]:
    rows = []
    for name in available(ds):
        side, kind, _, text = meta(ds, name)
        values = _raw_column(ds, name)
        if name in ("hour", "weekday"):
            n = 24 if name == "hour" else 7
        elif kind == "bag":
            n = len({g for v in values for g in _split_bag(v)})
        elif kind == "categorical":
            n = int(values[values != ""].nunique())
        else:
            n = 0
        rows.append({"feature": name, "side": side, "kind": kind, "categories": n or "", "description": text})
    return rows


def _split_bag(text: str) -> list[str]:
    return [g for g in text.split("|") if g and g != "(no genres listed)"]


def resolve(names, ds) -> tuple[str, ...]:
    """Feature names as asked (("all",) expands to what `ds` has), checked against what it has."""
    names = tuple(names)
    have = available(ds)
    if names == ("all",):
        return have
    missing = [n for n in names if n not in have]
    if missing:
        raise ConfigError(f"{ds.name} has no side feature {', '.join(missing)}; it has "
                          f"{', '.join(have) or 'none'} (python -m ncf data SOURCE lists them).")
    return tuple(n for n in have if n in names)  # one order, whatever order they were asked in


def check_names(names) -> None:
    """ConfigError for a name that is no feature (before any data is read)."""
    names = tuple(names)
    if names == ("all",):
        return
    unknown = [n for n in names if n not in FEATURES and not (n.startswith(EXTRA) and len(n) > len(EXTRA))]
    if unknown:
        raise ConfigError(f"Unknown feature {', '.join(map(repr, unknown))}; expected 'all', 'none' or a comma "
                          f"list of {', '.join(FEATURES)}, or {EXTRA}COLUMN for a column of your own file.")
    if len(set(names)) != len(names):
        raise ConfigError(f"A feature is named twice in {', '.join(names)}.")


def to_context(timestamp: np.ndarray) -> np.ndarray:
    """(n,) int seconds since 1970 (UTC) -> (n, 3) float32 [hour 0-23, weekday 0-6 (Monday 0), time in years]."""
    t = np.asarray(timestamp, dtype=np.int64)
    days = t // 86400
    out = np.empty((len(t), 3), dtype=np.float64)
    out[:, 0] = (t % 86400) // 3600
    out[:, 1] = (days + 3) % 7  # 1 January 1970 was a Thursday
    out[:, 2] = 1970.0 + t / SECONDS_PER_YEAR
    return out.astype(np.float32)


def item_years(ds) -> np.ndarray:
    """(n_items,) float32 release years, NaN where the title gives none."""
    years = _raw_column(ds, "year")
    if years is None:
        return np.full(ds.n_items, np.nan, np.float32)
    return years.to_numpy(dtype=np.float64).astype(np.float32)


def last_times(n_users: int, user: np.ndarray, time: np.ndarray) -> np.ndarray:
    """(n_users, 3) context of each user's last interaction among (user, time); a user with none gets the
    latest time overall (what a new user is recommended at)."""
    out = np.repeat(to_context(np.array([time.max() if len(time) else 0]))[None, 0], n_users, axis=0)
    if len(time):
        last = np.full(n_users, np.iinfo(np.int64).min, np.int64)
        np.maximum.at(last, user, time)
        has = last > np.iinfo(np.int64).min
        out[has] = to_context(last[has])
    return out


def train_context(split) -> np.ndarray | None:
    """(n_train, 3) context of every training interaction, or None when the split has no timestamps."""
    time = getattr(split, "train_time", None)
    return None if time is None else to_context(time)


def build(ds, names, train_index: dict[str, np.ndarray] | None = None, train_pairs: tuple | None = None) -> FeatureSet:
    """Encoders fitted on `ds` and its tables for the features `names`.

    `train_index` ({"user": indices, "item": indices}), when given, restricts what the encoders learn
    (categories, mean and spread) to those users or items: a category only a held-out user has then
    maps to unknown, as it would for a user who arrives after training. `train_pairs` (user, item,
    timestamp arrays of the training interactions; all of `ds` by default) is what the time features
    learn from: the spread of years since release, and each user's last time."""
    names = resolve(names, ds)
    specs, tables, notes = [], {}, []
    if any(meta(ds, n)[0] == "context" for n in names):
        user, item, time = train_pairs if train_pairs is not None else (ds.user, ds.item, ds.timestamp)
        years = item_years(ds)
        tables[USER_TIME] = last_times(ds.n_users, np.asarray(user), np.asarray(time))
        tables[ITEM_YEAR] = years
    for name in names:
        side, kind, _, _ = meta(ds, name)
        if side == "context":
            if name == "years_since_release":
                age = to_context(time)[:, 2] - years[item]
                age = age[np.isfinite(age)]
                spec = FeatureSpec(name, side, "numeric", mean=float(age.mean()) if len(age) else 0.0,
                                   std=float(age.std()) if len(age) > 1 and age.std() > 0 else 1.0)
            else:
                cats = tuple(str(h) for h in range(24)) if name == "hour" else WEEKDAYS
                spec = FeatureSpec(name, side, kind, cardinality=len(cats) + 1, width=emb_width(len(cats) + 1),
                                   categories=cats)
            specs.append(spec)
            continue
        values = _raw_column(ds, name)
        fit = values if train_index is None or side not in train_index else values.iloc[train_index[side]]
        if kind == "numeric":
            mean = float(fit.mean()) if fit.notna().any() else 0.0
            std = float(fit.std()) if fit.notna().sum() > 1 and fit.std() > 0 else 1.0
            spec = FeatureSpec(name, side, kind, mean=mean, std=std)
        elif kind == "categorical":
            cats = tuple(sorted(set(fit[fit != ""])))
            spec = FeatureSpec(name, side, kind, cardinality=len(cats) + 1, width=emb_width(len(cats) + 1),
                               categories=cats)
        else:
            cats = tuple(sorted({g for v in fit for g in _split_bag(v)}))
            longest = max((len(_split_bag(v)) for v in values), default=1)
            spec = FeatureSpec(name, side, kind, cardinality=len(cats) + 1, width=emb_width(len(cats) + 1),
                               categories=cats, max_len=max(1, longest))
        table, note = encode(spec, values)
        specs.append(spec)
        tables[name] = table
        if note:
            notes.append(note)
    return FeatureSet(tuple(specs), tables, tuple(notes))


def encode(spec: FeatureSpec, values) -> tuple[np.ndarray, str]:
    """Raw values (strings, or numbers for a numeric feature) -> the spec's table, and a note naming
    values the encoder never saw (mapped to the unknown code 0), or ''."""
    values = pd.Series(list(values) if not isinstance(values, pd.Series) else values).reset_index(drop=True)
    if spec.kind == "numeric":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        x = (x - spec.mean) / spec.std
        return np.nan_to_num(x, nan=0.0).astype(np.float32), ""
    lookup = {c: i + 1 for i, c in enumerate(spec.categories)}
    unseen: set[str] = set()
    if spec.kind == "categorical":
        strings = values.fillna("").astype(str)
        codes = np.array([lookup.get(v, UNKNOWN) for v in strings], dtype=np.int64)
        unseen = {v for v in strings if v and v not in lookup}
    else:
        codes = np.zeros((len(values), spec.max_len), dtype=np.int64)
        for row, text in enumerate(values.fillna("").astype(str)):
            bag = _split_bag(text)
            unseen.update(g for g in bag if g not in lookup)
            known = [lookup[g] for g in bag if g in lookup][:spec.max_len]
            codes[row, :len(known)] = known
    note = ""
    if unseen:
        shown = ", ".join(sorted(unseen)[:5]) + (" …" if len(unseen) > 5 else "")
        note = (f"{spec.name}: {len(unseen)} value(s) unseen in training ({shown}) map to the unknown "
                f"{'category' if spec.kind == 'categorical' else 'genre (left out of the bag)'}.")
    return codes, note


def for_split(model_cfg, split) -> tuple:
    """(model_cfg with its feature names resolved, the FeatureSet or None) for training on `split`.
    The encoders learn their categories and spreads from the users and items that have training
    interactions, so whatever only a held-out (cold-start) user or item has is unknown, as it would be
    for one who arrives later."""
    if not model_cfg.features:
        return model_cfg, None
    names = resolve(model_cfg.features, split.dataset)
    time_names = [n for n in names if n in FEATURES and FEATURES[n][0] == "context"]
    if time_names and model_cfg.model != "embnn":
        if tuple(model_cfg.features) != ("all",):
            raise ConfigError(f"The time features ({', '.join(time_names)}) are per interaction, which only "
                              f"EmbeddingNN takes; train --model embnn, or name the user and item features only.")
        names = tuple(n for n in names if n not in time_names)  # "all" for NeuMF or the MLP: what they take
    if time_names and getattr(split, "train_time", None) is None:
        if tuple(model_cfg.features) != ("all",):
            raise ConfigError(f"The time features ({', '.join(time_names)}) need the training interactions' "
                              f"timestamps, which this split does not carry.")
        names = tuple(n for n in names if n not in time_names)
    model_cfg = model_cfg.replace(features=names)
    if not names:
        return model_cfg, None
    seen = {"user": np.unique(split.train_user), "item": np.unique(split.train_item)}
    pairs = (split.train_user, split.train_item, split.train_time) if getattr(split, "train_time", None) is not None \
        else None
    return model_cfg, build(split.dataset, names, train_index=seen, train_pairs=pairs)
