"""The Optuna search chooses on validation items only, and reports the test figures once."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ncf.cli import build_parser, config_from_args, main
from ncf.data import load_split
from ncf.errors import ConfigError
from ncf.runs import save_run
from ncf.search import Range, run_search


def test_ranges_parse_as_written_and_bad_ones_say_what_is_expected():
    assert Range.parse("factors=8:64:log") == Range("factors", 8, 64, log=True, integer=True)
    assert Range.parse("lr=0.001:0.1").integer is False
    assert Range.parse("model=gmf|neumf").choices == ("gmf", "neumf")
    for bad in ("factors", "factors=64:8", "lr=0:1:log", "lr=a:b", "lr=1:2:ln"):
        with pytest.raises(ConfigError):
            Range.parse(bad)


def _search(tmp_path, load):
    parser = build_parser()

    def make_config(values):
        return config_from_args(parser.parse_args(["train", "--epochs", "2", "--validation", "--factors",
                                                   str(values["factors"]), "--lr", str(values["lr"])]))

    return run_search([Range.parse("factors=4:32:log"), Range.parse("lr=0.002:0.05:log")], 3, make_config,
                      load_split=load, save=lambda r, c, s: save_run(r, c, s, models_dir=tmp_path))


def test_the_choice_does_not_move_when_the_test_items_change(tmp_path):
    """Were any choice made on test items, scrambling them would change the trials' scores or the pick."""
    def scrambled(data, objective):
        split = load_split(data, objective)
        rng = np.random.default_rng(1)
        return replace(split, test_item=rng.permutation(split.test_item))

    honest = _search(tmp_path / "a", load_split)
    other = _search(tmp_path / "b", scrambled)
    assert [t.values for t in honest.trials] == [t.values for t in other.trials]
    assert [t.val_hr for t in honest.trials] == [t.val_hr for t in other.trials]
    assert honest.best.number == other.best.number
    assert honest.best.test_metrics["hr@10"] != other.best.test_metrics["hr@10"]  # the test items did change


def test_the_cli_search_ends_with_the_chosen_trial_and_its_test_figures_labelled(tmp_path, capsys):
    code = main(["search", "--trials", "2", "--param", "factors=4:16", "--epochs", "1", "--out", str(tmp_path),
                 "--json"])
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["chosen_on"] == "val_hr@10" and summary["trials"] == 2
    assert "hr@10" in summary["best_test_metrics_read_once"]
    trial_lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert trial_lines and not any("hr@10 " in line.replace("val_hr@10", "") for line in trial_lines)


def test_a_search_without_a_validation_hold_out_is_refused(tmp_path):
    parser = build_parser()
    with pytest.raises(ConfigError, match="validation"):
        run_search([Range.parse("factors=4:8")], 1,
                   lambda v: config_from_args(parser.parse_args(["train", "--split", "ratio", "--model", "gmf"])),
                   load_split=load_split, save=lambda *a: None)


# ---------------------------------------------------------------------------------------------
# A search through the job pool (the app's Search page)

def test_the_next_trial_is_drawn_in_range_and_the_same_history_draws_the_same_one():
    from ncf.search import ask

    ranges = [Range.parse("factors=4:64:log"), Range.parse("lr=0.001:0.1:log"), Range.parse("model=gmf|dot")]
    told = [({"factors": 8, "lr": 0.01, "model": "gmf"}, 0.61), ({"factors": 32, "lr": 0.002, "model": "dot"}, None)]
    values = ask(ranges, told, seed=3)
    assert 4 <= values["factors"] <= 64 and isinstance(values["factors"], int)
    assert 0.001 <= values["lr"] <= 0.1 and values["model"] in ("gmf", "dot")
    assert ask(ranges, told, seed=3) == values


def test_the_outcome_is_the_best_validation_trial_whatever_the_test_figures(monkeypatch):
    """A choice made on test items would pick trial 1 (test HR@10 0.9); the validation figures pick trial 0."""
    from ncf import search
    from ncf.sweeps import Sweep

    metrics = {"r0": {"val_hr@10": 0.70, "hr@10": 0.50}, "r1": {"val_hr@10": 0.60, "hr@10": 0.90},
               "r2": {"val_hr@10": 0.65, "hr@10": 0.80}}
    monkeypatch.setattr(search, "_run_metrics", lambda models_dir, ids: {i: metrics[i] for i in ids})
    points = [{"values": {"model": "gmf", "factors": f}, "state": "done", "run_id": f"r{i}", "job": "j"}
              for i, f in enumerate((8, 16, 32))]
    sweep = Sweep(id="x", owner="o", name="n", state="running", created="", base={}, params={}, models=[], seeds=[],
                  points=points, extra={"search": {"budget": 3}})
    assert search.outcome(sweep, None) is None  # nothing test-side while the search runs
    assert all(set(r) == {"trial", "model", "factors", "state", "val_hr@10", "run"}
               for r in search.trial_rows(sweep, None))  # the live table has no test figure
    done = search.outcome(replace(sweep, state="done"), None)
    assert done["trial"] == 0 and done["val_hr@10"] == 0.70
    assert done["test_metrics_read_once"] == {"hr@10": 0.50}


def test_a_search_runs_its_budget_through_the_job_pool_one_trial_at_a_time(tmp_path):
    from ncf import search, sweeps
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from ncf.jobs import JobRunner

    runner = JobRunner(max_workers=1, max_queued_per_owner=3, models_dir=tmp_path)
    try:
        base = RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="gmf"),
                         train=TrainConfig(epochs=1, batch_size=2048))
        sw = search.start_search(runner, base, "gmf", [Range.parse("factors=4:16")], 3, owner="alice")
        assert sw.is_search and sw.active
        with pytest.raises(ConfigError, match="already have a sweep running"):
            search.start_search(runner, base, "gmf", [Range.parse("factors=4:16")], 2, owner="alice")
        final = sweeps.wait_sweep(runner, sw.id, timeout=300)
        assert final.state == "done" and len(final.points) == 3
        assert all(p["state"] == "done" and RunConfig.from_dict(p["config"]).data.validation for p in final.points)
        rows = search.trial_rows(final, tmp_path)
        assert [r["trial"] for r in rows] == [0, 1, 2] and all(4 <= r["factors"] <= 16 for r in rows)
        chosen = search.outcome(final, tmp_path)
        assert chosen["val_hr@10"] == max(r["val_hr@10"] for r in rows)
        assert "hr@10" in chosen["test_metrics_read_once"]
    finally:
        runner.shutdown(wait=True, stop_running=True)


def test_a_search_past_the_cap_or_over_an_unknown_setting_is_refused(tmp_path, monkeypatch):
    from ncf import search
    from ncf.config import RunConfig

    monkeypatch.setenv("NCF_MAX_SWEEP_RUNS", "4")
    with pytest.raises(ConfigError, match="cap of 4 runs"):
        search.start_search(None, RunConfig(), "gmf", [Range.parse("factors=4:16")], 5, owner="a")
    with pytest.raises(ConfigError, match="cannot be searched"):
        search.start_search(None, RunConfig(), "gmf", [Range.parse("device=cpu|cuda")], 2, owner="a")
