"""Data: choose the interactions (synthetic, MovieLens, or your own file), look at them, set the split."""

import streamlit as st

import appstate
from app_pages import PAGES
from ncf import aggregates, plots
from ncf.data.features import describe_available
from ncf.errors import NCFError

st.header("Data")
st.caption("Collaborative filtering learns only from *who interacted with what*: a table of "
           "(user, item[, rating, time]). Start with the built-in synthetic data, or bring your own.")

ss = st.session_state
MODES = ("Synthetic (built in)", "MovieLens", "Upload a file")


def _mode_of(source: str) -> str:
    return MODES[2] if source.startswith(appstate.UPLOAD_PREFIX) else (MODES[0] if source == "synthetic" else MODES[1])


# The control follows the source when the source changed elsewhere (a share link, a run), and
# otherwise keeps the user's choice (one may look at MovieLens while the synthetic data is loaded).
if "data_mode" not in ss or ss.get("_mode_source") != ss.source:
    ss.data_mode = _mode_of(ss.source)
    ss._mode_source = ss.source
# required: clicking the chosen option again used to clear it, and no choice fell through to the
# upload box (issue point 8). A session that still sends no choice gets its source's mode.
mode = st.segmented_control("Source", MODES, key="data_mode", required=True,
                            help="Where the interactions come from.") or _mode_of(ss.source)


def _named(filename: str, error: Exception) -> str:
    """The core's message, prefixed with the file name unless it already says it."""
    text = str(error)
    return appstate.plain(text if filename in text else f"{filename}: {text}")


def use_source(source: str) -> None:
    ss.source = source
    ss.run_id = None  # a run belongs to its dataset


if mode == MODES[0]:
    st.write("600 users and 400 items drawn from six planted taste groups (genres), with a long tail of "
             "popularity, 1–5 ratings and timestamps. Generated offline in milliseconds; a model that "
             "learns anything puts each user's own genre on top and separates the genres in its embeddings.")
    if ss.source != "synthetic":
        st.button("Use the synthetic data", type="primary", on_click=use_source, args=("synthetic",))

elif mode == MODES[1]:
    from ncf.data import RELEASES, load, release_status

    rows = []
    for name in RELEASES:
        s = release_status(name)
        rows.append({"release": name, "size (MB)": round(s["size_bytes"] / 1e6, 1),
                     "on this machine": "yes" if (s["cached"] or s["local"]) else "no",
                     "description": s["description"]})
    st.dataframe(rows, hide_index=True, width="stretch")
    names = list(RELEASES)
    current = ss.source if ss.source in names else names[0]
    choice = st.selectbox("Release", names, index=names.index(current),
                          help="GroupLens' MovieLens releases; the first use downloads and checks the file.")
    status = release_status(choice)
    ready = status["cached"] or status["local"]
    label = f"Use {choice}" if ready else f"Download {choice} ({status['size_bytes'] / 1e6:.0f} MB) and use it"
    if st.button(label, type="primary", disabled=ss.source == choice):
        bar = st.progress(0.0, text=f"Fetching {choice}…")

        def progress(done: int, total: int | None) -> None:
            frac = done / total if total else 0.0
            bar.progress(min(1.0, frac), text=f"Downloading {choice}: {done / 1e6:.1f} MB"
                         + (f" of {total / 1e6:.1f} MB" if total else ""))

        try:
            load(choice, progress=progress)  # fills the on-disk cache; the app's cache parses it once
            appstate.load_dataset(choice)
        except NCFError as e:
            st.error(appstate.plain(f"Could not load {choice}: {e}"))
        else:
            use_source(choice)
            st.rerun()

else:
    from ncf.data import detect_columns
    from ncf.data.extra import KINDS, keep_file, kept_path, read_feature_file

    uploaded = st.file_uploader(
        "Drop a ratings file", type=["csv", "tsv", "dat", "txt", "data", "rating", "zip"],
        help="One interaction per row: a user id, an item id, and optionally a rating and a timestamp. "
             "CSV/TSV/'::'-separated, with or without a header, or a zip of such files (MovieLens layout).")
    if uploaded is not None:
        data = uploaded.getvalue()
        try:
            guess = detect_columns(uploaded.name, data)
        except NCFError as e:
            st.error(_named(uploaded.name, e))
            st.info("The previously loaded dataset is still in use.")
        else:
            st.write(f"Detected: delimiter `{guess.delimiter!r}`, "
                     f"{'a header row' if guess.header else 'no header'}, {guess.encoding}. First rows:")
            st.dataframe(guess.preview.head(8), hide_index=True, width="stretch")
            st.caption("Check the column roles; correct them if the guess is wrong.")
            cols = st.columns(4)
            options = list(guess.columns)
            columns = {}
            for col, role, optional in zip(cols, ("user", "item", "rating", "timestamp"),
                                           (False, False, True, True), strict=True):
                choices = (["(none)"] if optional else []) + options
                guessed = guess.roles.get(role)
                idx = choices.index(guessed) if guessed in choices else 0
                picked = col.selectbox(role, choices, index=idx, key=f"role_{role}")
                if picked != "(none)":
                    columns[role] = picked
            try:  # the other columns, for the roles as chosen: side features, kind guessed, correctable
                extras = detect_columns(uploaded.name, data, columns).extras
            except NCFError:  # roles that do not fit: loading says why
                extras = {}
            if extras:
                st.caption("Other columns are side features for EmbeddingNN: one that is the same in every row of "
                           "a user becomes a user feature, of an item an item feature; one that changes with the "
                           "interaction is left out. Check each kind.")
                kcols = st.columns(min(4, len(extras)))
                columns["features"] = {name: kcols[j % len(kcols)].selectbox(
                    name, KINDS, index=KINDS.index(kind), key=f"kind_{name}",
                    help="categorical: each value its own embedding (unseen values: an unknown bucket); numeric: "
                         "a number, normalised; ignore: not used") for j, (name, kind) in enumerate(extras.items())}
            base_key = appstate.upload_key(uploaded.name, data, columns)
            join = ss.setdefault("upload_join", {}).get(base_key)
            full = {**columns, "join": join} if join else columns
            if ss.source == appstate.upload_key(uploaded.name, data, full):
                st.success(f"{appstate.plain(uploaded.name)} is the current dataset.", icon=":material/check:")
                extra_file = st.file_uploader("Optional: a features file joined by user or item id", key="features_file",
                                              type=["csv", "tsv", "txt", "dat"],
                                              help="A table with a header: an id column (user or item) and attribute "
                                                   "columns, one row per user or item.")
                found = None
                if extra_file is not None:
                    try:
                        found = read_feature_file(appstate.current_dataset(), extra_file.name, extra_file.getvalue())
                    except NCFError as e:
                        st.error(_named(extra_file.name, e))
                if found is not None and join and join["path"] == str(kept_path(extra_file.name, extra_file.getvalue())):
                    st.success(f"{appstate.plain(extra_file.name)} is joined: its {found.side} features are listed "
                               "below.", icon=":material/check:")
                elif found is not None:
                    st.write(f"Joins the **{found.side}s** by column `{appstate.plain(found.id_column)}`: "
                             f"{found.matched:,} of {found.total:,} found" + (
                                 f"; {found.unknown:,} rows with ids the ratings do not have are skipped"
                                 if found.unknown else "") + ".")
                    st.dataframe(found.preview, hide_index=True, width="stretch")
                    jcols = st.columns(min(4, len(found.kinds)))
                    kinds = {name: jcols[j % len(jcols)].selectbox(name, KINDS, index=KINDS.index(kind), key=f"jkind_{name}")
                             for j, (name, kind) in enumerate(found.kinds.items())}
                    if st.button("Join these features", type="primary"):
                        spec = {"path": str(keep_file(extra_file.name, extra_file.getvalue())), "kinds": kinds,
                                "side": found.side}
                        try:
                            key = appstate.open_upload(uploaded.name, data, {**columns, "join": spec})
                        except NCFError as e:
                            st.error(_named(extra_file.name, e))
                        else:
                            ss.upload_join[base_key] = spec
                            use_source(key)
                            st.rerun()
            elif st.button("Load this file", type="primary"):
                try:
                    key = appstate.open_upload(uploaded.name, data, full)
                except NCFError as e:
                    st.error(_named(uploaded.name, e))
                    st.info("The previously loaded dataset is still in use.")
                else:
                    use_source(key)
                    st.rerun()

# ---------------------------------------------------------------- what is loaded
st.divider()
try:
    ds = appstate.current_dataset()
except NCFError as e:
    st.error(appstate.plain(e))
    st.stop()
if ds is None:
    st.info(f"{ss.source} is not on this machine yet: download it above, or use the synthetic data.")
    st.stop()

st.subheader(f"Loaded: {appstate.plain(ds.name)}")
c = st.columns(5)
c[0].metric("Users", f"{ds.n_users:,}")
c[1].metric("Items", f"{ds.n_items:,}")
c[2].metric("Interactions", f"{ds.n_interactions:,}")
c[3].metric("Density", f"{ds.density:.2%}", help="Share of all user–item pairs that were observed: "
            "recommendation data is mostly empty.")
c[4].metric("Feedback", "implicit" if ds.implicit else "{:g}–{:g} stars".format(*ds.rating_scale),
            help="Explicit ratings can be predicted (RMSE) or turned into 'interacted' (implicit, as in NCF).")
if ds.dropped:
    st.caption(appstate.plain("Dropped while reading: " + ", ".join(f"{n:,} rows ({why})" for why, n in ds.dropped.items())))

for note in ds.notes:
    st.caption(appstate.plain(note))
features = describe_available(ds)
if features:
    with st.expander(f"Side features: {len(features)}, for EmbeddingNN"):
        st.dataframe(features, hide_index=True, width="stretch")
        st.caption("Train with them from the command line: `python -m ncf train --model embnn --features all` "
                   "(or a comma list of these names); the Recommendations page then takes a new user's own "
                   "attributes.")

g = st.columns(3)
summary = aggregates.summarize(ds)  # counts of bounded size, once per parsed dataset: never every rating
g[0].plotly_chart(plots.rating_histogram(summary), width="stretch")
g[1].plotly_chart(plots.long_tail(summary), width="stretch")
g[2].plotly_chart(plots.per_user_histogram(summary), width="stretch")

# ---------------------------------------------------------------- the split
st.subheader("How the model will be tested")
kinds = ["leave_one_out", "ratio"] + (["published"] if ds.published_test is not None else [])
if ss.split not in kinds:
    ss.split = "leave_one_out"
labels = {"leave_one_out": "Leave one out (NCF paper)", "ratio": "Random share of ratings (fastai)",
          "published": "Published split"}
s = st.columns([2, 1, 1])
s[0].radio("Split", kinds, key="split", persist_state="session", format_func=labels.get, horizontal=True,
           help="Leave-one-out hides each user's latest interaction and asks the model to rank it among "
                "items the user never saw (HR@10, NDCG@10). A ratio split hides a random share of ratings "
                "and measures rating error (RMSE).")
if ss.split == "leave_one_out":
    s[1].number_input("Negatives per test user", min_value=1, max_value=999, step=1, key="test_negatives", persist_state="session",
                      help="The held-out item is ranked against this many unseen items (the paper uses 99).")
elif ss.split == "ratio":
    s[1].slider("Test share", 0.05, 0.5, step=0.05, key="test_fraction", persist_state="session")
s[2].number_input("Split seed", min_value=0, step=1, key="data_seed", persist_state="session", help="Same seed, same split.")
if ss.split == "leave_one_out":
    st.checkbox("Hold out a validation item too, and keep the best epoch", key="validation", persist_state="session",
                help="Each user's second-latest interaction is held out like the test item. Training keeps the "
                     "epoch that ranks these best (early stopping without peeking at the test items). The "
                     "price: one fewer, and the most telling, interaction per user to learn from.")
try:
    split = appstate.current_split()
except NCFError as e:
    st.error(appstate.plain(e))
else:
    valid = f", {len(split.valid_user):,} validation" if split.has_validation else ""
    st.info(f"{split.describe()} → {split.n_train:,} training{valid} and {len(split.test_user):,} test interactions.")
    st.page_link(PAGES.model, label="Next: choose a model", icon=":material/arrow_forward:")
