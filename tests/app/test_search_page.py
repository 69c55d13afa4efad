"""The Search page: ranges and a budget, trials through the job pool, the chosen trial's test figures once."""

from __future__ import annotations


def test_the_page_offers_ranges_and_refuses_a_bad_one(page, fresh_runner):
    at = page("app_pages/search.py")
    assert not at.exception and not at.error
    assert at.text_input(key="search_low_factors").value == "8" and at.checkbox(key="search_log_lr").value
    assert "No searches yet" in at.info[-1].value
    at.text_input(key="search_high_factors").set_value("4").run()
    assert any("predictive factors needs from" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Start search").disabled


def test_start_runs_trials_and_stop_ends_the_search(page, fresh_runner):
    at = page("app_pages/model.py").number_input(key="epochs").set_value(10_000).run()
    at = at.switch_page("app_pages/search.py").run()
    at.multiselect(key="search_params").set_value(["factors"]).run()
    at.number_input(key="search_budget").set_value(3).run()
    next(b for b in at.button if b.label == "Start search").click().run()
    assert not at.exception and not at.error
    search_id = at.session_state["search_id"]
    from ncf import sweeps

    assert sweeps.load_sweep(fresh_runner.models_dir, search_id).is_search
    at.run()
    next(b for b in at.button if b.key == "stop_search").click().run()
    final = sweeps.wait_sweep(fresh_runner, search_id, timeout=120)
    assert final.state == "stopped" and len(final.points) <= 1
    at.run()
    assert not at.exception and not any(b.key == "stop_search" for b in at.button)


def test_a_finished_search_shows_the_chosen_trial_and_only_its_test_figures(page, fresh_runner):
    from ncf import search, sweeps
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    base = RunConfig(data=DataConfig(), model=ModelConfig(model="gmf"), train=TrainConfig(epochs=1, batch_size=2048))
    sw = search.start_search(fresh_runner, base, "gmf", [search.setting_range("factors", 4, 16)], 2, owner="someone")
    assert sweeps.wait_sweep(fresh_runner, sw.id, timeout=300).state == "done"
    at = page("app_pages/search.py")
    assert not at.exception and not at.error
    assert any("Chosen on the validation hold-out: trial" in s.value for s in at.success)
    assert any("read once" in m.value for m in at.markdown)
    assert {m.label for m in at.metric} >= {"HR@10 (99 sampled negatives)"}
    trials = at.dataframe[0].value
    assert list(trials["trial"]) == [0, 1] and "hr@10" not in trials.columns and "val_hr@10" in trials.columns
    # The Experiments page keeps searches out of its sweeps, whose results show every run's test figures.
    at = at.switch_page("app_pages/experiments.py").run()
    assert not at.exception and "No sweeps yet" in at.info[-1].value
