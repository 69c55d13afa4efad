"""The session's settings as the run configuration a job trains (ncf.config's frozen dataclasses),
checked before anything is submitted: a ConfigError says what is wrong."""

from __future__ import annotations

import streamlit as st

from appstate.resources import current_dataset, current_split, data_source_for_jobs
from appstate.session import AUTO_BATCH, UPLOAD_PREFIX, recipe, settings, uses_validation
from ncf import registry
from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig, default_batch_size
from ncf.errors import ConfigError, NCFError


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError as e:
        raise ConfigError(f"Tower layers are whole numbers separated by commas, such as 64,32,16,8; got {text!r}.") from e
    if not layers:
        raise ConfigError("Give at least one tower layer, such as 64,32,16,8.")
    return layers


def data_config(s: dict | None = None) -> DataConfig:
    s = s or settings()
    source = s["source"]
    columns = st.session_state.get("upload_columns", {}).get(source) if source.startswith(UPLOAD_PREFIX) else None
    return DataConfig(source=data_source_for_jobs(source), split=s["split"], test_negatives=int(s["test_negatives"]),
                      test_fraction=float(s["test_fraction"]), seed=int(s["data_seed"]), columns=columns or None,
                      validation=uses_validation(s))


def model_config(s: dict | None = None) -> ModelConfig:
    """The ModelConfig of the current settings, validated (ConfigError says what is wrong)."""
    s = s or settings()
    emb = None if not (s["emb_user"] or s["emb_item"]) else (int(s["emb_user"]), int(s["emb_item"]))
    cfg = ModelConfig(
        model=s["model"],
        objective=None if s["objective"] == "auto" else s["objective"],
        factors=int(s["factors"]),
        layers=parse_layers(s["layers"]),
        emb_sizes=emb,
        dropout=float(s["dropout"]) if "dropout" in registry.get(s["model"]).settings else 0.0,
        batch_norm=bool(s["batch_norm"]),
        pretrain=bool(s["pretrain"]) and "pretrain" in registry.get(s["model"]).settings,
        alpha=float(s["alpha"]),
    )
    ds = current_dataset()
    if ds is not None and cfg.resolved_objective == "explicit" and ds.implicit:
        raise ConfigError(f"{ds.name} has no ratings (implicit feedback only); choose the implicit objective.")
    if ds is not None and ds.rating_scale is not None:
        lo, hi = ds.rating_scale
        cfg = cfg.replace(y_range=(float(lo) - 0.5 if lo > 0 else 0.0, float(hi) + 0.5))
    return cfg.validate()


# Settings that a pre-trained NeuMF takes from the pipeline's own recipe (ncf.train: epochs per stage,
# plain SGD at a small rate and no decay for the fine-tune) while they stay at the recipe's values.
PIPELINE_RECIPE_KEYS = ("epochs", "lr", "optimizer", "weight_decay")


def follows_pipeline_recipe(s: dict, key: str) -> bool:
    """True when a pre-trained NeuMF's `key` is left to the pipeline: the user has not moved it from
    the recipe's value. (Sending the form's 8 epochs and AdamW at 0.01 to every stage made the
    fine-tune undo the pre-training: NeuMF ended below its own GMF stage.)"""
    pretrain = bool(s["pretrain"]) and s["model"] == "neumf"
    objective = "explicit" if s["objective"] == "explicit" else "implicit"
    return pretrain and key in PIPELINE_RECIPE_KEYS and s[key] == recipe(objective)[key]


def train_config(s: dict | None = None) -> TrainConfig:
    s = s or settings()
    batch_size = None if s["batch_size"] == AUTO_BATCH else int(s["batch_size"])

    def value(key: str, kind):
        return None if follows_pipeline_recipe(s, key) else kind(s[key])

    return TrainConfig(epochs=value("epochs", int), batch_size=batch_size, lr=value("lr", float),
                       optimizer=value("optimizer", str), weight_decay=value("weight_decay", float),
                       n_negatives=int(s["n_negatives"]), one_cycle=bool(s["one_cycle"]),
                       seed=int(s["seed"])).validate()


def run_config(name: str = "") -> RunConfig:
    return RunConfig(data=data_config(), model=model_config(), train=train_config(), name=name)


def pipeline_plan(t: TrainConfig, objective: str = "implicit") -> str:
    """What each stage of a pre-trained NeuMF will run under `t` (None: the pipeline's recipe)."""
    from ncf.train import PRETRAIN_STAGE_EPOCHS, PRETRAINED_NEUMF_LR, PRETRAINED_NEUMF_OPTIMIZER

    base = recipe(objective)
    epochs = {k: t.epochs or v for k, v in PRETRAIN_STAGE_EPOCHS.items()}
    first = f"{t.optimizer or base['optimizer']} at lr {t.lr or base['lr']:g}"
    tune = (f"{t.optimizer} at lr {t.lr or base['lr']:g}" if t.optimizer
            else f"plain {PRETRAINED_NEUMF_OPTIMIZER.upper()} at lr {PRETRAINED_NEUMF_LR:g}, no weight decay")
    return (f"GMF {epochs['gmf']} epochs → MLP {epochs['mlp']} epochs ({first}) → "
            f"NeuMF fine-tuned {epochs['neumf']} epochs with {tune}")


def batch_label(cfg: RunConfig) -> str:
    """"batch 2048", or for "auto" the size the engine will pick for this dataset: "batch 2048 (auto)"."""
    t = cfg.train
    if t.batch_size is not None:
        return f"batch {t.batch_size}"
    try:
        split = current_split()
    except NCFError:  # the Data page says what is wrong with the data
        split = None
    if split is None:
        return "batch auto"
    return f"batch {default_batch_size(cfg.model.resolved_objective, split.n_train, t.n_negatives)} (auto)"
