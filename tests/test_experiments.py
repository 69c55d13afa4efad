"""Sweeps: the grid the flags describe, checked before any run, run and stopped as a whole."""

from __future__ import annotations

import json
import threading

import pytest

from ncf.cli import main
from ncf.errors import ConfigError
from ncf.experiments import expand


def test_the_grid_is_the_product_first_flag_slowest_seeds_fastest():
    points = expand(["--model", "gmf,mlp", "--factors", "8,16", "--epochs", "2", "--pretrain"], seeds=[0, 1])
    assert len(points) == 8
    assert [p.values for p in points[:3]] == [{"model": "gmf", "factors": 8, "seed": 0},
                                              {"model": "gmf", "factors": 8, "seed": 1},
                                              {"model": "gmf", "factors": 16, "seed": 0}]
    assert points[-1].argv == ("--epochs", "2", "--pretrain", "--model", "mlp", "--factors", "16", "--seed", "1")


def test_list_valued_flags_separate_alternatives_with_a_slash():
    points = expand(["--layers", "64,32,16,8/128,64,32"])
    assert [p.values["layers"] for p in points] == ["64,32,16,8", "128,64,32"]


def test_a_sweep_past_the_cap_is_refused_with_the_cap(monkeypatch):
    monkeypatch.setenv("NCF_MAX_SWEEP_RUNS", "5")
    with pytest.raises(ConfigError, match="6 runs, more than the 5 allowed"):
        expand(["--factors", "1,2,3", "--neg", "1,2"])


def test_a_bad_value_anywhere_in_the_grid_fails_before_any_run(tmp_path, capsys):
    assert main(["sweep", "--model", "gmf,mlp", "--factors", "8,0", "--out", str(tmp_path)]) == 2
    assert "factors must be at least 1" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_cli_sweep_runs_every_point_and_reports_each_by_name(tmp_path, capsys):
    code = main(["sweep", "--model", "gmf,mlp", "--factors", "4,8", "--epochs", "1", "--validation",
                 "--out", str(tmp_path), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"]
    assert [(r["model"], r["factors"], r["seed"]) for r in rows] == [("gmf", 4, 0), ("gmf", 8, 0), ("mlp", 4, 0),
                                                                     ("mlp", 8, 0)]
    for r in rows:
        assert {"hr@10", "ndcg@10", "full_recall@10", "val_hr@10", "train_seconds", "run"} <= set(r)
    assert len(list(tmp_path.iterdir())) == 4


def test_a_stop_ends_the_sweep_as_a_whole(tmp_path):
    from ncf.cli import build_parser, config_from_args
    from ncf.data import load_split
    from ncf.experiments import run_sweep
    from ncf.runs import save_run

    points = expand(["--model", "gmf", "--factors", "4,8,16", "--epochs", "1"])
    configs = [(p, config_from_args(build_parser().parse_args(["train", *p.argv]))) for p in points]
    stop = threading.Event()
    rows = run_sweep(configs, load_split=load_split, stop=stop, on_row=lambda row: stop.set(),
                     save=lambda r, c, s: save_run(r, c, s, models_dir=tmp_path))
    assert len(rows) == 1 and len(list(tmp_path.iterdir())) == 1


def test_a_note_is_due_when_sampled_and_full_metrics_order_models_differently():
    from ncf.experiments import orderings_disagree

    agree = [{"model": "a", "hr@10": 0.7, "full_recall@10": 0.2}, {"model": "b", "hr@10": 0.6, "full_recall@10": 0.1}]
    assert not orderings_disagree(agree)
    swapped = [{"model": "a", "hr@10": 0.7, "full_recall@10": 0.1}, {"model": "b", "hr@10": 0.6, "full_recall@10": 0.2}]
    assert orderings_disagree(swapped)
    within_noise = [{"model": "a", "hr@10": 0.703, "full_recall@10": 0.10},
                    {"model": "b", "hr@10": 0.700, "full_recall@10": 0.12}]
    assert not orderings_disagree(within_noise)  # a 0.003 gap in HR@10 is one seed's noise
