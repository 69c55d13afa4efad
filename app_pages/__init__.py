"""The app's pages, defined once: `PAGES.train` is the Train page as an `st.Page`, for
`st.navigation` (app.py), `st.page_link(PAGES.train)` and `st.switch_page(PAGES.train)`.

Each file in this folder is one page, run by Streamlit as a script (layout and widget wiring only).
The folder is not called `pages/`: see app.py.

An `st.Page` is made afresh each time one is asked for, inside the script run that uses it:
`st.navigation` marks the page it returns as runnable once, so one object shared by every
session's thread would let two sessions' runs trip over each other. A page is known by its
url path, so a fresh object links to the same page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class _Page:
    """One entry of the navigation; read through an instance of `Pages`, it is an `st.Page`."""

    file: str
    title: str
    icon: str
    default: bool = False

    def __get__(self, obj, owner=None) -> st.Page:
        return st.Page(FOLDER / self.file, title=self.title, icon=self.icon, default=self.default)


class Pages:
    """The pages in navigation order."""

    start = _Page("start.py", "Start", ":material/home:", default=True)
    data = _Page("data.py", "Data", ":material/table_chart:")
    model = _Page("model.py", "Model", ":material/account_tree:")
    train = _Page("train.py", "Train", ":material/monitoring:")
    recommend = _Page("recommend.py", "Recommendations", ":material/recommend:")
    embeddings = _Page("embeddings.py", "Embeddings", ":material/scatter_plot:")
    compare = _Page("compare.py", "Compare runs", ":material/compare_arrows:")
    experiments = _Page("experiments.py", "Experiments", ":material/science:")
    search = _Page("search.py", "Search", ":material/travel_explore:")

    def all(self) -> list[st.Page]:
        return [getattr(self, name) for name, entry in vars(Pages).items() if isinstance(entry, _Page)]


PAGES = Pages()
