"""The session's settings: one key per widget, its default derived from ncf.config and the registry.

Session state holds only small handles and settings: the data source key, the current run id,
this session's job ids and the model/training settings. A link's query parameters are read once,
when a session starts, and checked against fixed choices; they are never used as paths. The app's
defaults are a named preset of ncf.config (`PRESET`), which the Model page names.
"""

from __future__ import annotations

import re

import streamlit as st

from ncf import registry
from ncf.config import (
    MODELS,
    OPTIMIZERS,
    PRESETS,
    TRAIN_DEFAULTS,
    DataConfig,
    ModelConfig,
    TrainConfig,
)
from ncf.errors import NCFError

SPLITS = ("leave_one_out", "ratio", "published")
OBJECTIVE_CHOICES = ("auto", "implicit", "explicit")
# The app's model sizes are the "quick" preset (a class must train in seconds), defined once in ncf.config.
PRESET = PRESETS["quick"]
QUICK = PRESET.model

# "auto": the engine picks the recipe's batch size for the dataset (ncf.config.default_batch_size):
# smaller for small data, so that an epoch still takes enough steps.
AUTO_BATCH = "auto"


def recipe(objective: str) -> dict:
    """The engine's training recipe for `objective`, as widget values."""
    return {**TRAIN_DEFAULTS[objective], "batch_size": AUTO_BATCH}


def default_factors(model: str) -> int:
    """The predictive factors a model starts with in the app: the quick preset's for the neural
    models, the registry's own default for the others (iALS 128, PureSVD 32)."""
    spec = registry.get(model)
    return int(QUICK["factors"]) if spec.gradient else int(spec.defaults.get("factors") or QUICK["factors"])


def default_layers(model: str) -> str:
    """The tower a model starts with in the app: the quick preset's, or the model's own default."""
    layers = registry.get(model).defaults.get("layers") or QUICK["layers"]
    return ",".join(str(n) for n in layers)


_DATA, _MODEL, _TRAIN = DataConfig(), ModelConfig(), TrainConfig()
# Every shareable setting: widget key -> default (from ncf.config, never a copied literal). The widget
# key is also the query parameter.
SETTINGS: dict[str, object] = {
    "source": _DATA.source,
    "split": _DATA.split,
    "test_negatives": _DATA.test_negatives,
    "test_fraction": _DATA.test_fraction,
    "data_seed": _DATA.seed,
    "validation": _DATA.validation,
    "model": QUICK["model"],
    "objective": "auto",
    "factors": default_factors(QUICK["model"]),
    "layers": default_layers(QUICK["model"]),
    "emb_user": 0,  # 0: fastai's rule
    "emb_item": 0,
    "dropout": _MODEL.dropout,
    "batch_norm": _MODEL.batch_norm,
    "pretrain": _MODEL.pretrain,
    "alpha": _MODEL.alpha,
    # The engine's recipe for the default (implicit) objective; apply_train_defaults switches recipes
    # when the objective changes.
    **recipe("implicit"),
    "n_negatives": _TRAIN.n_negatives,
    "seed": _TRAIN.seed,
}
CHOICES: dict[str, tuple] = {
    "split": SPLITS,
    "model": MODELS,
    "objective": OBJECTIVE_CHOICES,
    "optimizer": OPTIMIZERS,
}
UPLOAD_PREFIX = "upload:"  # a session's source key for an upload (private to the session, never in a link)
JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")  # ncf.jobs' ids; anything else in a URL is ignored
SWEEP_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # ncf.sweeps' ids
BATCH_SIZES = (AUTO_BATCH, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


def _allowed_sources() -> set[str]:
    from ncf.data import RELEASES

    return {"synthetic", *RELEASES}


def _parse(key: str, raw: str):
    """A query parameter turned into the setting's type; ValueError when it does not fit."""
    default = SETTINGS[key]
    if key == "batch_size":
        value = raw if raw == AUTO_BATCH else int(raw)
        if value not in BATCH_SIZES:
            raise ValueError(raw)
        return value
    if isinstance(default, bool):
        if raw.lower() not in ("1", "0", "true", "false"):
            raise ValueError(raw)
        return raw.lower() in ("1", "true")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if key in CHOICES and raw not in CHOICES[key]:
        raise ValueError(raw)
    if key == "source" and raw not in _allowed_sources():
        raise ValueError(raw)
    if key == "layers" and not all(p.strip().isdigit() for p in raw.split(",")):
        raise ValueError(raw)
    return raw


def init() -> None:
    """Called by app.py at the top of every run, before any widget exists."""
    ss = st.session_state
    if "_initialised" not in ss:
        ss._initialised = True
        ss.job_ids = []
        ss.run_id = None
        ss.url_warnings = []
        for key, default in SETTINGS.items():
            ss[key] = default
        for key, raw in st.query_params.to_dict().items():
            if key in SETTINGS:
                try:
                    ss[key] = _parse(key, raw)
                except ValueError:
                    ss.url_warnings.append(f"Ignored the link's {key}={raw[:40]!r}: not a valid value.")
        job = st.query_params.get("job")
        if job and JOB_ID.match(job):
            ss.job_ids = [job]
        sweep = st.query_params.get("sweep")
        ss.sweep_id = sweep if sweep and SWEEP_ID.match(sweep) else None
        run = st.query_params.get("run")
        if run:
            ss.run_id = _checked_run_id(run)
        ss._objective = resolved_objective()
    # The settings' widgets use persist_state="session", so their values outlive page switches.


def _checked_run_id(run_id: str) -> str | None:
    from ncf.runs import validate_run_id

    try:
        return validate_run_id(run_id)
    except NCFError:
        st.session_state.url_warnings.append("Ignored the link's run: not a valid run id.")
        return None


def apply_train_defaults(objective: str) -> bool:
    """Sets the training widgets to the engine's recommended recipe for `objective` (the NCF one for
    implicit feedback, fastbook's for ratings). Returns True when anything changed."""
    changed = False
    for key, value in recipe(objective).items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value
            changed = True
    return changed


def resolved_objective() -> str:
    ss = st.session_state
    if ss.objective != "auto":
        return ss.objective
    return registry.get(ss.model).default_objective


def on_objective_change() -> None:
    """Widget callback (model or objective changed): switching between ranking and rating
    prediction switches the training recipe too."""
    ss = st.session_state
    new = resolved_objective()
    if new != ss.get("_objective", "implicit"):
        ss._objective = new
        notes = []
        if apply_train_defaults(new):
            notes.append(f"Training settings switched to the recommended recipe for the {new} objective.")
        # A rating model is measured on held-out ratings (a random share), a ranking model on each
        # user's held-out latest item: the split follows the objective unless it is the published one.
        split = "ratio" if new == "explicit" else "leave_one_out"
        if ss.get("split") in ("leave_one_out", "ratio") and ss.split != split:
            ss.split = split
            notes.append("The test split switched to " + (
                "a random share of ratings (rating error, RMSE)." if split == "ratio"
                else "leave-one-out (each user's latest item, ranked: HR@10, NDCG@10)."))
        if notes:
            ss.train_note = " ".join(notes)


def settings() -> dict:
    """This session's settings: widget key -> value."""
    return {key: st.session_state[key] for key in SETTINGS}


def uses_validation(s: dict) -> bool:
    """The validation hold-out comes with leave-one-out only; the checkbox's value outlives a switch away."""
    return bool(s["validation"]) and s["split"] == "leave_one_out"


# ---------------------------------------------------------------- the preset the settings come from

# What the Model page compares with the preset, in the order it names them, in its words.
PRESET_KEYS = {"model": "model", "objective": "objective", "factors": "factors", "layers": "tower",
               "emb_user": "user embedding size", "emb_item": "item embedding size", "dropout": "dropout",
               "batch_norm": "batch normalisation", "pretrain": "pre-training", "alpha": "α",
               "epochs": "epochs", "batch_size": "batch size", "lr": "learning rate", "optimizer": "optimiser",
               "weight_decay": "weight decay", "n_negatives": "negatives per positive",
               "one_cycle": "one-cycle schedule", "seed": "seed"}


def _objective(s: dict) -> str:
    return s["objective"] if s["objective"] != "auto" else registry.get(s["model"]).default_objective


def _applies(key: str, s: dict) -> bool:
    """Whether `key` changes what the current model trains (as configs.model_config reads it)."""
    spec = registry.get(s["model"])
    if key in ("factors", "layers", "dropout", "pretrain", "batch_norm"):
        return key in spec.settings
    if key in ("emb_user", "emb_item"):
        return "emb_sizes" in spec.settings
    if key == "alpha":
        return "pretrain" in spec.settings and bool(s["pretrain"])
    if key == "objective":
        return len(spec.objectives) > 1
    if key == "n_negatives":
        return s["model"] != "pop" and _objective(s) == "implicit"
    return True


def preset_changes(s: dict | None = None) -> list[tuple[str, object, object]]:
    """The model and training settings in which `s` (default: this session's) departs from PRESET,
    as (key, value, the preset's value), in PRESET_KEYS' order. A model's own starting sizes, its
    default objective and that objective's recipe are not departures: switching model or objective
    starts from them."""
    s = s or settings()
    start = {**SETTINGS, "factors": default_factors(s["model"]), "layers": default_layers(s["model"]),
             "objective": registry.get(s["model"]).default_objective, **recipe(_objective(s))}
    current = {**s, "objective": _objective(s)}
    return [(key, current[key], start[key]) for key in PRESET_KEYS
            if (key == "model" or _applies(key, s)) and current[key] != start[key]]
