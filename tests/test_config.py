"""Named presets: applied under the user's explicit choices, the same from the CLI and from code."""

from __future__ import annotations

import json

import pytest

from ncf.cli import build_parser, config_from_args
from ncf.config import PRESETS, RunConfig, apply_preset
from ncf.errors import ConfigError


def parse(*argv: str) -> RunConfig:
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_the_large_batch_preset_is_nvidias_recipe():
    cfg = parse("--preset", "large-batch")
    assert (cfg.model.model, cfg.model.factors, cfg.model.layers, cfg.model.dropout) == (
        "neumf", 64, (256, 256, 128, 64), 0.5)
    t = cfg.train
    assert (t.batch_size, t.lr, t.optimizer, t.betas, t.weight_decay, t.one_cycle) == (
        1 << 20, 0.0045, "adam", (0.25, 0.5), 0.0, False)


def test_flags_given_win_over_the_preset():
    cfg = parse("--preset", "large-batch", "--factors", "16", "--lr", "0.01", "--betas", "0.9,0.99")
    assert cfg.model.factors == 16 and cfg.train.lr == 0.01 and cfg.train.betas == (0.9, 0.99)
    assert cfg.model.layers == (256, 256, 128, 64)  # the rest of the preset stays


def test_the_cli_and_code_build_the_same_config_from_a_preset():
    for name in PRESETS:
        from_code = apply_preset(RunConfig(), name, {"model": {}, "train": {"seed": 3}})
        assert parse("--preset", name, "--seed", "3").to_dict() == from_code.to_dict(), name


def test_without_a_preset_the_defaults_stay():
    assert parse().to_dict() == RunConfig().to_dict()
    assert parse("--model", "embnn").data.split == "ratio"  # explicit models still default to the ratio split


def test_an_unknown_preset_or_bad_betas_is_refused_with_what_is_expected():
    with pytest.raises(ConfigError, match="expected one of"):
        apply_preset(RunConfig(), "fastest")
    with pytest.raises(ConfigError, match="beta1 and beta2"):
        parse("--betas", "0.9")
    with pytest.raises(ConfigError, match="betas"):
        RunConfig().train.replace(betas=(0.9, 1.5)).validate()


def test_dropout_reaches_the_ncf_tower():
    import torch

    from ncf.models import build_model

    model = build_model(PRESETS["large-batch"].apply(RunConfig()).model, 10, 20)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 3


def test_the_rendle_preset_is_their_ml1m_command():
    """google-research dot_vs_learned_similarity README: --epochs 256 --embedding_dim 16 (15 factors and
    the bias) --regularization 0.005 --negatives 8 --learning_rate 0.002 --stddev 0.1; plain SGD."""
    cfg = parse("--preset", "rendle-mf")
    m, t = cfg.model, cfg.train
    assert (m.model, m.factors, m.init_std, m.global_bias) == ("dot", 15, 0.1, True)
    assert (t.optimizer, t.lr, t.epochs, t.n_negatives, t.exclude_seen, t.one_cycle, t.weight_decay) == (
        "sgd", 0.002, 256, 8, False, False, 0.0)
    assert (t.loss_reduction, t.example_l2, t.batch_size) == ("sum", 0.005, 1024)
    assert cfg.data.split == "leave_one_out"
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert PRESETS["rendle-mf"].label == "Rendle et al. 2020 MF"


def test_the_new_training_settings_default_to_the_old_behaviour_and_take_flags():
    t = RunConfig().train
    assert (t.loss_reduction, t.example_l2) == ("mean", 0.0)
    m = RunConfig().model
    assert (m.init_std, m.global_bias) == (None, False)
    cfg = parse("--model", "dot", "--loss-reduction", "sum", "--example-l2", "0.01", "--init-std", "0.05",
                "--global-bias")
    assert (cfg.train.loss_reduction, cfg.train.example_l2) == ("sum", 0.01)
    assert (cfg.model.init_std, cfg.model.global_bias) == (0.05, True)
    with pytest.raises(ConfigError, match="mean or sum"):
        RunConfig().train.replace(loss_reduction="max").validate()
    with pytest.raises(ConfigError, match="cannot be negative"):
        RunConfig().train.replace(example_l2=-1.0).validate()
