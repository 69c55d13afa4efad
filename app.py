"""NCF Lab: the router and frame. Pages live in app_pages/, state and the sidebar in appstate.py.

The folder is deliberately not called pages/: Streamlit treats a pages/ folder beside the entry
script as an old-style multipage app, and a browser reload of /train then ran pages/train.py on
its own (without this frame or its session state) before st.navigation took over."""


def main() -> None:
    import streamlit as st

    import appstate

    st.set_page_config(page_title="NCF Lab", page_icon="🎬", layout="wide", initial_sidebar_state="expanded")
    appstate.init()

    pages = [
        st.Page("app_pages/start.py", title="Start", icon=":material/home:", default=True),
        st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:"),
        st.Page("app_pages/model.py", title="Model", icon=":material/account_tree:"),
        st.Page("app_pages/train.py", title="Train", icon=":material/monitoring:"),
        st.Page("app_pages/recommend.py", title="Recommendations", icon=":material/recommend:"),
        st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page("app_pages/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
        st.Page("app_pages/experiments.py", title="Experiments", icon=":material/science:"),
        st.Page("app_pages/search.py", title="Search", icon=":material/travel_explore:"),
    ]
    page = st.navigation(pages)
    appstate.sidebar()
    # Before the page runs: a page may st.stop() early, and the URL should still follow the settings.
    appstate.sync_query_params()
    page.run()


# Streamlit runs this file as "__main__". A training worker (a process spawned by ncf.jobs) re-imports
# its parent's main module as "__mp_main__" (multiprocessing's spawn start method), and Streamlit has
# made this file that module: without the guard every new worker ran the whole app once, headless,
# before its first job (seconds of CPU and a copy of the app's memory per worker).
if __name__ == "__main__":
    main()
