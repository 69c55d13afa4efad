"""He et al.'s published NCF data (`Data/` in their repository), kept exactly as published.

Three tab-separated files share a prefix NAME:
- NAME.train.rating    user  item  rating  timestamp   (0-based ids)
- NAME.test.rating     user  item  rating  timestamp   (one held-out item per test user)
- NAME.test.negative   (user,item)  neg_1 … neg_99      (the candidates it is ranked against)
The ids are already indices, so the vocabularies are the identity over the whole id space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ncf.data.dataset import Dataset, PublishedTest, Vocab
from ncf.errors import DataError
from ncf.memory import check_parse_fits

SUFFIXES = (".train.rating", ".test.rating", ".test.negative")


def published_prefix(path: Path) -> Path | None:
    """The NAME prefix when `path` is NAME.train.rating or a NAME with a NAME.train.rating beside it."""
    text = str(path)
    if text.endswith(".train.rating"):
        return Path(text[: -len(".train.rating")])
    if Path(text + ".train.rating").is_file():
        return Path(text)
    return None


def published_files(prefix: Path) -> list[Path]:
    return [Path(str(prefix) + s) for s in SUFFIXES]


def _read(path: Path, label: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", header=None, engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{label}: could not be read ({str(e).splitlines()[0]}). Expected tab-separated rows "
                        "as in He et al.'s Data/ folder.") from e


def load_published(prefix: Path) -> Dataset:
    prefix = Path(prefix)
    train_path, test_path, neg_path = published_files(prefix)
    missing = [p.name for p in (train_path, test_path, neg_path) if not p.is_file()]
    if missing:
        raise DataError(
            f"{prefix.name}: missing {', '.join(missing)}. Expected the three published files "
            f"{', '.join(prefix.name + s for s in SUFFIXES)} side by side."
        )
    # refused before reading, as other files are: the three parsed side by side
    check_parse_fits(sum(p.stat().st_size for p in (train_path, test_path, neg_path)), f"{prefix.name}.*")
    train = _read(train_path, train_path.name)
    test = _read(test_path, test_path.name)
    neg = _read(neg_path, neg_path.name)
    for frame, path in ((train, train_path), (test, test_path)):
        if frame.shape[1] < 2 or not all(pd.api.types.is_integer_dtype(frame[c]) for c in (0, 1)):
            raise DataError(f"{path.name}: expected integer user and item ids in the first two columns.")
    pair = neg[0].astype(str).str.extract(r"^\((\d+),(\d+)\)$")
    if pair.isna().any().any() or neg.shape[1] < 2 or neg.iloc[:, 1:].isna().any().any():
        raise DataError(f"{neg_path.name}: expected rows '(user,item)' followed by the same number of negative ids.")
    test_user = test[0].to_numpy(np.int64)
    test_item = test[1].to_numpy(np.int64)
    if len(pair) != len(test) or not (np.array_equal(pair[0].astype(np.int64).to_numpy(), test_user)
                                      and np.array_equal(pair[1].astype(np.int64).to_numpy(), test_item)):
        raise DataError(f"{neg_path.name}: its (user,item) pairs do not match {test_path.name} row for row.")
    negatives = neg.iloc[:, 1:].to_numpy(np.int64)  # (n_test, n_negatives)

    user = train[0].to_numpy(np.int64)
    item = train[1].to_numpy(np.int64)
    n_users = int(max(user.max(), test_user.max())) + 1
    n_items = int(max(item.max(), test_item.max(), negatives.max())) + 1
    rating = train[2].to_numpy(np.float32) if train.shape[1] > 2 else None
    if rating is not None and rating.min() == rating.max():
        rating = None  # one constant value (pinterest-20): implicit feedback
    timestamp = train[3].to_numpy(np.int64) if train.shape[1] > 3 else None
    return Dataset(
        name=f"{prefix.name} (published NCF split)",
        user=user,
        item=item,
        rating=rating,
        timestamp=timestamp,
        users=Vocab(np.arange(n_users), "user"),
        items=Vocab(np.arange(n_items), "item"),
        source=str(prefix),
        published_test=PublishedTest(user=test_user, item=test_item, negatives=negatives),
    )
