"""The CLI's side-feature and cold-start flags."""

from __future__ import annotations

import json

from ncf.cli import build_parser, config_from_args, main

from .data.conftest import write_ml100k


def test_data_lists_the_side_features_of_a_source(tmp_path, capsys):
    folder = write_ml100k(tmp_path)
    assert main(["data", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "side features" in out and "occupation" in out and "genres" in out
    assert main(["data", str(folder), "--json"]) == 0
    names = [f["feature"] for f in json.loads(capsys.readouterr().out)["features"]]
    assert names == ["age", "gender", "occupation", "zip", "genres", "year", "hour", "weekday", "years_since_release"]


def test_features_flag_parses_none_all_and_lists():
    parse = build_parser().parse_args
    assert config_from_args(parse(["train", "--model", "embnn"])).model.features == ()
    assert config_from_args(parse(["train", "--model", "embnn", "--features", "all"])).model.features == ("all",)
    cfg = config_from_args(parse(["train", "--model", "embnn", "--features", "genres,age", "--split", "cold-users"]))
    assert cfg.model.features == ("genres", "age") and cfg.data.split == "cold_users"


def test_features_on_an_ids_only_model_or_unknown_names_are_refused(capsys):
    assert main(["train", "--model", "gmf", "--features", "genres"]) == 2
    assert "ids only" in capsys.readouterr().err
    assert main(["train", "--model", "embnn", "--features", "shoe_size"]) == 2
    assert "Unknown feature" in capsys.readouterr().err


def test_train_records_the_features_and_evaluate_reproduces_them(tmp_path, capsys):
    folder = write_ml100k(tmp_path)
    out = tmp_path / "models"
    assert main(["train", "--data", str(folder), "--model", "embnn", "--features", "all", "--epochs", "1",
                 "--batch-size", "4", "--layers", "8", "--device", "cpu", "--out", str(out), "--json",
                 "--by-activity"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "by_activity" in json.loads(lines[-1])
    run = json.loads(lines[-2])
    config = json.loads((out / run["run_id"] / "config.json").read_text())
    assert config["config"]["model"]["features"] == ["age", "gender", "occupation", "zip", "genres", "year", "hour",
                                                     "weekday", "years_since_release"]
    assert main(["evaluate", str(out / run["run_id"]), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["rmse"] == run["rmse"]
