"""Embeddings: the learned user/item vectors squeezed to their first principal components."""

import streamlit as st

import appstate
from ncf import explore, plots
from ncf.errors import NCFError

st.header("Embeddings")
st.caption("Every user and item is a vector of numbers the model learned. PCA turns the vectors to the "
           "few directions along which they differ most; items close together here are treated alike.")
run = appstate.run_picker()
if run is None:
    st.stop()
tables = run.model.embedding_tables()
if not tables:
    st.info("This model learns no embeddings (the most-popular baseline); pick another run.")
    st.stop()


@st.cache_resource(max_entries=16, show_spinner="Computing the projection…")
def projection(run_id: str, kind: str, which: str | None, n: int):
    return explore.project(appstate.load_run(run_id), kind=kind, which=which, n=n)


c = st.columns([1, 1, 1, 1.4])
kind = c[0].segmented_control("Show", ["item", "user"], default="item", key="emb_kind", required=True)
which = None
if len(tables) > 1:
    names = list(tables)
    which = c[1].segmented_control("Table", names, default=names[0], key="emb_table", required=True,
                                   help="NeuMF keeps separate embeddings for its GMF and MLP paths.")
dims = c[2].segmented_control("Dimensions", [2, 3], default=2, key="emb_dims", required=True,
                              format_func=lambda d: f"{d}D")
colours = {"genres": "genre", "popularity": "popularity", "mean_rating": "mean rating"}
colour = c[3].segmented_control("Colour by", list(colours), default="genres", format_func=colours.get,
                                key="emb_colour", required=True)

table = tables[which] if which else next(iter(tables.values()))
dim = table[0].embedding_dim
try:
    proj = projection(run.id, kind, which, min(8, dim))
except NCFError as e:
    st.error(appstate.plain(e))
    st.stop()
coords = proj.coords
if dims == 3 and "pc3" not in coords:
    st.info("These embeddings have fewer than three dimensions; showing 2D.")
    dims = 2

focus = None
h = st.columns([1, 2])
if colour == "genres" and "genres" in coords:
    # Split each distinct genre list once: 84,000 items share a few hundred (0.2 s a rerun otherwise).
    genres = sorted({g for gs in coords["genres"].dropna().astype(str).unique() for g in gs.split("|") if g})
    PRIMARY = "each item's primary genre"
    pick = h[0].selectbox("Genre colours", [PRIMARY, *genres], key="emb_focus",
                          help="The primary (first-listed) genre, the nine most common in colour and the rest "
                               "grey; or one genre against all the others.")
    focus = None if pick == PRIMARY else pick
query = h[1].text_input("Highlight titles containing", key="emb_search", placeholder="e.g. Star Wars",
                        disabled="title" not in coords)
highlight = []
if query and "title" in coords:
    mask = coords["title"].astype(str).str.contains(query, case=False, regex=False)
    highlight = list(mask.to_numpy().nonzero()[0][:50])
    st.caption(f"{int(mask.sum())} match(es), drawn as red stars" + (", the first 12 labelled" if mask.sum() > 12
                                                                      else " and labelled")
               + (" (showing the first 50)" if mask.sum() > 50 else ""))

st.plotly_chart(plots.pca_scatter(coords, colour, dims=dims, highlight=highlight, kind=kind, focus=focus),
                width="stretch", key="pca")
st.plotly_chart(plots.explained_variance(proj.explained_variance_ratio), width="stretch")
st.caption("How much of the spread of the vectors each principal component captures: a big first "
           "bar means one direction (often popularity) dominates.")
