"""The Train page: a job goes to the shared runner, its progress is read back, the run is saved."""

from __future__ import annotations


def test_train_submits_a_job_and_the_finished_run_becomes_current(page, fresh_runner):
    at = page("app_pages/model.py")
    at.number_input(key="epochs").set_value(2).run()
    at.switch_page("app_pages/train.py").run()
    assert "Press **Train**" in at.info[0].value
    # "auto" batch: the engine's rule for this dataset (26,750 pairs x 5 samples: 2048 gives 65 steps an
    # epoch), shown before training and used by the job
    assert any("batch 2048 (auto)" in md.value for md in at.markdown)
    at.text_input(key="run_name").set_value("<b>class demo</b>").run()
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception and not at.error
    (job_id,) = at.session_state["job_ids"]
    status = fresh_runner.wait(job_id, timeout=240)
    assert status.state == "done", status.error
    at.run()  # the page reads the finished job: its run becomes the session's run
    assert at.session_state["run_id"] == status.run_id
    assert any(status.run_id in s.value for s in at.success)
    # Issue point 5: readable names, a tooltip that says which way is better, the baseline beside them
    tiles = {m.label: m for m in at.metric}
    for label in ("HR@10 (99 sampled negatives)", "NDCG@10 (99 sampled negatives)", "Recall@10 (full ranking)",
                  "NDCG@10 (full ranking)"):
        assert label in tiles, list(tiles)
        assert "Higher is better" in tiles[label].proto.help
        assert "vs most popular" in tiles[label].delta
    assert any("sampled HR@10 so much higher" in e.label for e in at.expander)
    from ncf.runs import load_run

    run = load_run(status.run_id)
    assert run.name == "<b>class demo</b>" and run.config.train.batch_size == 2048


def test_stop_ends_a_queued_job_without_training(page, fresh_runner):
    at = page("app_pages/train.py")
    next(b for b in at.button if b.label == "Train").click().run()
    next(b for b in at.button if b.label == "Train").click().run()
    first, second = at.session_state["job_ids"]
    at.run()
    assert any("stop_" in (b.key or "") for b in at.button)
    for job in (second, first):
        fresh_runner.stop(job)
    assert fresh_runner.wait(second, timeout=60).state == "stopped"
    assert fresh_runner.wait(first, timeout=120).state in ("stopped", "done")
    at.run()
    assert not at.exception


def test_compare_adds_the_popularity_baseline_in_one_click(page, fresh_runner):
    from tests.app.conftest import train_and_save

    train_and_save(name="tiny neumf")
    at = page("app_pages/compare.py")
    assert "No most-popular baseline" in at.info[0].value
    next(b for b in at.button if b.label == "Add the most-popular baseline").click().run(timeout=240)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table["model"]) == {"neumf", "pop"}, table.to_dict("records")
    assert table.set_index("model").loc["pop", "hr@10"] > 0
    bars = next(c for c in at.get("plotly_chart") if "Final test metrics" in c.proto.spec)
    assert "most popular (synthetic) (pop)" in bars.proto.spec


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.success]
                     + [str(getattr(b, "label", "")) for b in at.button])


def test_the_run_shown_keeps_its_own_settings_when_the_form_changes(page, fresh_runner):
    """Issue point 7: the header describes the run shown, the form the next run; job ids stay internal."""
    at = page("app_pages/model.py")
    at.number_input(key="epochs").set_value(1).run()
    at.switch_page("app_pages/train.py").run()
    next(b for b in at.button if b.label == "Train").click().run()
    (job_id,) = at.session_state["job_ids"]
    assert fresh_runner.wait(job_id, timeout=240).state == "done"
    at.run()
    at.switch_page("app_pages/model.py").run()
    at.selectbox(key="model").set_value("embnn").run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    next_run = at.get("markdown")
    text = _texts(at)
    assert job_id not in text, "users see runs, not job ids"
    next_md = [m.value for m in next_run if "**EMBNN**" in m.value]
    shown_md = [m.value for m in next_run if "**NEUMF**" in m.value]
    assert next_md and shown_md, text
    assert "1 epochs" in shown_md[0] and "explicit" in next_md[0]
    assert any("Next run" in m.value for m in next_run)


def test_a_running_job_offers_one_stop_training_button(page, fresh_runner):
    """Issue point 14 (the browser test pins the missing Streamlit indicator): the app's button says what it stops."""
    at = page("app_pages/train.py")
    next(b for b in at.button if b.label == "Train").click().run()
    next(b for b in at.button if b.label == "Train").click().run()
    at.run()
    labels = [b.label for b in at.button]
    assert "Stop training" in labels and "Stop" not in labels
    for job in reversed(at.session_state["job_ids"]):
        fresh_runner.stop(job)
    for job in at.session_state["job_ids"]:
        fresh_runner.wait(job, timeout=120)
