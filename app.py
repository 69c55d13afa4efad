"""NCF Lab: the router and frame. Pages live in pages/, state and the sidebar in appstate.py."""

import streamlit as st

import appstate

st.set_page_config(page_title="NCF Lab", page_icon="🎬", layout="wide", initial_sidebar_state="expanded")
appstate.init()

pages = [
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("pages/model.py", title="Model", icon=":material/account_tree:"),
    st.Page("pages/train.py", title="Train", icon=":material/monitoring:"),
    st.Page("pages/recommend.py", title="Recommendations", icon=":material/recommend:"),
    st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
]
page = st.navigation(pages)
appstate.sidebar()
# Before the page runs: a page may st.stop() early, and the URL should still follow the settings.
appstate.sync_query_params()
page.run()
