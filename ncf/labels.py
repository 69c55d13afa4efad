"""What the metric keys mean, in words a reader of a chart or a table can use.

The core names metrics by short keys (`hr@10`, `full_recall@10`, `rmse`); people read "HR@10
(99 sampled negatives)". One table here serves the plots, the app and the CLI, so a metric is
called the same everywhere. No Streamlit.
"""

from __future__ import annotations

import math
import re

RATING_METRICS = ("rmse", "mae", "mse")
_KEY = re.compile(r"^(val_)?(full_)?(hr|ndcg|recall)@(\d+)$")


def higher_is_better(key: str) -> bool:
    return key.removeprefix("val_") not in RATING_METRICS and "loss" not in key


def is_rating_metric(key: str) -> bool:
    return key.removeprefix("val_") in RATING_METRICS


def is_ranking_metric(key: str) -> bool:
    return _KEY.match(key) is not None


def is_full_ranking(key: str) -> bool:
    m = _KEY.match(key)
    return bool(m and m.group(2))


def metric_label(key: str, negatives: int | None = 99, short: bool = False) -> str:
    """'hr@10' -> 'HR@10 (99 sampled negatives)'; 'full_ndcg@10' -> 'NDCG@10 (full ranking)'.

    `short` leaves out what is in brackets but keeps sampled and full apart ('NDCG@10 full')."""
    m = _KEY.match(key)
    if m is None:
        name = {"rmse": "RMSE", "mae": "MAE", "mse": "MSE", "train_loss": "training loss"}.get(
            key.removeprefix("val_"), key)
        return f"validation {name}" if key.startswith("val_") else name
    val, full, kind, k = m.groups()
    name = {"hr": "HR", "ndcg": "NDCG", "recall": "Recall"}[kind] + f"@{k}"
    if short:
        label = f"{name} full" if full else name
    elif full:
        label = f"{name} (full ranking)"
    else:
        label = f"{name} ({negatives} sampled negatives)" if negatives else f"{name} (sampled)"
    return f"validation {label}" if val else label


def metric_help(key: str, negatives: int | None = 99) -> str:
    """One line: what the number measures, and which way is better."""
    m = _KEY.match(key)
    base = key.removeprefix("val_")
    held = "validation" if key.startswith("val_") else "held-out test"
    if m is None:
        return {
            "rmse": f"Root mean squared error of the predicted stars on the {held} ratings. Lower is better.",
            "mae": f"Mean absolute error of the predicted stars on the {held} ratings. Lower is better.",
            "mse": f"Mean squared error of the predicted stars on the {held} ratings. Lower is better.",
        }.get(base, f"{key}.")
    _, full, kind, k = m.groups()
    pool = ("all the items the user has not interacted with" if full
            else f"the {held} item and {negatives or 'the'} sampled items the user never saw")
    what = {"hr": f"Share of users whose {held} item is in the top {k} of",
            "recall": f"Share of users whose {held} item is in the top {k} of",
            "ndcg": f"Like the hit rate, but a hit at rank 1 counts 1 and lower ranks less (1/log2(rank+1)), over the top {k} of"}[kind]
    return f"{what} {pool}. Higher is better."


def fmt(value, digits: int = 4) -> str:
    """A metric value for a table or tile; missing stays visibly missing ('–'), never 0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


SAMPLED_VS_FULL = (
    "Why the sampled hit rate is so much higher than the full-ranking recall: HR@10 ranks the held-out "
    "item against only {neg} random items the user never saw, most of them obscure, so a model that merely "
    "knows what is popular already puts it in the top 10 often. Recall@10 (full ranking) ranks it against "
    "every item the user has not seen (a thousand or more on MovieLens), so the top 10 is far harder to reach. "
    "Both are computed on the same held-out items; they answer different questions. For scale: random "
    "scores put the held-out item in the top 10 of all items about 10 times in (number of items), 0.006 "
    "on ML-100K; a trained model should be well above that (the MLP on ML-100K: about 0.10 against an HR@10 "
    "of 0.61). In a pre-trained NeuMF each stage's point is that stage's own model, the same numbers as "
    "training GMF or MLP alone with those settings.")
