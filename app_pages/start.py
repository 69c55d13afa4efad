"""Start: what the lab is, the three steps, and a one-click demo that ends on recommendations."""

import time

import streamlit as st

import appstate
from app_pages import PAGES
from ncf.errors import NCFError

ss = st.session_state
DEMO_SOURCE = "ml-100k"  # real films when a MovieLens release is on this server, else the synthetic set

st.title("NCF Lab")  # no emoji: a browser without an emoji font drew a blank box
st.markdown(
    "A lab for **Neural Collaborative Filtering** (He et al., 2017): recommend films from what people "
    "watched. Train the paper's models (GMF, MLP, NeuMF) and their baselines on MovieLens or your own "
    "ratings, watch them learn, and look inside: each user's recommendations and a map of the items' embeddings.")

c = st.columns(3)
c[0].markdown("**1. Data**  \nPick MovieLens, the built-in synthetic set or upload a ratings file; choose "
              "how test items are held out.")
c[1].markdown("**2. Model**  \nChoose an architecture and its sizes; the page draws the network and says "
              "how it will be trained.")
c[2].markdown("**3. Train and explore**  \nTrain it live, then see recommendations, embeddings, and compare "
              "runs with the rest of the class.")

demo_source = DEMO_SOURCE if appstate.is_available(DEMO_SOURCE) else "synthetic"
what = "MovieLens 100K (real films)" if demo_source != "synthetic" else "the synthetic data (invented titles)"
st.divider()
st.subheader("Try it in one click")
st.write(f"Trains the default model (NeuMF) on {what} with the default settings, then opens its "
         "recommendations.")
if st.button("Run the demo", type="primary", icon=":material/play_arrow:"):
    defaults = {k: v for k, v in appstate.SETTINGS.items() if k != "source"}
    ss.update(defaults, source=demo_source)
    try:
        runner = appstate.runner()
        cfg = appstate.run_config(name=f"demo-{demo_source}")
        job_id = runner.submit(cfg, owner=appstate.owner(), name=cfg.name)
    except NCFError as e:
        st.error(appstate.plain(e))
        st.stop()
    ss.job_ids = [*ss.job_ids, job_id]
    bar = st.progress(0.0, text="Waiting for a worker…")
    while not (status := runner.status(job_id, events=False)).finished_state:
        progress = status.progress  # from the newest event alone: the job's word, or where training stands
        if progress.training:
            bar.progress(progress.fraction, text=f"Training NeuMF on {what}…")
        elif progress.message:  # e.g. "Loading ml-100k: parsing"
            bar.progress(0.0, text=appstate.plain(f"{progress.message}…"))
        time.sleep(0.5)
    if status.state != "done" or not status.run_id:
        st.error(appstate.plain(f"The demo did not finish ({status.state}): {status.error or 'no run saved'}."))
        st.stop()
    ss.run_id = status.run_id
    ss.demo_done = True
    st.switch_page(PAGES.recommend)

st.caption("Or go step by step:")
st.page_link(PAGES.data, label="Start with the data", icon=":material/arrow_forward:")
