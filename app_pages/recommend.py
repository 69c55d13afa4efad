"""Recommendations: one user's history beside what the model ranks highest; a new user; similar items."""

import numpy as np
import pandas as pd
import streamlit as st

import appstate
from app_pages import PAGES
from ncf import explore
from ncf.errors import NCFError

ss = st.session_state
st.header("Recommendations")
run = appstate.run_picker()
if run is None:
    st.stop()
if ss.pop("demo_done", False):
    st.success("The demo model is trained. Below: a user's history and what the model recommends; the map of "
               "what it learnt is on the Embeddings page.")
    st.page_link(PAGES.embeddings, label="See the embeddings", icon=":material/scatter_plot:")
if run.config.model.model == "pop":
    st.caption("This is the most-popular baseline: everyone gets the same list, minus what they have seen.")

users = run.users.to_list()
items = run.items.to_list()
titles = dict(zip(items, run.item_info["title"].astype(str), strict=False)) if (
    run.item_info is not None and "title" in run.item_info) else {}


def item_label(raw) -> str:
    title = titles.get(raw)
    return f"{title} (#{raw})" if title else f"item {raw}"


# Select boxes list every option in the browser: beyond this many, people type an id or search.
MAX_OPTIONS = 5000


def item_options(key: str, label: str) -> list:
    """All items for a small catalogue; else the matches of a title search (plus those already picked)."""
    if len(items) <= MAX_OPTIONS:
        return items
    query = st.text_input(label, key=f"{key}_query", placeholder="Type part of a title…")
    found = explore.search_titles(run, query, limit=50)["item"].tolist()
    picked = ss.get(key) or []
    picked = picked if isinstance(picked, list) else [picked]
    return list(dict.fromkeys([*picked, *found]))


implicit = run.config.model.resolved_objective == "implicit"
is_pop = run.config.model.model == "pop"


def readable(recs: pd.DataFrame) -> pd.DataFrame:
    """Ranks and a number a non-expert can read instead of the raw score: for a ranking model the
    logit turned into a probability (sigmoid), for a rating model the predicted stars."""
    out = recs.assign(rank=np.arange(1, len(recs) + 1))
    if is_pop:
        out = out.rename(columns={"score": "times chosen"})
    elif implicit:
        out = out.assign(chance=1.0 / (1.0 + np.exp(-out["score"].astype(float)))).drop(columns="score")
    else:
        out = out.rename(columns={"score": "predicted stars"})
    first = ["rank", "title", *[c for c in ("chance", "predicted stars", "times chosen", "held_out") if c in out]]
    return out[first + [c for c in out.columns if c not in first]]


COLUMNS = {
    "rank": st.column_config.NumberColumn("rank", width="small"),
    "title": st.column_config.TextColumn("title", width="medium"),
    "item": st.column_config.TextColumn("item id", width="small"),
    "chance": st.column_config.ProgressColumn(
        "probability", min_value=0.0, max_value=1.0, format="percent", width="small",
        help="The model's output squashed into 0-100% (a sigmoid of its score): how sure it is that this user "
             "would pick the item. Trained on 1 positive to 4 sampled negatives, so read it as an ordering, "
             "not a calibrated chance; the rank is what counts."),
    "predicted stars": st.column_config.NumberColumn(
        "predicted stars", format="%.2f", width="small",
        help="The rating the model predicts this user would give. Its output range ends a little above the top "
             "star (fastai's y_range), so that the top is reachable: above it reads as 'a sure top rating'."),
    "times chosen": st.column_config.NumberColumn("times chosen", format="%d", width="small",
                                                  help="How many training users interacted with the item."),
    "held_out": st.column_config.CheckboxColumn("held out?", width="small",
                                                help="The item hidden from training for testing: finding it "
                                                     "in the top 10 is a 'hit' (HR@10)."),
    "genres": st.column_config.TextColumn("genres", width="medium"),
}
tab_user, tab_new, tab_similar = st.tabs(["A user", "A new user", "Similar items"])

with tab_user:
    c1, c2 = st.columns([3, 1])
    if len(users) <= MAX_OPTIONS:
        if ss.get("rec_user") not in users:
            ss.rec_user = users[0]
        c1.selectbox("User id (type to search)", users, key="rec_user",
                     help="Users as they appear in the data. The model has never seen their held-out item.")
    else:
        if "rec_user" not in ss:
            ss.rec_user = str(users[0])
        c1.text_input(f"User id (for example {users[0]} … {users[-1]})", key="rec_user")
    k = c2.slider("How many", 5, 50, 10, key="rec_k")
    try:
        history = explore.user_history(run, ss.rec_user)
        recs = explore.recommend(run, ss.rec_user, k=k, exclude_seen=True)
    except NCFError as e:
        st.error(appstate.plain(e))
    else:
        left, right = st.columns([5, 6])
        n_held = int(history["held_out"].sum())
        left.markdown(f"**Their history**: {len(history) - n_held:,} training interactions"
                      + (f" + {n_held} held out for testing" if n_held else "") + ", newest first")
        left.dataframe(history, hide_index=True, width="stretch", height=420,
                       column_order=[c for c in ("title", "rating", "held_out", "timestamp", "genres", "item")
                                     if c in history], column_config=COLUMNS)
        if any(s.side == "context" for s in getattr(run.model, "feature_specs", ())):
            st.caption("This model also reads the time of an interaction: it recommends as at this user's last "
                       "training interaction (hour, weekday, and each film's age then).")
        hits = int(recs["held_out"].sum()) if "held_out" in recs else 0
        right.markdown(f"**Top {k} recommendations** (unseen items only)"
                       + (" · ✅ the held-out test item is among them" if hits else ""))
        right.dataframe(readable(recs), hide_index=True, width="stretch", height=420, column_config=COLUMNS)
        if not hits and n_held:
            right.caption(
                f"The held-out item is not in this top {k}, and usually it is not: here the model ranks it "
                f"among all {run.n_items:,} items the user has not seen, where it is one right answer among "
                "many good ones (this is the full-ranking Recall@10, about 0.1 on MovieLens). The sampled "
                "HR@10 ranks it against only 99 random items, which is why that figure is much higher.")

with tab_new:
    st.write("Rate a handful of movies as a new user: the model fits a fresh user vector to your ratings "
             "(the items stay frozen) and recommends at once. This is called *fold-in*.")
    if implicit and not is_pop:
        st.caption(f"This model learns from *whether* people watched, not how they rated: ratings of "
                   f"{explore.positive_threshold(run):g} stars and above count as 'watched and liked' (positives); "
                   "lower ratings are left out, and the fit contrasts your liked movies with random ones you did "
                   "not pick. (In training, every rating of any value counted as 'watched'.)")
    elif not is_pop:
        st.caption("This model predicts star ratings: your ratings are fitted as they are, low ones included.")
    # The search box finds titles by their words; the list offers only those matches (plus what is
    # already picked). Streamlit's fuzzy filter offered unrelated titles and a 'select all' entry.
    query = st.text_input("Search titles", key="fold_query", placeholder="Type part of a title, e.g. star wars")
    found = explore.search_titles(run, query, limit=30)["item"].tolist()
    options = list(dict.fromkeys([*(ss.get("fold_items") or []), *found]))
    picked = st.multiselect("Pick the movies you have seen", options, format_func=item_label, key="fold_items",
                            max_selections=20, placeholder="Choose from the matches above…",
                            filter_mode="contains", select_all=False)
    profile = {}
    if specs := explore.user_feature_specs(run):  # a run with side features: the user may say who they are
        with st.expander("About you (optional: this model also reads what it knows about users)", expanded=True):
            for col, spec in zip(st.columns(len(specs)), specs, strict=True):
                label = spec.name.removeprefix("extra:")
                profile[spec.name] = (col.number_input(label, value=None, step=1.0, format="%g",
                                                       key=f"fold_{spec.name}")
                                      if spec.kind == "numeric" else
                                      col.selectbox(label, ["", *spec.categories], key=f"fold_{spec.name}"))
        profile = {name: v for name, v in profile.items() if v not in (None, "")}
    if any(s.side == "context" for s in getattr(run.model, "feature_specs", ())):
        st.caption("This model also reads the time of an interaction (hour, weekday, years since release): a new "
                   "user is recommended at the latest time in its training data.")
    ratings = {}
    if picked:
        table = pd.DataFrame({"item": [str(i) for i in picked], "title": [titles.get(i, "") for i in picked],
                              "rating": [5.0] * len(picked)})
        edited = st.data_editor(table, hide_index=True, width="stretch", disabled=["item", "title"],
                                key="fold_ratings", column_config={
                                    "rating": st.column_config.NumberColumn("your rating", min_value=0.5,
                                                                            max_value=5.0, step=0.5)})
        ratings = {raw: float(r) for raw, r in zip(picked, edited["rating"], strict=True)}
    # With a profile and ratings, the three lists side by side show what each source of evidence adds.
    if ratings and profile:
        asks = {"From your profile alone": ({}, profile), "From your ratings alone": (ratings, {}),
                "From both": (ratings, profile)}
    else:  # one list, from whichever was given
        asks = {"From your ratings": (ratings, {})} if ratings else {"From your profile": ({}, profile)} if profile else {}
    lists = {}
    for title, (given, about) in asks.items():
        try:
            # The same person has seen what they rated: the profile's list leaves those out too.
            recs = explore.fold_in(run, given, k=10 + len(ratings), user_features=about)
            lists[title] = readable(recs[~recs["item"].isin(list(ratings))].head(10))
        except NCFError as e:
            st.error(f"{title}: {appstate.plain(e)}")
    if len(lists) == 1:
        recs = next(iter(lists.values()))
        st.markdown("**Recommended for you**" + (" from your profile alone (no ratings yet: a cold start)"
                                                   if not ratings else ""))
        st.dataframe(recs, hide_index=True, width="stretch", column_config=COLUMNS)
    elif lists:
        shared = set.intersection(*(set(r["item"]) for r in lists.values()))
        st.caption(f"The same person three ways: what the profile alone, the ratings alone and both together "
                   f"recommend. {len(shared)} of the {max(map(len, lists.values()))} are in all three lists. With ratings alone, the profile "
                   f"stays at the average trained user.")
        # Narrow columns: short headers, so the score is not cut off beside the title.
        compact = {**COLUMNS, "rank": st.column_config.NumberColumn("#", width=32),
                   "title": st.column_config.TextColumn("title", width=190),
                   "chance": st.column_config.ProgressColumn("prob.", min_value=0.0, max_value=1.0, format="percent",
                                                             width=64, help=COLUMNS["chance"].get("help")),
                   "predicted stars": st.column_config.NumberColumn("stars", format="%.2f", width=52,
                                                                    help=COLUMNS["predicted stars"].get("help"))}
        for col, (title, recs) in zip(st.columns(len(lists)), lists.items(), strict=True):
            col.markdown(f"**{title}**")
            col.dataframe(recs, hide_index=True, width="stretch", column_config=compact, height=388,
                          column_order=[c for c in ("rank", "title", "chance", "predicted stars") if c in recs])

with tab_similar:
    if not run.model.embedding_tables() and getattr(run.model, "item_similarity", lambda i: None)(0) is None:
        st.info("This model learns no item vectors or item-item weights (the most-popular baseline), so it "
                "cannot say which items are alike; pick a run of another model.")
        st.stop()
    options = item_options("sim_item", "Search titles")
    if not options:
        st.info("No title matches that search.")
        st.stop()
    if ss.get("sim_item") not in options:
        ss.sim_item = options[0]
    st.selectbox("Item (type to search)", options, format_func=item_label, key="sim_item")
    try:
        sims = explore.similar_items(run, ss.sim_item, k=10)
    except NCFError as e:
        st.error(appstate.plain(e))
    else:
        st.caption("Items whose learned embeddings point the same way (cosine similarity).")
        st.dataframe(sims, hide_index=True, width="stretch", column_config={
            "item": st.column_config.TextColumn("item"),
            "similarity": st.column_config.ProgressColumn("similarity", min_value=-1.0, max_value=1.0,
                                                          format="%.2f")})
