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
    assert len(recs) == 10 and {"title", "score", "held_out"} <= set(recs.columns)
    assert user == saved_run.users.to_list()[0]
    at.slider(key="rec_k").set_value(20).run()
    assert len(at.dataframe[1].value) == 20
    other = saved_run.users.to_list()[5]
    at.selectbox(key="rec_user").set_value(other).run()
    assert not at.dataframe[0].value.equals(history)


def test_a_new_user_gets_recommendations_from_a_few_ratings(page, saved_run):
    at = page("app_pages/recommend.py")
    items = saved_run.items.to_list()[:3]
    at.multiselect(key="fold_items").set_value(items).run()
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


def test_compare_lists_runs_and_deletes_one(page, saved_run):
    train_and_save(model="pop", epochs=1, name="baseline")
    at = page("app_pages/compare.py")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table["name"]) == {"tiny neumf", "baseline"}
    at.selectbox[-1].set_value(saved_run.id).run()
    next(b for b in at.button if b.label == "Delete").click().run()
    next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["baseline"]
