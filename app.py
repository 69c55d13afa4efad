"""NCF Lab: the router and frame. Pages live in app_pages/, state and the sidebar in appstate.py.

The folder is deliberately not called pages/: Streamlit treats a pages/ folder beside the entry
script as an old-style multipage app, and a browser reload of /train then ran pages/train.py on
its own (without this frame or its session state) before st.navigation took over."""

import streamlit as st

import appstate

st.set_page_config(page_title="NCF Lab", page_icon="🎬", layout="wide", initial_sidebar_state="expanded")
appstate.init()

pages = [
    st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("app_pages/model.py", title="Model", icon=":material/account_tree:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/monitoring:"),
    st.Page("app_pages/recommend.py", title="Recommendations", icon=":material/recommend:"),
    st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("app_pages/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
]
page = st.navigation(pages)
appstate.sidebar()
# Before the page runs: a page may st.stop() early, and the URL should still follow the settings.
appstate.sync_query_params()
page.run()
