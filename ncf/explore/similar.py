"""Item embeddings compared: unit-length item vectors and the items most alike to one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ncf.errors import RunError
from ncf.explore.common import classical, embedding_tables, item_frame, item_index, single_threaded, top_k


def _normalised(weight: torch.Tensor) -> np.ndarray:
    w = weight.detach().double().cpu().numpy()
    return w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)


def item_vectors(run, which: str | None = None) -> tuple[np.ndarray, str]:
    """(n_items, d) unit-length item vectors for cosine similarity, and the name of the table used.

    `which` names an embedding table (a key of `embedding_tables()`); "gmf+mlp" joins NeuMF's two
    (each normalised, then concatenated and normalised again: the average of the two cosines).
    The default for NeuMF is its GMF table alone: GMF scores an item by a (weighted) dot product of
    user and item vectors, so directions in that table are what the model compares and cosine is
    meaningful there; MLP vectors pass through a non-linear tower, which can use any mix of their
    coordinates, so their cosine reflects the model's view far less (on the planted-genre data the
    GMF table puts 10 of 10 neighbours in the item's genre, the MLP table about 1, the average 4)."""
    tables = embedding_tables(run)
    if which is None:
        which = "gmf" if "gmf" in tables else next(iter(tables))
    if which == "gmf+mlp" and {"gmf", "mlp"} <= set(tables):
        joined = np.concatenate([_normalised(tables["gmf"][1].weight), _normalised(tables["mlp"][1].weight)], axis=1)
        return joined / np.maximum(np.linalg.norm(joined, axis=1, keepdims=True), 1e-12), which
    if which not in tables:
        raise RunError(f"Unknown embedding table {which!r}; this model has {', '.join(tables)}.")
    return _normalised(tables[which][1].weight), which


@single_threaded
def similar_items(run, item, k: int = 10, which: str | None = None) -> pd.DataFrame:
    """The k items whose embeddings are closest in cosine similarity: item, title, genres, similarity.
    A model with its own item-item weights (EASE's B, item-kNN's neighbours) answers from those."""
    i = item_index(run, item)
    model = classical(run)
    own = model.item_similarity(i) if model is not None and which is None else None
    if own is not None:
        similarity = own.double().cpu().numpy()
    else:
        vectors, _ = item_vectors(run, which)
        similarity = vectors @ vectors[i]  # (n_items,)
    similarity[i] = -np.inf  # the item itself
    top = top_k(similarity, k)
    return item_frame(run, top).assign(similarity=similarity[top])
