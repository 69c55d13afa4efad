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
