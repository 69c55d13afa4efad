"""Recommendations: one user's history beside what the model ranks highest; a new user; similar items."""

import pandas as pd
import streamlit as st

import appstate
from ncf import explore
from ncf.errors import NCFError

ss = st.session_state
st.header("Recommendations")
run = appstate.run_picker()
if run is None:
    st.stop()
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


SCORE = st.column_config.NumberColumn("score", format="%.3f",
                                      help="The model's output: a logit (implicit) or a predicted rating.")
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
        left, right = st.columns(2)
        left.markdown(f"**Their history** ({len(history):,} training interactions, newest first)")
        left.dataframe(history, hide_index=True, width="stretch", height=420,
                       column_config={"item": st.column_config.TextColumn("item")})
        hits = int(recs["held_out"].sum()) if "held_out" in recs else 0
        right.markdown(f"**Top {k} recommendations** (unseen items only)"
                       + (" · ✅ the held-out test item is among them" if hits else ""))
        right.dataframe(recs, hide_index=True, width="stretch", height=420, column_config={
            "item": st.column_config.TextColumn("item"),
            "score": SCORE,
            "held_out": st.column_config.CheckboxColumn("held out?", help="The item hidden from training "
                                                        "for testing: finding it is a 'hit' (HR@10)."),
        })

with tab_new:
    st.write("Rate a handful of movies as a new user: the model fits a fresh user vector to your ratings "
             "(the items stay frozen) and recommends at once. This is called *fold-in*.")
    options = item_options("fold_items", "Search titles")
    picked = st.multiselect("Find items by title", options, format_func=item_label, key="fold_items",
                            max_selections=20, placeholder="Type part of a title…")
    if picked:
        table = pd.DataFrame({"item": [str(i) for i in picked], "title": [titles.get(i, "") for i in picked],
                              "rating": [5.0] * len(picked)})
        edited = st.data_editor(table, hide_index=True, width="stretch", disabled=["item", "title"],
                                key="fold_ratings", column_config={
                                    "rating": st.column_config.NumberColumn("your rating", min_value=0.5,
                                                                            max_value=5.0, step=0.5)})
        ratings = {raw: float(r) for raw, r in zip(picked, edited["rating"], strict=True)}
        try:
            recs = explore.fold_in(run, ratings, k=10)
        except NCFError as e:
            st.error(appstate.plain(e))
        else:
            st.markdown("**Recommended for you**")
            st.dataframe(recs, hide_index=True, width="stretch",
                         column_config={"item": st.column_config.TextColumn("item"), "score": SCORE})

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
