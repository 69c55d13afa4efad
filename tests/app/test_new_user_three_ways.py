"""The Recommendations page's new-user tab on a run with side features: a profile alone gives one list,
a profile and ratings give three side by side (profile alone, ratings alone, both)."""

from __future__ import annotations

import re

from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.data import load, make_split
from ncf.runs import save_run
from ncf.train import train
from tests.data.conftest import write_ml100k


def test_a_profile_gives_one_list_and_a_profile_with_ratings_three(page, tmp_path):
    folder = write_ml100k(tmp_path)
    split = make_split(load(str(folder)), "ratio", seed=0, test_fraction=0.3)
    cfg = RunConfig(data=DataConfig(source=str(folder), split="ratio"),
                    model=ModelConfig(model="embnn", features=("all",), layers=(8,)),
                    train=TrainConfig(epochs=1, batch_size=4, device="cpu"))
    save_run(train(cfg, split), cfg, split)
    at = page("app_pages/recommend.py")
    assert not at.exception
    assert any("latest time in its training data" in c.value for c in at.caption)
    at.selectbox(key="fold_occupation").set_value("writer").run()
    titles = [m.value for m in at.markdown]
    assert any("from your profile alone" in t for t in titles) and not any("From both" in t for t in titles)
    at.text_input(key="fold_query").set_value("Heat").run()
    at.multiselect(key="fold_items").set_value([5]).run()
    assert not at.exception and not at.error
    titles = [m.value for m in at.markdown]
    for title in ("From your profile alone", "From your ratings alone", "From both"):
        assert f"**{title}**" in titles
    # 5 items, 1 rated: every list leaves the rated one out, the profile's too (the same person saw it)
    assert any(re.search(r"\d of the 4 are in all three lists", c.value) for c in at.caption)
    lists = [df.value for df in at.dataframe if "rank" in df.value.columns][-3:]
    assert len(lists) == 3 and all(5 not in df["item"].tolist() and len(df) == 4 for df in lists)
