"""NCF Lab: the router and frame. Pages live in app_pages/, what they share (settings, caches, widgets) in appstate/.

The folder is deliberately not called pages/: Streamlit treats a pages/ folder beside the entry
script as an old-style multipage app, and a browser reload of /train then ran pages/train.py on
its own (without this frame or its session state) before st.navigation took over."""


def main() -> None:
    import streamlit as st

    import appstate
    from app_pages import PAGES

    st.set_page_config(page_title="NCF Lab", page_icon="🎬", layout="wide", initial_sidebar_state="expanded")
    appstate.init()

    page = st.navigation(PAGES.all())
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
