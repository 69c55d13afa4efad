"""Evaluation splits, all seeded: the same dataset and seed give the same split on any machine."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ncf.data.dataset import Dataset
from ncf.errors import DataError

SPLIT_KINDS = ("leave_one_out", "ratio", "published", "cold_users", "cold_items")
COLD_KINDS = ("cold_users", "cold_items")


@dataclass(frozen=True, eq=False)
class Split:
    """Train and test interactions of one dataset (indices into its vocabularies).

    For leave-one-out and published splits, `test_negatives` holds the sampled candidates
    each test user's held-out item is ranked against: (n_test, n_negatives). A leave-one-out split
    with validation also holds out each user's second-latest interaction, ranked the same way
    (`valid_*`): the trainer picks its best epoch on these, never on the test items.
    """

    kind: str
    dataset: Dataset
    train_user: np.ndarray  # (n_train,) int64
    train_item: np.ndarray
    train_rating: np.ndarray | None  # (n_train,) float32; None when implicit
    test_user: np.ndarray  # (n_test,) int64
    test_item: np.ndarray
    test_rating: np.ndarray | None
    test_negatives: np.ndarray | None  # (n_test, n_neg) int64
    seed: int = 0
    settings: tuple = ()  # (name, value) pairs that produced it, for display and fingerprint
    valid_user: np.ndarray | None = None  # (n_valid,) int64; None: no validation hold-out
    valid_item: np.ndarray | None = None
    valid_rating: np.ndarray | None = None
    valid_negatives: np.ndarray | None = None  # (n_valid, n_negatives) int64
    # (n_train,) / (n_valid,) int64 seconds of those interactions, for the time features; None without timestamps
    train_time: np.ndarray | None = None
    valid_time: np.ndarray | None = None

    @property
    def has_validation(self) -> bool:
        return self.valid_user is not None and len(self.valid_user) > 0

    def without_validation(self) -> Split:
        """The validation pairs folded back into train: what a saved run keeps as the users' known
        interactions (their histories, and what recommendations and full ranking leave out)."""
        if self.valid_user is None:
            return self
        rating = None if self.train_rating is None else np.concatenate([self.train_rating, self.valid_rating])
        time = None if self.train_time is None or self.valid_time is None else \
            np.concatenate([self.train_time, self.valid_time])
        return replace(self, train_user=np.concatenate([self.train_user, self.valid_user]),
                       train_item=np.concatenate([self.train_item, self.valid_item]), train_rating=rating,
                       train_time=time, valid_user=None, valid_item=None, valid_rating=None, valid_negatives=None,
                       valid_time=None)

    @property
    def n_users(self) -> int:
        return self.dataset.n_users

    @property
    def n_items(self) -> int:
        return self.dataset.n_items

    @property
    def n_train(self) -> int:
        return len(self.train_user)

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.dataset.fingerprint().encode())
        h.update(repr((self.kind, self.seed, self.settings)).encode())
        for arr in (self.train_user, self.train_item, self.test_user, self.test_item, self.test_negatives,
                    self.valid_user, self.valid_item, self.valid_negatives):
            if arr is not None:
                h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        s = dict(self.settings)
        if self.kind == "leave_one_out":
            text = (f"Leave-one-out: each user's latest interaction is held out and ranked against "
                    f"{s.get('n_negatives', 99)} sampled items they never interacted with (seed {self.seed}).")
            if s.get("validation"):
                text += (" The second-latest is held out likewise for validation: training keeps the epoch "
                         "that ranks it best.")
            return text
        if self.kind in COLD_KINDS:
            who = "users" if self.kind == "cold_users" else "items"
            among = ("items the user never interacted with" if who == "users"
                     else "other held-out items the user never interacted with")
            return (f"Cold start: {s.get('test_fraction', 0.2):.0%} of the {who} held out completely (seed "
                    f"{self.seed}); each of their interactions is ranked against {s.get('n_negatives', 99)} "
                    f"{among}. Training never sees them.")
        if self.kind == "ratio":
            return (f"Random split of the ratings: {1 - s.get('test_fraction', 0.2):.0%} train, "
                    f"{s.get('test_fraction', 0.2):.0%} test (seed {self.seed}).")
        return "The published NCF split: one held-out item and the published negatives per test user."


def pair_times(ds: Dataset) -> Callable[[np.ndarray, np.ndarray], np.ndarray | None] | None:
    """A lookup of the times of (user, item) pairs in `ds`, since a split keeps indices, not row
    numbers: `lookup(user, item)` gives each pair's time (its latest where the pair occurs more than
    once), or None when the arrays hold a pair `ds` lacks (a published test set). None when `ds` has
    no times. It reads only the arrays it is given (choosing EASE's λ must not touch a test item)."""
    if ds.timestamp is None or ds.n_interactions == 0:
        return None
    keys = ds.user.astype(np.int64) * ds.n_items + ds.item
    order = np.lexsort((ds.timestamp, keys))
    keys_sorted, times_sorted = keys[order], ds.timestamp[order]
    last = np.r_[keys_sorted[1:] != keys_sorted[:-1], True]  # the latest time of each distinct pair
    keys_sorted, times_sorted = keys_sorted[last], times_sorted[last]

    def lookup(user: np.ndarray, item: np.ndarray) -> np.ndarray | None:
        k = user.astype(np.int64) * ds.n_items + item
        pos = np.minimum(np.searchsorted(keys_sorted, k), len(keys_sorted) - 1)
        if len(k) and not (keys_sorted[pos] == k).all():
            return None
        return times_sorted[pos]

    return lookup


def filter_min_interactions(ds: Dataset, min_per_user: int = 1, min_per_item: int = 1) -> Dataset:
    """Keeps users and items with at least the given number of interactions (one pass each way,
    repeated until stable), and re-indexes both vocabularies."""
    keep = np.ones(ds.n_interactions, dtype=bool)
    while True:
        u_counts = np.bincount(ds.user[keep], minlength=ds.n_users)
        i_counts = np.bincount(ds.item[keep], minlength=ds.n_items)
        new_keep = keep & (u_counts[ds.user] >= min_per_user) & (i_counts[ds.item] >= min_per_item)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    if keep.all():
        return ds
    if not keep.any():
        raise DataError(
            f"No interactions left after keeping users with ≥{min_per_user} and items with "
            f"≥{min_per_item} interactions; lower the minimums."
        )
    return reindex(ds, keep, reason=f"fewer than {min_per_user} per user / {min_per_item} per item")


def reindex(ds: Dataset, keep: np.ndarray, reason: str) -> Dataset:
    """The dataset restricted to rows `keep`, with unused users and items dropped from the vocabularies."""
    from ncf.data.dataset import Vocab

    # The indices still used, in order: by counting, not np.unique (which hashes 32M rows for seconds).
    users_used = np.flatnonzero(np.bincount(ds.user[keep], minlength=ds.n_users))
    items_used = np.flatnonzero(np.bincount(ds.item[keep], minlength=ds.n_items))
    u_map = np.full(ds.n_users, -1, dtype=np.int64)
    u_map[users_used] = np.arange(len(users_used))
    i_map = np.full(ds.n_items, -1, dtype=np.int64)
    i_map[items_used] = np.arange(len(items_used))
    dropped = dict(ds.dropped)
    n_dropped = int((~keep).sum())
    if n_dropped:
        dropped[reason] = dropped.get(reason, 0) + n_dropped
    return replace(
        ds,
        user=u_map[ds.user[keep]],
        item=i_map[ds.item[keep]],
        rating=None if ds.rating is None else ds.rating[keep],
        timestamp=None if ds.timestamp is None else ds.timestamp[keep],
        users=Vocab(ds.users.raw(users_used), ds.users.kind),
        items=Vocab(ds.items.raw(items_used), ds.items.kind),
        item_info=None if ds.item_info is None else ds.item_info.iloc[items_used].reset_index(drop=True),
        user_info=None if ds.user_info is None else ds.user_info.iloc[users_used].reset_index(drop=True),
        dropped=dropped,
        published_test=None,
    )


@dataclass(frozen=True)
class SeenIndex:
    """The interactions' user*n_items+item keys grouped by blocks of 2**shift consecutive users (a
    stable 16-bit radix sort, far cheaper than sorting the keys): `keys[starts[b]:starts[b+1]]` are
    block b's. What `sample_negatives` rejects candidates against, built once per split."""

    keys: np.ndarray  # (n,) int64, grouped by user block
    starts: np.ndarray  # (n_blocks + 1,) int64 offsets into keys
    shift: int
    n_items: int

    @classmethod
    def build(cls, ds_user: np.ndarray, ds_item: np.ndarray, n_items: int) -> SeenIndex:
        top = int(ds_user.max(initial=0))
        shift = max(0, top.bit_length() - 16)
        block = (ds_user >> shift).astype(np.uint16)
        order = np.argsort(block, kind="stable")  # radix sort: 16-bit keys
        keys = (ds_user.astype(np.int64) * n_items + ds_item)[order]  # one scattered gather, not two
        starts = np.zeros((top >> shift) + 2, dtype=np.int64)
        np.cumsum(np.bincount(block, minlength=(top >> shift) + 1), out=starts[1:])
        return cls(keys, starts, shift, n_items)

    def block_keys(self, first_user: int, end_user: int) -> np.ndarray:
        """The keys of users first_user..end_user-1 (and others of the same blocks); first_user is a
        block boundary."""
        lo = min(first_user >> self.shift, len(self.starts) - 1)
        hi = min(-(-end_user >> self.shift), len(self.starts) - 1)
        return self.keys[self.starts[lo]:self.starts[hi]]


# Candidates handled at a time (a few MiB per temporary), and the size of the seen-pair mask of the
# users being handled: 16 MiB of bools, so its look-ups stay in cache.
_CHUNK_CANDIDATES = 1 << 20
_MASK_PAIRS = 1 << 24
# Candidates and shuffle keys (16 bytes a candidate) drawn in one go up to this size, in chunks above
# it: a cold-start split of ML-25M's shape has 5M held-out rows of 305 candidates, 24 GB at once.
_DRAW_AT_ONCE = 1 << 30


class _Draws:
    """The candidates (rows, width), then the shuffle's keys of the same shape, drawn from `rng` in
    that order (as two calls always drew them), handed out a block of rows at a time.

    Small draws are made at once. Large ones are made in chunks, the rows then taken in order: a
    NumPy generator gives the same stream whatever the chunks, so the candidates are drawn twice,
    once to move `rng` past them to where the keys begin, and again, from a copy of its first state,
    as they are used. The numbers are the same either way (tests/data/test_split_reference.py)."""

    def __init__(self, rng: np.random.Generator, n_rows: int, width: int, n_items: int, at_once: bool):
        self.rng, self.width, self.n_items, self.next_row = rng, width, n_items, 0
        if at_once or n_rows * width * 16 <= _DRAW_AT_ONCE:
            self.candidates = rng.integers(0, n_items, size=(n_rows, width), dtype=np.int64)
            self.keys = rng.random((n_rows, width))
            return
        self.candidates = self.keys = None
        self.again = np.random.Generator(type(rng.bit_generator)())
        self.again.bit_generator.state = rng.bit_generator.state
        step = max(1, _CHUNK_CANDIDATES // width)
        for lo in range(0, n_rows, step):
            rng.integers(0, n_items, size=(min(step, n_rows - lo), width), dtype=np.int64)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The candidates (int64) and the shuffle's keys (float64) of `rows`: (len(rows), width) each."""
        if self.candidates is not None:
            return self.candidates[rows], self.keys[rows]
        if rows[0] != self.next_row or rows[-1] != self.next_row + len(rows) - 1:
            raise RuntimeError("chunked draws are taken in order of rows")  # sample_negatives' own use
        self.next_row += len(rows)
        shape = (len(rows), self.width)
        return self.again.integers(0, self.n_items, size=shape, dtype=np.int64), self.rng.random(shape)


def sample_negatives(
    ds_user: np.ndarray, ds_item: np.ndarray, n_items: int, users: np.ndarray, n: int, rng: np.random.Generator,
    seen: SeenIndex | None = None,
) -> np.ndarray:
    """For each of `users`, `n` distinct items that user never interacted with: (len(users), n).

    Vectorised rejection sampling: draw a few times more candidates than needed and reject seen
    items, in one round; the few rows still short after it are completed exactly. Memory beyond the
    result stays bounded (`_Draws`), whatever the number of rows.

    The rows are taken in order of user, a range of users at a time: their seen pairs are marked in a
    dense (users, n_items) mask that the candidates are looked up in, and cleared again (`seen` holds
    the pairs grouped by user; built here when not given). What is drawn, and in which order, is as it
    always was: the same data and generator give the same negatives as the original sorted-key search
    (tests/data/test_split_reference.py keeps it as the reference).
    """
    out = np.empty((len(users), n), dtype=np.int64)
    counts = np.bincount(ds_user, minlength=int(users.max(initial=0)) + 1)
    if len(users) and (n_items - counts[users]).min() < n:
        worst = int(users[np.argmin(n_items - counts[users])])
        raise DataError(
            f"Cannot draw {n} negatives for a user who interacted with {int(counts[worst])} of "
            f"{n_items} items; lower the number of negatives (at most {n_items - int(counts[worst])})."
        )
    if not len(users):
        return out
    if seen is None:
        seen = SeenIndex.build(ds_user, ds_item, n_items)
    width = 3 * n + 8
    small = np.int32 if n_items < 2**31 else np.int64
    by_user = None if (users[1:] >= users[:-1]).all() else np.argsort(users, kind="stable")
    # Rows out of user order are taken out of order: those draws are made at once.
    draws = _Draws(rng, len(users), width, n_items, at_once=by_user is not None)
    sorted_users = users if by_user is None else users[by_user]
    done = np.zeros(len(users), dtype=bool)
    block = 1 << seen.shift
    span = max(block, _MASK_PAIRS // n_items // block * block)  # users per mask, whole blocks
    mask = np.zeros(span * n_items, dtype=bool)
    step = max(1, _CHUNK_CANDIDATES // width)
    first = int(sorted_users[0]) >> seen.shift << seen.shift
    while first <= sorted_users[-1]:
        row_lo, row_hi = np.searchsorted(sorted_users, [first, first + span])
        if row_lo == row_hi:  # no rows for these users: on to the next user that has some
            first = int(sorted_users[row_lo]) >> seen.shift << seen.shift
            continue
        marked = seen.block_keys(first, first + span) - first * n_items
        mask[marked] = True
        for lo in range(row_lo, row_hi, step):
            rows = np.arange(lo, min(lo + step, row_hi))
            if by_user is not None:
                rows = by_user[rows]
            cand, key = draws.take(rows)
            cand = cand.astype(small)
            is_seen = mask[(users[rows, None] - first) * n_items + cand]
            # Seen candidates become -1 and, sorted, go first; the rest follow in ascending order.
            cand[is_seen] = -1
            cand.sort(axis=1)
            # Distinct within a row: drop repeats of the sorted candidates.
            dup = np.zeros(cand.shape, dtype=bool)
            dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
            valid = (cand >= 0) & ~dup
            # Shuffle valid ones (invalid ones behind them) so that sorting doesn't bias toward low ids.
            key[~valid] += 2.0
            order = np.argsort(key, axis=1)[:, :n]
            enough = valid.sum(axis=1) >= n
            done[rows] = enough
            out[rows[enough]] = np.take_along_axis(cand, order, axis=1)[enough]
        mask[marked] = False
        first += span
    del draws
    short = np.flatnonzero(~done)
    if len(short):
        # The rows still short (typically users with barely `n` unseen items, whom rejection would
        # rarely complete): pick exactly, the `n` smallest random keys over unseen items, in chunks
        # that keep the (rows, n_items) matrices small.
        for chunk in np.array_split(short, -(-len(short) * n_items // (1 << 24))):
            distinct, row_of = np.unique(users[chunk], return_inverse=True)
            seen_by = np.zeros((len(distinct), n_items), dtype=bool)
            # These users' pairs, from the blocks spanning them (not a scan of every interaction).
            pairs = seen.block_keys(int(distinct[0]) >> seen.shift << seen.shift, int(distinct[-1]) + 1)
            pair_user = pairs // n_items
            at = np.minimum(np.searchsorted(distinct, pair_user), len(distinct) - 1)
            mine = distinct[at] == pair_user
            seen_by[at[mine], pairs[mine] % n_items] = True
            keys = rng.random((len(chunk), n_items))
            keys[seen_by[row_of]] = 2.0
            out[chunk] = np.argsort(keys, axis=1)[:, :n]
    return out


def _latest_per_user(user: np.ndarray, time: np.ndarray, tiebreak: np.ndarray, n_users: int,
                     exclude: np.ndarray | None = None) -> np.ndarray:
    """For each user, the row number that comes last by time, then tie-break, then row number: what
    a stable sort by (user, time, tie-break) puts at the end of the user's run. Rows `exclude` are
    left out (each user must keep a row). (n_users,) int64, -1 for a user without rows.

    Three passes of a scatter-max instead of that three-key sort (80 s at 25M rows on the 2-core
    box; this takes about a second)."""
    if exclude is not None:
        # Put last among their user's rows: the earliest time and a tie-break below any drawn one.
        time, tiebreak = time.copy(), tiebreak.copy()
        time[exclude] = time.min(initial=0)
        tiebreak[exclude] = -1.0
    best: np.ndarray = np.full(n_users, time.min(initial=0), dtype=time.dtype)
    np.maximum.at(best, user, time)
    at = np.flatnonzero(time == best[user])  # rows holding their user's latest time
    best_r = np.full(n_users, -2.0)
    np.maximum.at(best_r, user[at], tiebreak[at])
    at = at[tiebreak[at] == best_r[user[at]]]
    pos = np.full(n_users, -1, dtype=np.int64)
    np.maximum.at(pos, user[at], at)  # equal time and tie-break: the sort was stable, the later row wins
    return pos


def leave_one_out(ds: Dataset, n_negatives: int = 99, seed: int = 0, validation: bool = False) -> Split:
    """He et al.'s protocol: each user's latest interaction (ties broken by a seeded draw) is the
    test item, ranked against `n_negatives` items the user never interacted with.

    With `validation`, each user's second-latest interaction (users with at least three) is held
    out as well, with its own negatives, for choosing the epoch to keep. The test items and their
    negatives are the same as without it, so results with and without stay comparable."""
    if ds.published_test is not None:
        return published(ds)
    counts = ds.per_user_counts()
    if (counts < 2).any():
        ds = filter_min_interactions(ds, min_per_user=2)
        counts = ds.per_user_counts()
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(ds.n_interactions)
    time = ds.timestamp if ds.timestamp is not None else np.arange(ds.n_interactions)
    # Every user has at least two interactions here, so each has a latest one: (n_users,) rows, by user.
    test_idx = _latest_per_user(ds.user, time, tiebreak, ds.n_users)
    last = np.zeros(ds.n_interactions, dtype=bool)
    last[test_idx] = True
    # A small catalogue (an uploaded class example with 60 items, say) cannot give every user 99
    # unseen items: rank against as many as the most active user leaves, and say so in the label,
    # rather than refusing a dataset that trains perfectly well.
    unseen = int((ds.n_items - counts).min())
    if unseen < 1:
        raise DataError(f"A user interacted with every one of the {ds.n_items} items, so no unseen item is left "
                        "to rank the held-out one against; leave-one-out needs items a user has not seen.")
    n_negatives = min(n_negatives, unseen)
    seen = SeenIndex.build(ds.user, ds.item, ds.n_items)
    negatives = sample_negatives(ds.user, ds.item, ds.n_items, ds.user[test_idx], n_negatives, rng, seen=seen)
    train = ~last
    valid: dict = {}
    if validation:
        valid_idx = _latest_per_user(ds.user, time, tiebreak, ds.n_users, exclude=test_idx)[counts >= 3]
        valid = {"valid_user": ds.user[valid_idx], "valid_item": ds.item[valid_idx],
                 "valid_rating": None if ds.rating is None else ds.rating[valid_idx],
                 "valid_time": None if ds.timestamp is None else ds.timestamp[valid_idx],
                 "valid_negatives": sample_negatives(ds.user, ds.item, ds.n_items, ds.user[valid_idx],
                                                     n_negatives, rng, seen=seen)}
        train[valid_idx] = False
    return Split(
        kind="leave_one_out",
        dataset=ds,
        train_user=ds.user[train],
        train_item=ds.item[train],
        train_rating=None if ds.rating is None else ds.rating[train],
        train_time=None if ds.timestamp is None else ds.timestamp[train],
        test_user=ds.user[test_idx],
        test_item=ds.item[test_idx],
        test_rating=None if ds.rating is None else ds.rating[test_idx],
        test_negatives=negatives,
        seed=seed,
        settings=(("n_negatives", n_negatives), *((("validation", True),) if validation else ())),
        **valid,
    )


def ratio_split(ds: Dataset, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """fastbook's protocol for rating regression: a random `test_fraction` of all ratings is held out."""
    if not 0 < test_fraction < 1:
        raise DataError(f"The test fraction must be between 0 and 1, got {test_fraction}.")
    rng = np.random.default_rng(seed)
    is_test = rng.random(ds.n_interactions) < test_fraction
    return Split(
        kind="ratio",
        dataset=ds,
        train_user=ds.user[~is_test],
        train_item=ds.item[~is_test],
        train_rating=None if ds.rating is None else ds.rating[~is_test],
        train_time=None if ds.timestamp is None else ds.timestamp[~is_test],
        test_user=ds.user[is_test],
        test_item=ds.item[is_test],
        test_rating=None if ds.rating is None else ds.rating[is_test],
        test_negatives=None,
        seed=seed,
        settings=(("test_fraction", test_fraction),),
    )


def published(ds: Dataset) -> Split:
    """The fixed split shipped with a published-format dataset, kept exactly as published."""
    t = ds.published_test
    if t is None:
        raise DataError(f"{ds.name} has no published test set; use leave-one-out or a ratio split.")
    return Split(
        kind="published",
        dataset=ds,
        train_user=ds.user,
        train_item=ds.item,
        train_rating=ds.rating,
        train_time=ds.timestamp,
        test_user=t.user,
        test_item=t.item,
        test_rating=None,
        test_negatives=t.negatives,
        seed=0,
        settings=(("n_negatives", int(t.negatives.shape[1])),),
    )


def cold_start(ds: Dataset, side: str = "users", fraction: float = 0.2, n_negatives: int = 99,
               seed: int = 0) -> Split:
    """A seeded share of users (or items) held out completely: none of their interactions is in
    train; every one of them is a test pair. A held-out user's pair is ranked against items that user
    never interacted with; a held-out item's pair against other held-out items the user never
    interacted with (ranked among warm items, a never-seen item loses to anything popular, which
    says nothing about how it ranks among its peers). Users (items) left with no training
    interaction keep their index; a model with side features scores them from their features."""
    if side not in ("users", "items"):
        raise DataError(f"A cold-start split holds out users or items, not {side!r}.")
    if not 0 < fraction < 1:
        raise DataError(f"The held-out share must be between 0 and 1, got {fraction}.")
    rng = np.random.default_rng(seed)
    n = ds.n_users if side == "users" else ds.n_items
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:max(1, round(fraction * n))]] = True
    is_test = held[ds.user] if side == "users" else held[ds.item]
    test_idx = np.flatnonzero(is_test)
    test_idx = test_idx[np.argsort(ds.user[test_idx], kind="stable")]
    if side == "users":
        unseen = int((ds.n_items - ds.per_user_counts()[held]).min())
        n_neg = min(n_negatives, unseen)
        negatives = sample_negatives(ds.user, ds.item, ds.n_items, ds.user[test_idx], n_neg, rng)
    else:
        # Local indices over the held-out items only, drawn as usual, then mapped back.
        cold_items = np.flatnonzero(held)
        local = np.full(ds.n_items, -1, dtype=np.int64)
        local[cold_items] = np.arange(len(cold_items))
        counts = np.bincount(ds.user[is_test], minlength=ds.n_users)
        n_neg = min(n_negatives, int(len(cold_items) - counts[ds.user[test_idx]].max(initial=0)))
        if n_neg < 1:
            raise DataError("A user interacted with every held-out item, so none is left to rank against; "
                            "hold out a larger share of items.")
        negatives = cold_items[sample_negatives(ds.user[is_test], local[ds.item[is_test]], len(cold_items),
                                                ds.user[test_idx], n_neg, rng)]
    train = ~is_test
    return Split(
        kind=f"cold_{side}", dataset=ds,
        train_user=ds.user[train], train_item=ds.item[train],
        train_rating=None if ds.rating is None else ds.rating[train],
        train_time=None if ds.timestamp is None else ds.timestamp[train],
        test_user=ds.user[test_idx], test_item=ds.item[test_idx],
        test_rating=None if ds.rating is None else ds.rating[test_idx],
        test_negatives=negatives, seed=seed,
        settings=(("n_negatives", n_neg), ("test_fraction", fraction)),
    )


def make_split(ds: Dataset, kind: str = "leave_one_out", seed: int = 0, n_negatives: int = 99,
               test_fraction: float = 0.2, validation: bool = False) -> Split:
    """One entry point for the app and CLI."""
    if validation and kind != "leave_one_out":
        raise DataError(f"A validation hold-out (each user's second-latest interaction) comes with the "
                        f"leave-one-out split only, not with {kind!r}; choose leave-one-out or no validation.")
    if kind == "leave_one_out":
        return leave_one_out(ds, n_negatives=n_negatives, seed=seed, validation=validation)
    if kind == "ratio":
        return ratio_split(ds, test_fraction=test_fraction, seed=seed)
    if kind == "published":
        return published(ds)
    if kind in COLD_KINDS:
        return cold_start(ds, kind.removeprefix("cold_"), fraction=test_fraction, n_negatives=n_negatives, seed=seed)
    raise DataError(f"Unknown split {kind!r}; expected one of {', '.join(SPLIT_KINDS)}.")
