"""Recommendations for a known user, what they interacted with, and title search."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ncf.explore.common import item_frame, single_threaded, top_k, user_index, user_scores


@single_threaded
def recommend(run, user, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
    """The top-k items for a known user: columns item, title, genres, score, held_out.

    Training items are excluded (unless `exclude_seen=False`); the user's held-out test item(s) stay
    in and are marked `held_out=True`, so one can see whether the model found them."""
    u = user_index(run, user)
    scores = user_scores(run.model, u)
    if exclude_seen:
        scores[run.train_item[run.train_rows(u)]] = -np.inf
    top = top_k(scores, k)
    held_out = np.isin(top, run.test_item[run.test_rows(u)])
    return item_frame(run, top).assign(score=scores[top], held_out=held_out)


@single_threaded
def user_history(run, user) -> pd.DataFrame:
    """What a user interacted with (training and held-out test rows): item, title, genres, rating,
    timestamp (when the data has them), held_out; newest first where times are known."""
    u = user_index(run, user)
    train_rows, test_rows = run.train_rows(u), run.test_rows(u)
    idx = np.concatenate([run.train_item[train_rows], run.test_item[test_rows]])
    df = item_frame(run, idx)
    if run.train_rating is not None and run.test_rating is not None:
        df["rating"] = np.concatenate([run.train_rating[train_rows], run.test_rating[test_rows]])
    if run.train_timestamp is not None and run.test_timestamp is not None:
        seconds = np.concatenate([run.train_timestamp[train_rows], run.test_timestamp[test_rows]])
        df["timestamp"] = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
        df["_order"] = seconds
    else:  # no times: held-out rows first (they are the latest in leave-one-out), then training order reversed
        df["_order"] = np.concatenate([np.arange(len(train_rows)), len(train_rows) + np.arange(len(test_rows))])
    df["held_out"] = np.r_[np.zeros(len(train_rows), bool), np.ones(len(test_rows), bool)]
    return df.sort_values("_order", ascending=False, kind="stable").drop(columns="_order").reset_index(drop=True)


@single_threaded
def search_titles(run, query: str, limit: int = 20) -> pd.DataFrame:
    """Items whose title contains `query` (case-insensitive; raw ids where there are no titles), most
    popular first: item, title, genres, popularity. An empty query gives the most popular items."""
    frame = item_frame(run, np.arange(run.n_items)).assign(popularity=run.item_popularity)
    query = str(query or "").strip().lower()
    if query:
        frame = frame[frame["title"].str.lower().str.contains(query, regex=False)]
    order = np.argsort(-frame["popularity"].to_numpy(), kind="stable")[: max(int(limit), 0)]
    return frame.iloc[order].reset_index(drop=True)
