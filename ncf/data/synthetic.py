"""A built-in dataset with a known answer, generated offline in milliseconds.

Users and items are drawn from a few planted taste groups (genres). Each user mostly watches
and rates highly the items of their favourite genre, item popularity is long-tailed, and every
interaction has a timestamp. A model that learns anything should recommend in-genre and
separate the genres in its embeddings, which makes the data a good first lesson and a test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ncf.data.dataset import Dataset, Vocab
from ncf.errors import DataError

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Animation", "Documentary")

_WORDS = {
    "Action": (["Iron", "Crimson", "Final", "Rogue", "Steel", "Midnight"], ["Strike", "Heist", "Protocol", "Vendetta", "Run", "Siege"]),
    "Comedy": (["Totally", "Accidental", "Big", "Awkward", "Lucky", "Wild"], ["Weekend", "Wedding", "Roommates", "Vacation", "Road Trip", "Neighbours"]),
    "Drama": (["Quiet", "Broken", "Distant", "Last", "Silent", "Golden"], ["Letters", "Harvest", "Shore", "Years", "Promise", "River"]),
    "Horror": (["Hollow", "Dark", "Creeping", "Forgotten", "Bleeding", "Cursed"], ["Manor", "Woods", "Cellar", "Ritual", "Whispers", "Asylum"]),
    "Romance": (["Paris", "Summer", "Second", "Secret", "Sweet", "Starlit"], ["Kiss", "Affair", "Chances", "Serenade", "Hearts", "Letters"]),
    "Sci-Fi": (["Quantum", "Stellar", "Android", "Orbital", "Neon", "Void"], ["Frontier", "Paradox", "Colony", "Signal", "Horizon", "Drift"]),
    "Animation": (["Little", "Brave", "Magic", "Tiny", "Flying", "Jolly"], ["Dragon", "Robot", "Fox", "Kingdom", "Penguins", "Balloon"]),
    "Documentary": (["Inside", "Beyond", "Planet", "Hidden", "Real", "Untold"], ["Oceans", "Economy", "Bees", "Glaciers", "Chefs", "Machines"]),
}


def synthetic(
    n_users: int = 600,
    n_items: int = 400,
    n_genres: int = 6,
    mean_per_user: int = 40,
    in_genre: float = 0.85,
    seed: int = 0,
) -> Dataset:
    """Generates the planted-genre dataset. `in_genre` is the share of a user's interactions that
    fall in their favourite genre (before popularity reshapes it)."""
    if not 2 <= n_genres <= len(GENRES):
        raise DataError(f"Synthetic data has 2 to {len(GENRES)} genres, got {n_genres}.")
    if n_users < 2 or n_items < 2 * n_genres:
        raise DataError(f"Synthetic data needs at least 2 users and {2 * n_genres} items, got {n_users} and {n_items}.")
    if not 0 < in_genre <= 1:
        raise DataError(f"in_genre is a share between 0 and 1, got {in_genre}.")
    rng = np.random.default_rng(seed)

    item_genre = np.arange(n_items) % n_genres
    rng.shuffle(item_genre)
    user_genre = rng.integers(0, n_genres, n_users)
    # Long-tailed popularity: a Zipf-like weight over a random ranking of the items.
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    quality = rng.normal(0.0, 0.4, n_items)

    # Affinity of each user to each item: their favourite genre carries `in_genre` of the mass.
    match = user_genre[:, None] == item_genre[None, :]  # (n_users, n_items)
    genre_sizes = np.bincount(item_genre, minlength=n_genres)
    in_mass = in_genre / genre_sizes[user_genre][:, None]
    out_mass = (1 - in_genre) / (n_items - genre_sizes[user_genre])[:, None]
    weight = np.where(match, in_mass, out_mass) * (popularity / popularity.mean())[None, :]

    per_user = np.clip(rng.lognormal(np.log(mean_per_user), 0.5, n_users).astype(np.int64), 10, n_items // 2)
    # Sampling without replacement, all users at once: the Gumbel top-k trick.
    keys = np.log(weight) + rng.gumbel(size=weight.shape)
    ranked = np.argsort(-keys, axis=1)
    taken = np.arange(n_items)[None, :] < per_user[:, None]
    users = np.broadcast_to(np.arange(n_users)[:, None], ranked.shape)[taken]
    items = ranked[taken]

    user_bias = rng.normal(0.0, 0.3, n_users)
    in_taste = user_genre[users] == item_genre[items]
    score = 3.0 + np.where(in_taste, 1.1, -0.6) + quality[items] + user_bias[users] + rng.normal(0, 0.5, len(users))
    ratings = np.clip(np.rint(score), 1, 5).astype(np.float32)
    start = 1_577_836_800  # 2020-01-01
    timestamps = start + rng.integers(0, 365 * 86_400, len(users))

    names = GENRES[:n_genres]
    titles = _titles(item_genre, names, rng)
    item_info = pd.DataFrame({"title": titles, "genres": [names[g] for g in item_genre]})
    user_info = pd.DataFrame({"favourite_genre": [names[g] for g in user_genre]})
    return Dataset(
        name="synthetic",
        user=users.astype(np.int64),
        item=items.astype(np.int64),
        rating=ratings,
        timestamp=timestamps.astype(np.int64),
        users=Vocab(np.arange(1, n_users + 1), "user"),
        items=Vocab(np.arange(1, n_items + 1), "item"),
        item_info=item_info,
        user_info=user_info,
        source="synthetic",
    )


def _titles(item_genre: np.ndarray, names: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    """Readable, unique titles such as 'Crimson Heist (1994)' that hint at their genre."""
    titles, used = [], set()
    years = rng.integers(1960, 2024, len(item_genre))
    for i, g in enumerate(item_genre):  # a few hundred titles, not interactions: a loop is fine
        first, second = _WORDS[names[g]]
        title = f"{first[rng.integers(len(first))]} {second[rng.integers(len(second))]}"
        base, n = title, 2
        while title in used:
            title = f"{base} {n}"
            n += 1
        used.add(title)
        titles.append(f"{title} ({years[i]})")
    return titles


# MovieLens releases' shapes (users, items, ratings), for benchmarks at their scale.
SHAPES = {
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-20m": (138_493, 26_744, 20_000_263),
    "ml-25m": (162_541, 59_047, 25_000_095),
    "ml-32m": (200_948, 84_432, 32_000_204),
}


def shaped(n_users: int, n_items: int, n_interactions: int, seed: int = 0, min_per_user: int = 20,
           device: str = "cpu") -> Dataset:
    """Random interactions with a release's shape: users' activity log-normal (at least `min_per_user`,
    as MovieLens keeps), items' popularity Zipf-like, half-star ratings from 0.5 to 5, timestamps over
    a year. No planted structure: for measuring time and memory, not quality. Drawn with torch (on
    `device`, a GPU where there is one) in memory linear in the interactions, so ML-32M's shape takes
    seconds; a user's repeated draws are redrawn until the count is reached or nearly."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    activity = torch.empty(n_users, dtype=torch.float64, device=device).log_normal_(0.0, 1.0, generator=g)
    spare = n_interactions - min_per_user * n_users
    per_user = (min_per_user + torch.floor(activity / activity.sum() * spare)).long()
    per_user[: n_interactions - int(per_user.sum())] += 1  # the rounding remainder, one each
    per_user = per_user.clamp_(max=n_items // 2)
    users = torch.repeat_interleave(torch.arange(n_users, device=device), per_user)
    rank = torch.randperm(n_items, generator=g, device=device).double()
    cdf = torch.cumsum(1.0 / (1.0 + rank) ** 0.9, 0)
    keys = torch.empty(0, dtype=torch.long, device=device)
    want = users
    for _ in range(4):
        u = torch.rand(len(want), generator=g, device=device, dtype=torch.float64) * cdf[-1]
        items = torch.searchsorted(cdf, u).clamp_(max=n_items - 1)
        keys = torch.unique(torch.cat([keys, want * n_items + items]))
        counts = torch.bincount(keys // n_items, minlength=n_users)
        want = torch.repeat_interleave(torch.arange(n_users, device=device), (per_user - counts).clamp_(min=0))
        if len(want) == 0:
            break
    users, items = (keys // n_items).cpu().numpy(), (keys % n_items).cpu().numpy()
    rng = np.random.default_rng(seed)
    ratings = (rng.integers(1, 11, len(users)) / 2).astype(np.float32)
    timestamps = 1_577_836_800 + rng.integers(0, 365 * 86_400, len(users))
    return Dataset(name=f"shaped-{n_users}x{n_items}", user=users, item=items, rating=ratings,
                   timestamp=timestamps.astype(np.int64), users=Vocab(np.arange(1, n_users + 1), "user"),
                   items=Vocab(np.arange(1, n_items + 1), "item"), source="shaped")
