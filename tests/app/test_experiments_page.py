"""The Experiments page: set up a grid, see its size and time estimate, start it, stop it, read the results."""

from __future__ import annotations

import pytest


def setup(at, models=("gmf", "mlp"), values="4,8", seeds="0"):
    at.multiselect(key="sweep_models").set_value(list(models)).run()
    at.text_input(key="sweep_v1_factors").set_value(values).run()
    at.text_input(key="sweep_seeds").set_value(seeds).run()
    return at


def test_the_page_shows_runs_and_an_estimate_before_starting(page, fresh_runner):
    at = setup(page("app_pages/experiments.py"), seeds="0,1")
    assert not at.exception and not at.error
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["Runs"] == "8"
    assert tiles["Estimated time"].startswith("≈")
    assert any("An estimate" in c.value for c in at.caption)
    assert "No sweeps yet" in at.info[0].value


def test_the_model_box_shows_the_registrys_labels_not_its_keys(page, fresh_runner):
    at = page("app_pages/experiments.py")
    box = at.multiselect(key="sweep_models")
    assert {"NeuMF", "GMF", "MLP", "Most popular"} <= set(box.options)
    assert not {"neumf", "gmf", "mlp", "pop"} & set(box.options)
    assert box.value == ["gmf", "mlp", "neumf"]  # the keys stay what the sweep is given


def test_a_grid_past_the_cap_is_refused_with_the_cap(page, fresh_runner, monkeypatch):
    monkeypatch.setenv("NCF_MAX_SWEEP_RUNS", "3")
    at = setup(page("app_pages/experiments.py"))
    assert any("capped at 3 runs" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Start sweep").disabled


def test_start_runs_the_sweep_and_stop_ends_it_as_a_whole(page, fresh_runner):
    at = setup(page("app_pages/model.py").number_input(key="epochs").set_value(10_000).run()
               .switch_page("app_pages/experiments.py").run())
    next(b for b in at.button if b.label == "Start sweep").click().run()
    assert not at.exception and not at.error
    sweep_id = at.session_state["sweep_id"]
    assert at.query_params["sweep"] == sweep_id
    assert any(b.key == "stop_sweep" for b in at.button)
    next(b for b in at.button if b.key == "stop_sweep").click().run()
    from ncf import sweeps

    final = sweeps.wait_sweep(fresh_runner, sweep_id, timeout=120)
    assert final.state == "stopped"
    assert [p["state"] for p in final.points][1:] == ["skipped"] * 3
    at.run()
    assert not at.exception and not any(b.key == "stop_sweep" for b in at.button)


def test_a_finished_sweep_opens_from_its_link_with_charts_and_table(app, fresh_runner):
    from ncf import sweeps
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    base = RunConfig(data=DataConfig(), model=ModelConfig(model="gmf"), train=TrainConfig(epochs=1, batch_size=2048))
    sw = sweeps.start_sweep(fresh_runner, base, ["gmf", "mlp"], {"factors": [4, 8]}, [0], owner="someone else")
    assert sweeps.wait_sweep(fresh_runner, sw.id, timeout=300).state == "done"
    app.query_params["sweep"] = sw.id
    app.run()
    at = app.switch_page("app_pages/experiments.py").run()
    assert not at.exception and not at.error
    assert at.session_state["sweep_id"] == sw.id
    assert len(at.get("plotly_chart")) == 3  # sampled, full ranking, time against quality
    table = at.dataframe[-1].value
    assert list(table["model"]) == ["gmf", "gmf", "mlp", "mlp"] and list(table["factors"]) == [4, 8, 4, 8]
    assert {"hr@10", "full_recall@10", "train_seconds", "run"} <= set(table.columns)


def _sweep_file(models_dir, sweep_id, data, runs):
    """A finished sweep written as ncf.sweeps writes one, over runs saved by the test."""
    import json

    from ncf.config import DataConfig, RunConfig

    points = [{"values": {"model": r.config.model.model, "factors": r.config.model.factors, "seed": 0},
               "config": r.config.to_dict(), "job": None, "state": "done", "run_id": r.id, "error": None} for r in runs]
    info = {"id": sweep_id, "owner": "x", "name": "published check", "state": "done", "created": "2026-01-01T00:00:00",
            "finished": None, "base": RunConfig(data=DataConfig(**data)).to_dict(), "models": ["mlp"],
            "params": {"factors": [r.config.model.factors for r in runs]}, "seeds": [0], "note": None, "error": None,
            "points": points}
    folder = models_dir / ".sweeps" / sweep_id
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps(info))


@pytest.mark.parametrize(("source", "expected"), [("ml-1m", True), ("synthetic", False)])
def test_published_figures_appear_labelled_only_under_the_papers_protocol(app, fresh_runner, source, expected):
    import json

    from ncf.reference import HE_2017_MLP, PROTOCOL
    from tests.app.conftest import shown, train_and_save

    _sweep_file(fresh_runner.models_dir, "20260101-000000-aaaaaa", {"source": source},
                [train_and_save(model="mlp", epochs=1)])
    app.query_params["sweep"] = "20260101-000000-aaaaaa"
    app.run()
    at = app.switch_page("app_pages/experiments.py").run()
    assert not at.exception
    notes = [shown(c.value) for c in at.caption if "published figures" in c.value]
    assert bool(notes) == expected, notes
    names = [t.get("name", "") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert (f"MLP-3 (published: {HE_2017_MLP})" in names) == expected
    if expected:
        assert HE_2017_MLP in notes[0] and PROTOCOL in notes[0] and "not measured here" in notes[0]
