"""The Model page: every variant explains itself, sizes add up, impossible settings are named inline."""

from __future__ import annotations

import pytest

from ncf.config import ModelConfig
from ncf.models import build_model, count_parameters
from tests.app.conftest import shown


def parameters(at) -> int:
    return int(next(m.value for m in at.metric if m.label == "Parameters").replace(",", ""))


def test_default_neumf_shows_formula_diagram_and_true_parameter_count(page):
    at = page("app_pages/model.py")
    assert not at.exception and not at.error
    assert at.selectbox(key="model").value == "neumf"
    assert at.latex and "odot" in at.latex[0].value
    # The app starts small (8 factors) so a class trains the synthetic default in seconds.
    expected = count_parameters(build_model(ModelConfig(model="neumf", factors=8, layers=(64, 32, 16, 8)), 600, 400))
    assert parameters(at) == expected


@pytest.mark.parametrize("model", ["gmf", "mlp", "dot", "embnn", "pop"])
def test_every_model_renders_its_explanation(page, model):
    at = page("app_pages/model.py")
    at.selectbox(key="model").set_value(model).run()
    assert not at.exception and not at.error
    assert at.latex
    if model != "pop":
        assert parameters(at) > 0


def test_impossible_layers_are_named_before_training(page):
    at = page("app_pages/model.py")
    at.text_input(key="layers").set_value("63,32").run()
    assert "must be even" in at.error[0].value
    at.text_input(key="layers").set_value("64,abc").run()
    assert "whole numbers" in at.error[0].value
    at.switch_page("app_pages/train.py").run()
    assert "cannot be trained" in at.error[0].value
    assert not [b for b in at.button if b.label == "Train"]


def test_embeddingnn_uses_fastai_sizes_and_the_rating_recipe(page):
    at = page("app_pages/model.py")
    at.selectbox(key="model").set_value("embnn").run()
    assert at.text_input(key="layers").value == "100,50"
    assert "rule: 58" in at.number_input(key="emb_user").label  # min(600, round(1.6 * 600**0.56))
    assert at.session_state["optimizer"] == "adamw" and at.session_state["one_cycle"] is True
    assert (at.session_state["epochs"], at.session_state["lr"]) == (5, 0.005)
    assert "explicit" in at.info[0].value
    # Issue point 6: a rating model is tested on held-out ratings, and negatives do not apply to it
    assert at.session_state["split"] == "ratio" and "random share of ratings" in at.info[0].value
    assert at.number_input(key="n_negatives").disabled
    at.selectbox(key="model").set_value("gmf").run()
    assert at.session_state["split"] == "leave_one_out" and not at.number_input(key="n_negatives").disabled
    assert (at.session_state["epochs"], at.session_state["lr"]) == (8, 0.01)
    assert at.session_state["layers"] == "64,32,16,8"


def test_pretraining_is_offered_for_neumf_only(page):
    at = page("app_pages/model.py")
    at.checkbox(key="pretrain").check().run()
    assert at.slider(key="alpha").value == 0.5
    at.selectbox(key="model").set_value("mlp").run()
    assert at.session_state["pretrain"] is False


def test_the_learning_rate_range_test_plots_and_suggests(page):
    at = page("app_pages/model.py")
    next(b for b in at.button if b.label == "Run the range test").click().run(timeout=120)
    assert not at.exception and not at.error
    suggestion = at.session_state["lr_result"]["suggestion"]
    use = next(b for b in at.button if b.label.startswith("Use the suggested rate"))
    use.click().run()
    assert at.number_input(key="lr").value == pytest.approx(suggestion)


def test_a_range_test_does_not_outlive_its_model(page):
    """Issue point 11: NeuMF's curve and suggested rate disappear when the model changes."""
    at = page("app_pages/model.py")
    next(b for b in at.button if b.label == "Run the range test").click().run(timeout=120)
    assert any(b.label.startswith("Use the suggested rate") for b in at.button)
    at.selectbox(key="model").set_value("embnn").run()
    assert not any(b.label.startswith("Use the suggested rate") for b in at.button)
    assert not any("Learning-rate range test" in str(c.proto.spec) for c in at.get("plotly_chart"))


def _built_config(at):
    """The TrainConfig the app would submit from this session's settings."""
    import appstate

    return appstate.train_config({key: at.session_state[key] for key in appstate.SETTINGS})


def test_pretraining_runs_the_pipelines_recipe_unless_a_setting_is_changed(page):
    from ncf.train import PRETRAIN_STAGE_EPOCHS

    at = page("app_pages/model.py")
    t = _built_config(at)
    assert (t.epochs, t.optimizer, t.lr) == (8, "adamw", 0.01)  # without pre-training: the form's values
    at.checkbox(key="pretrain").check().run()
    t = _built_config(at)
    # Left at the defaults: None, so ncf.train runs its recipe (stage epochs, SGD 0.001 fine-tune, no decay).
    assert (t.epochs, t.optimizer, t.lr, t.weight_decay) == (None, None, None, None)
    caption = " ".join(c.value for c in at.caption)
    assert f"GMF {PRETRAIN_STAGE_EPOCHS['gmf']} epochs" in caption and "plain SGD at lr 0.001" in caption
    at.number_input(key="epochs").set_value(5).run()
    at.selectbox(key="optimizer").set_value("adam").run()
    t = _built_config(at)
    assert (t.epochs, t.optimizer, t.lr) == (5, "adam", None)  # changed on purpose: sent; the rest stays recipe
    assert "NeuMF fine-tuned 5 epochs with adam" in " ".join(c.value for c in at.caption)


def test_the_apps_defaults_are_the_quick_preset_and_train_as_the_cli_does():
    """Defaults defined once: the app's fresh settings build what `ncf train --preset quick` builds, once
    each side's unset training values resolve to the recipe."""
    import appstate
    from ncf.cli import build_parser, config_from_args
    from ncf.data import load_split
    from ncf.train import resolve_train_config

    app_model = appstate.model_config(dict(appstate.SETTINGS))
    app_train = appstate.train_config(dict(appstate.SETTINGS))
    cli = config_from_args(build_parser().parse_args(["train", "--preset", "quick"]))
    assert app_model.to_dict() == cli.model.replace(y_range=app_model.y_range).to_dict()
    split = load_split(cli.data, cli.model.resolved_objective)
    app_cfg = cli.replace(model=app_model, train=app_train)
    assert resolve_train_config(app_cfg, split).to_dict() == resolve_train_config(cli, split).to_dict()


def test_switching_model_starts_from_that_models_own_factors(page):
    at = page("app_pages/model.py")
    assert at.number_input(key="factors").value == 8  # the quick preset's NeuMF
    at.selectbox(key="model").set_value("ials").run()
    assert at.number_input(key="factors").value == 128  # iALS's default, read off validation items
    at.selectbox(key="model").set_value("gmf").run()
    assert at.number_input(key="factors").value == 8


def _preset_text(at) -> str:
    return shown(" ".join(c.value for c in at.caption if "preset" in c.value.lower()))


def test_the_page_names_the_preset_and_where_the_settings_leave_it(page):
    from ncf.config import PRESETS

    at = page("app_pages/model.py")
    text = _preset_text(at)
    assert f"Preset: {PRESETS['quick'].label}" in text and PRESETS["quick"].description in text
    assert "Your settings are the preset's." in text
    at.selectbox(key="model").set_value("gmf").run()
    at.number_input(key="epochs").set_value(12).run()
    text = _preset_text(at)
    assert "differ from it: model GMF (preset: NeuMF), epochs 12 (preset: 8)." in text
    at.number_input(key="epochs").set_value(8).run()
    at.selectbox(key="model").set_value("neumf").run()
    assert "Your settings are the preset's." in _preset_text(at)


def test_a_models_own_sizes_and_recipe_are_not_departures_from_the_preset():
    """Switching model starts from that model's sizes and objective recipe: only the model is named."""
    import appstate

    s = dict(appstate.SETTINGS)
    assert appstate.preset_changes(s) == []
    s.update(model="embnn", layers=appstate.default_layers("embnn"), **appstate.recipe("explicit"))
    assert appstate.preset_changes(s) == [("model", "embnn", "neumf")]
    s.update(dropout=0.3, lr=0.02)
    assert [key for key, _, _ in appstate.preset_changes(s)] == ["model", "dropout", "lr"]
    # Settings the model does not use are not named: GMF has no tower, NeuMF without pre-training no α.
    s = {**appstate.SETTINGS, "model": "gmf", "layers": "32,16", "alpha": 0.9}
    assert appstate.preset_changes(s) == [("model", "gmf", "neumf")]
