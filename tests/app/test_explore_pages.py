"""Recommendations, Embeddings and Compare on a real saved run."""

from __future__ import annotations

from tests.app.conftest import train_and_save


def test_pages_ask_for_a_run_when_there_is_none(page):
    for path in ("app_pages/recommend.py", "app_pages/embeddings.py", "app_pages/compare.py"):
        at = page(path)
        assert not at.exception
        assert "No saved runs yet" in at.info[0].value


def test_a_users_history_sits_beside_their_recommendations(page, saved_run):
    at = page("app_pages/recommend.py")
    assert not at.exception and not at.error
    history, recs = at.dataframe[0].value, at.dataframe[1].value
    user = at.selectbox(key="rec_user").value
    assert set(history["item"]).isdisjoint(set(recs["item"]))  # seen items are never recommended
    assert len(recs) == 10 and {"rank", "title", "chance", "held_out"} <= set(recs.columns)  # no raw logit
    assert recs["chance"].between(0, 1).all() and list(recs["rank"]) == list(range(1, 11))
    n_held = int(history["held_out"].sum())
    assert f"{len(history) - n_held:,} training interactions + {n_held} held out" in at.markdown[0].value
    assert user == saved_run.users.to_list()[0]
    at.slider(key="rec_k").set_value(20).run()
    assert len(at.dataframe[1].value) == 20
    other = saved_run.users.to_list()[5]
    at.selectbox(key="rec_user").set_value(other).run()
    assert not at.dataframe[0].value.equals(history)


def test_a_new_user_gets_recommendations_from_a_few_ratings(page, saved_run):
    at = page("app_pages/recommend.py")
    title = str(saved_run.item_info["title"].iloc[0])
    word = title.split()[0]
    at.text_input(key="fold_query").set_value(word).run()
    ms = at.multiselect(key="fold_items")
    labels = [str(o) for o in ms.options]
    assert labels and all(word.lower() in o.lower() for o in labels)  # only real matches, no fuzzy extras
    assert not any(o.lower().startswith("select") for o in labels)
    assert any("watched and liked" in c.value for c in at.caption)  # how stars feed an implicit model
    items = [saved_run.items.to_list()[i] for i in range(len(saved_run.items.to_list()))
             if word.lower() in str(saved_run.item_info["title"].iloc[i]).lower()][:3]
    ms.set_value(items).run()
    assert not at.exception and not at.error
    recs = at.dataframe[-1].value
    assert len(recs) == 10 and not set(recs["item"]) & set(items)


def test_similar_items_are_ranked_by_similarity(page, saved_run):
    at = page("app_pages/recommend.py")
    target = saved_run.items.to_list()[7]
    at.selectbox(key="sim_item").set_value(target).run()
    sims = at.dataframe[-1].value
    assert target not in set(sims["item"])
    assert list(sims["similarity"]) == sorted(sims["similarity"], reverse=True)


def test_embeddings_switch_tables_dimensions_colours_and_highlight(page, saved_run):
    at = page("app_pages/embeddings.py")
    assert not at.exception and not at.error
    assert at.button_group(key="emb_table").value == "gmf"
    at.button_group(key="emb_table").set_value("mlp").run()
    at.button_group(key="emb_dims").set_value(3).run()
    at.button_group(key="emb_colour").set_value("popularity").run()
    at.button_group(key="emb_kind").set_value("user").run()
    assert not at.exception and not at.error
    at.button_group(key="emb_kind").set_value("item").run()
    title = str(saved_run.item_info["title"].iloc[0])
    at.text_input(key="emb_search").set_value(title.split()[0]).run()
    assert "match" in at.caption[1].value or "match" in " ".join(c.value for c in at.caption)


def _made_by(run_id: str, owner: str) -> None:
    """The record a training job leaves: its owner and the run it saved."""
    import json
    import os
    from pathlib import Path

    job = Path(os.environ["NCF_MODELS_DIR"]) / ".jobs" / "20260101-000000-0000abcd"
    job.mkdir(parents=True)
    (job / "job.json").write_text(json.dumps({"id": job.name, "owner": owner, "state": "done", "run_id": run_id}))


def test_compare_deletes_only_this_sessions_runs(page, saved_run, monkeypatch):
    import appstate

    # The page asks appstate.owner(); can_delete_run asks its own module's owner(): both are "me".
    for where in (appstate, appstate.resources):
        monkeypatch.setattr(where, "owner", lambda: "browser-me")
    other = train_and_save(model="pop", epochs=1, name="baseline")  # no job of ours made it
    _made_by(saved_run.id, "browser-me")
    at = page("app_pages/compare.py")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table["name"]) == {"tiny neumf", "baseline"}
    at.selectbox[-1].set_value(other.id).run()
    delete = next(b for b in at.button if b.label == "Delete")
    assert delete.disabled and "Only the session that trained this run" in delete.help
    at.selectbox[-1].set_value(saved_run.id).run()
    next(b for b in at.button if b.label == "Delete").click().run()
    next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["baseline"]


def _save(name: str, model: str = "neumf", data_seed: int = 0, **settings):
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from ncf.data import make_split, synthetic
    from ncf.runs import save_run
    from ncf.train import train

    cfg = RunConfig(data=DataConfig(seed=data_seed), model=ModelConfig(model=model),
                    train=TrainConfig(**{"epochs": 1, "batch_size": 4096, **settings}), name=name)
    split = make_split(synthetic(), "leave_one_out", seed=data_seed, n_negatives=99)
    return save_run(train(cfg, split), cfg, split, name=name)


def test_compare_stays_within_one_dataset_and_protocol_and_shows_what_differs(page):
    """Issue points 2, 3 and 9: the current protocol by default, the differing settings, readable
    columns, and a refusal to chart runs tested differently."""
    _save("gmf seed 0", model="gmf")
    _save("gmf seed 1", model="gmf", seed=1)
    _save("other split", data_seed=1)
    at = page("app_pages/compare.py")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table["name"]) == {"gmf seed 0", "gmf seed 1"}  # the other split is another protocol
    assert {"name", "model", "hr@10", "full_recall@10", "epochs run", "train time", "created"} <= set(table.columns)
    assert not [c for c in table.columns if table[c].isna().all()]  # no empty columns
    assert "T" not in str(table["created"].iloc[0])  # '30 Nov 17:29', not an ISO stamp
    diff = at.dataframe[1].value
    assert list(diff.columns) == ["name", "model", "seed"]
    next(s for s in at.selectbox if s.label == "Test protocol").set_value("any protocol").run()
    assert len(at.dataframe[0].value) == 3
    # the newest three span two protocols: no shared bar chart, a message instead
    assert any("tested differently" in w.value for w in at.warning)
    assert not any("Final test metrics" in c.proto.spec for c in at.get("plotly_chart"))
