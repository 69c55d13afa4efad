"""What the Data page draws, as aggregates of bounded size: a chart of 25 million ratings needs a few
dozen bars and a few hundred points of a curve, not the ratings themselves.

`summarize(ds)` reads each interaction array once (a bincount or two, no sort of the 25M rows) and
returns a `DataSummary` whose arrays have at most `max_points` (the popularity curve) or `bins` +1
(the histograms) entries whatever the size of the data. It is remembered per dataset object, so a
page that reruns on every click pays for it once per parsed dataset, not once per rerun or session.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np

# Beyond this many distinct rating values the ratings are treated as continuous and binned.
MAX_RATING_VALUES = 30


@dataclass(frozen=True, eq=False)
class DataSummary:
    """Counts behind the Data page's three charts; every array is small (see the module docstring)."""

    n_interactions: int
    rating_values: np.ndarray | None  # (<= 30,) a rating value (or a bin's centre); None: implicit
    rating_counts: np.ndarray | None  # (<= 30,) interactions with it
    tail_rank: np.ndarray  # (<= max_points,) 1-based popularity ranks, 1 and n_items included
    tail_count: np.ndarray  # (<= max_points,) interactions of the item at that rank
    n_items: int
    head_items: int  # the fewest most popular items holding half of all interactions
    user_edges: np.ndarray  # (<= bins + 1,) bin edges of interactions per user
    user_counts: np.ndarray  # (<= bins,) users per bin
    user_median: float  # median interactions per user (nan with no users)


def rating_counts(rating: np.ndarray | None, max_values: int = MAX_RATING_VALUES):
    """(values, counts) of each rating value, or (bin centres, counts) of `max_values` bins when the
    ratings take more values than that; (None, None) for implicit feedback."""
    if rating is None or len(rating) == 0:
        return None, None
    r = np.asarray(rating)
    low, high = float(r.min()), float(r.max())
    # Half stars and whole stars (every MovieLens release): one bincount of 2r instead of a sort.
    if np.isfinite(low) and np.isfinite(high) and high - low <= 2 * max_values:
        doubled = r * 2 - 2 * low
        steps = doubled.astype(np.int64)
        if np.array_equal(steps, doubled):
            counts = np.bincount(steps)
            values = np.flatnonzero(counts)
            if len(values) <= max_values:
                return (values / 2 + low).astype(np.float64), counts[values]
    values, counts = np.unique(r, return_counts=True)
    if len(values) > max_values:
        counts, edges = np.histogram(r, bins=max_values)
        values = (edges[:-1] + edges[1:]) / 2
    return values.astype(np.float64), counts


def tail_curve(item_counts: np.ndarray, max_points: int = 400) -> tuple[np.ndarray, np.ndarray, int]:
    """The popularity curve (items sorted by interactions, most first) at at most `max_points` ranks:
    dense at the head, where it falls fast, and spread evenly over the tail; plus the number of top
    items that hold half of all interactions (computed on every item, not the sample)."""
    counts = np.sort(np.asarray(item_counts))[::-1]
    n = len(counts)
    share = np.cumsum(counts) / max(1, counts.sum())
    head = int(np.searchsorted(share, 0.5)) + 1 if n else 0
    if n <= max_points:
        ranks = np.arange(1, n + 1)
    else:
        half = max_points // 2
        ranks = np.unique(np.concatenate([np.geomspace(1, n, half), np.linspace(1, n, max_points - half)]).round()
                          .astype(np.int64))
        ranks = ranks[(ranks >= 1) & (ranks <= n)]
    return ranks, counts[ranks - 1], head


def user_histogram(user_counts: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray, float]:
    """(edges, counts, median) of interactions per user in `bins` equal-width bins of whole numbers."""
    counts = np.asarray(user_counts)
    if len(counts) == 0:
        return np.zeros(1), np.zeros(0, dtype=np.int64), float("nan")
    low, high = int(counts.min()), int(counts.max())
    width = max(1, -(-(high - low + 1) // bins))  # whole interactions per bin
    edges = low + width * np.arange(-(-(high - low + 1) // width) + 1, dtype=np.float64)
    hist = np.bincount((counts - low) // width, minlength=len(edges) - 1)
    return edges, hist, float(np.median(counts))


_memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_memo_lock = threading.Lock()


def summarize(ds, max_points: int = 400, bins: int = 40) -> DataSummary:
    """The Data page's aggregates of a `Dataset`, remembered for as long as the dataset object lives
    (datasets are immutable and shared: the app's cache holds one per source)."""
    key = (max_points, bins)
    with _memo_lock:
        found = _memo.get(ds, {}).get(key)
    if found is not None:
        return found
    values, counts = rating_counts(ds.rating)
    ranks, tail, head = tail_curve(ds.per_item_counts(), max_points)
    edges, hist, median = user_histogram(ds.per_user_counts(), bins)
    summary = DataSummary(n_interactions=ds.n_interactions, rating_values=values, rating_counts=counts,
                          tail_rank=ranks, tail_count=tail, n_items=ds.n_items, head_items=head,
                          user_edges=edges, user_counts=hist, user_median=median)
    with _memo_lock:
        _memo.setdefault(ds, {})[key] = summary
    return summary


__all__ = ["DataSummary", "rating_counts", "summarize", "tail_curve", "user_histogram"]
