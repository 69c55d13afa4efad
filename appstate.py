"""The app's one place for session state, share links and the sidebar.

Session state holds only small handles and settings: the data source key, the current run id,
this session's job ids and the model/training settings (one key per widget). Heavy objects (a
parsed dataset, a split, a loaded run) are cached once per server with `st.cache_resource` and
shared read-only. Settings are mirrored into the URL's query parameters so a link opens the
same data and model settings; values read from a URL are checked against fixed choices and
never used as paths.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

from ncf import events as train_events
from ncf import registry
from ncf.config import (
    MODELS,
    OPTIMIZERS,
    PRESETS,
    TRAIN_DEFAULTS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    default_batch_size,
)
from ncf.errors import ConfigError, NCFError

SPLITS = ("leave_one_out", "ratio", "published")
OBJECTIVE_CHOICES = ("auto", "implicit", "explicit")
# The app's model sizes are the "quick" preset (a class must train in seconds), defined once in ncf.config.
QUICK = PRESETS["quick"].model

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
UPLOAD_PREFIX = "upload:"
JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")  # ncf.jobs' ids; anything else in a URL is ignored
SWEEP_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # ncf.sweeps' ids
BATCH_SIZES = (AUTO_BATCH, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """User-supplied text (a file name, a title) made safe to put inside Streamlit markdown: every
    markdown character is escaped, so it shows as typed and can never become a link or an image."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


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
    return {key: st.session_state[key] for key in SETTINGS}


def share_params() -> dict[str, str]:
    """The non-default, shareable settings as query parameters (uploads are private to a session)."""
    out = {}
    for key, value in settings().items():
        if key == "source" and str(value).startswith(UPLOAD_PREFIX):
            continue
        if value != SETTINGS[key]:
            out[key] = str(int(value)) if isinstance(value, bool) else str(value)
    return out


def sync_query_params() -> None:
    """Mirrors the settings (and this session's live job, for reloads) into the address bar."""
    params = share_params()
    active = active_job_id()
    if active:
        params["job"] = active
    if st.session_state.run_id:
        params["run"] = st.session_state.run_id
    if st.session_state.get("sweep_id"):
        params["sweep"] = st.session_state.sweep_id
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


def share_link() -> str:
    """A link with only the settings (no job, no run, no upload) for a teacher to hand out."""
    base = ""
    try:
        base = (st.context.url or "").split("?")[0]
    except Exception:  # noqa: BLE001 - st.context.url is absent outside a browser session
        base = ""
    query = urlencode(share_params())
    return f"{base}?{query}" if query else base or "/"


# ---------------------------------------------------------------- configurations


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError as e:
        raise ConfigError(f"Tower layers are whole numbers separated by commas, such as 64,32,16,8; got {text!r}.") from e
    if not layers:
        raise ConfigError("Give at least one tower layer, such as 64,32,16,8.")
    return layers


def _validation(s: dict) -> bool:
    """The validation hold-out comes with leave-one-out only; the checkbox's value outlives a switch away."""
    return bool(s["validation"]) and s["split"] == "leave_one_out"


def data_config(s: dict | None = None) -> DataConfig:
    s = s or settings()
    source = s["source"]
    columns = st.session_state.get("upload_columns", {}).get(source) if source.startswith("upload:") else None
    return DataConfig(source=data_source_for_jobs(source), split=s["split"], test_negatives=int(s["test_negatives"]),
                      test_fraction=float(s["test_fraction"]), seed=int(s["data_seed"]), columns=columns or None,
                      validation=_validation(s))


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


def run_config(name: str = "") -> RunConfig:
    return RunConfig(data=data_config(), model=model_config(), train=train_config(), name=name)


# ---------------------------------------------------------------- data


@st.cache_resource(max_entries=6, show_spinner="Loading the dataset…")
def load_dataset(source: str):
    """A named source (synthetic or a MovieLens release), parsed once per server."""
    import ncf.data

    return ncf.data.load(source)


@st.cache_resource(max_entries=16, show_spinner=False)
def load_uploaded(key: str, _filename: str = "", _data: bytes = b"", _columns: dict | None = None):
    """An uploaded file, parsed once per content+column choice (the key is their hash).

    The bytes are also kept in the cache folder (named by their hash), because a training job is
    another process and loads its data by path."""
    from ncf.data import load, load_upload

    if not _data:  # the parsed copy was evicted: read the kept file again
        path = st.session_state.get("upload_paths", {}).get(key)
        if not path:
            raise NCFError("The uploaded file is no longer available (the server restarted); upload it again.")
        return load(path, columns=st.session_state.get("upload_columns", {}).get(key))
    return load_upload(_filename, _data, columns=_columns)


def open_upload(filename: str, data: bytes, columns: dict | None) -> str:
    """Parses an uploaded file (DataError on a bad one) and returns its source key for this session."""
    key = upload_key(filename, data, columns)
    load_uploaded(key, filename, data, columns)
    st.session_state.setdefault("upload_paths", {})[key] = str(_keep_upload(key, filename, data))
    st.session_state.setdefault("upload_columns", {})[key] = columns
    return key


def _keep_upload(key: str, filename: str, data: bytes) -> Path:
    from ncf.data.cache import cache_dir

    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:80].lstrip(".") or "upload.csv"
    folder = cache_dir() / "uploads" / key.removeprefix(UPLOAD_PREFIX)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if not path.exists():
        tmp = folder / f".{safe}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def upload_key(filename: str, data: bytes, columns: dict | None) -> str:
    h = hashlib.sha256(data)
    h.update(json.dumps([filename, columns or {}], sort_keys=True).encode())
    return f"{UPLOAD_PREFIX}{h.hexdigest()[:20]}"


def is_available(source: str) -> bool:
    """True when loading `source` needs no download (so pages may load it without asking)."""
    if source == "synthetic" or source.startswith(UPLOAD_PREFIX):
        return True
    try:
        from ncf.data import release_status

        status = release_status(source)
    except (ImportError, NCFError):
        return False
    return bool(status.get("cached") or status.get("local"))


def current_dataset():
    """The session's dataset, or None when it still has to be downloaded on the Data page."""
    source = st.session_state.get("source", "synthetic")
    if source.startswith(UPLOAD_PREFIX):
        try:
            return load_uploaded(source)
        except NCFError:
            st.session_state.source = "synthetic"
            source = "synthetic"
    if not is_available(source):
        return None
    return load_dataset(source)


def data_source_for_jobs(source: str) -> str:
    """What a training job (another process) loads: the name, or the uploaded file's cached path."""
    if source.startswith(UPLOAD_PREFIX):
        path = st.session_state.get("upload_paths", {}).get(source)
        if not path:
            raise ConfigError("The uploaded file is no longer available; upload it again on the Data page.")
        return path
    return source


@st.cache_resource(max_entries=8, show_spinner="Splitting into train and test…")
def _split(source: str, kind: str, seed: int, n_negatives: int, test_fraction: float, validation: bool, _ds):
    from ncf.data import make_split

    return make_split(_ds, kind=kind, seed=seed, n_negatives=n_negatives, test_fraction=test_fraction,
                      validation=validation)


def current_split():
    ds = current_dataset()
    if ds is None:
        return None
    s = settings()
    return _split(s["source"], s["split"], int(s["data_seed"]), int(s["test_negatives"]),
                  float(s["test_fraction"]), _validation(s), ds)


# ---------------------------------------------------------------- runs and jobs


@st.cache_resource(max_entries=8, show_spinner="Loading the run…")
def load_run(run_id: str):
    """A saved run, loaded once per server and shared read-only."""
    from ncf.runs import load_run as _load

    return _load(run_id)


def list_runs():
    from ncf.runs import list_runs as _list

    return _list()


def current_run():
    """The session's chosen run (loaded), or None."""
    run_id = st.session_state.get("run_id")
    if not run_id:
        return None
    try:
        return load_run(run_id)
    except NCFError as e:
        st.session_state.run_id = None
        st.warning(plain(f"The run {run_id} could not be loaded: {e}"))
        return None


def runner():
    from ncf.jobs import get_runner

    return get_runner()


def ready_to_train(what: str):
    """(run config, dataset, job runner) for a page that starts jobs. Otherwise the page says why and
    stops: settings that cannot be trained, no dataset loaded, or no runner ("<what> not available on
    this server", e.g. models/ unwritable; `what` is "Training is", "Sweeps are"). The rest of the app
    keeps working."""
    try:
        cfg = run_config()
    except ConfigError as e:
        st.error(plain(f"The settings cannot be trained: {e}"))
        st.page_link("app_pages/model.py", label="Fix them on the Model page", icon=":material/arrow_back:")
        st.stop()
    ds = current_dataset()
    if ds is None:
        st.info("Load the dataset on the Data page first.")
        st.stop()
    try:
        jobs = runner()
    except NCFError as e:
        st.error(plain(f"{what} not available on this server: {e}"))
        st.stop()
    return cfg, ds, jobs


XSRF_COOKIE = "_streamlit_xsrf"


def _browser_token(cookie: str) -> bytes | None:
    """The token inside Streamlit's XSRF cookie ("2|mask|masked token|time", re-masked on every
    response, so only the unmasked token is stable); None when the cookie is not of that form."""
    parts = cookie.split("|")
    if len(parts) != 4 or parts[0] != "2":
        return None
    try:
        mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    if len(mask) != 4 or not masked:
        return None
    return bytes(b ^ mask[i % 4] for i, b in enumerate(masked))


def owner() -> str:
    """Who this session is, for jobs and runs: one id per browser (from the XSRF cookie the server
    gave it, so a reload of the page is still its owner; a ?job= link opened elsewhere is not), or
    the session id where there is no such cookie. Only a hash is stored: the token itself guards
    uploads against cross-site requests and must not be written into job files."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    try:
        cookie = st.context.cookies.get(XSRF_COOKIE)
    except Exception:  # noqa: BLE001 - no request context (bare mode, AppTest)
        cookie = None
    token = _browser_token(cookie) if cookie else None
    if token:
        return "browser-" + hashlib.sha256(b"ncf-lab-owner|" + token).hexdigest()[:24]
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else "local"


def can_delete_run(run_id: str) -> bool:
    """Saved runs are shared for reading; only the session (browser) whose job made a run may delete
    it from the app. Runs from the CLI, or whose job record was pruned, are left to the server's
    operator (python -m ncf runs --delete ID)."""
    try:
        return runner().owner_of_run(run_id) == owner()
    except NCFError:
        return False


def active_job_id() -> str | None:
    """The newest of this session's jobs that is still queued or running."""
    ids = st.session_state.get("job_ids") or []
    if not ids:
        return None
    try:
        r = runner()
    except (ImportError, NCFError):  # no runner (e.g. models/ unwritable): the Train page says why
        return None
    for job_id in reversed(ids):
        try:
            if r.status(job_id, events=False).state in ("queued", "running"):
                return job_id
        except NCFError:
            continue
    return None


# ---------------------------------------------------------------- sidebar


@st.cache_resource
def device_label() -> str:
    from ncf.device import pick_device

    return str(pick_device("auto"))


def sidebar() -> None:
    """What is loaded, what is selected, where it runs: always visible."""
    ss = st.session_state
    with st.sidebar:
        st.markdown("### :material/movie: NCF Lab")
        st.caption("Neural Collaborative Filtering, hands on")
        box = st.container(border=True)
        source = ss.source
        label = "your upload" if source.startswith(UPLOAD_PREFIX) else source
        ds = None
        try:
            ds = current_dataset()
        except NCFError as e:
            st.error(plain(e))
        with box:
            if ds is not None:
                st.markdown(f"**Dataset** · {label}")
                st.caption(f"{ds.n_users:,} users · {ds.n_items:,} items · {ds.n_interactions:,} interactions")
            else:
                st.markdown(f"**Dataset** · {label} (not downloaded yet)")
            run = ss.run_id
            if run:
                try:
                    name = load_run(run).name
                except NCFError:
                    name = ""
                st.markdown("**Run**")
                st.text(name or run)  # run names are the user's text: shown as text, never as markup
                if name:
                    st.caption(run)
            else:
                st.markdown("**Run** · none yet")
            st.markdown(f"**Device** · `{device_label()}`")
            active = active_job_id()
            if active:
                try:
                    yours = runner().status(active, events=False).owner == owner()
                except NCFError:
                    yours = False
                st.caption(":material/directions_run: " + ("A training job of yours is in progress." if yours
                                                            else "You are watching a training job in progress."))
        for warning in ss.url_warnings:
            st.warning(warning)
        ss.url_warnings = []  # said once is enough


def run_picker(label: str = "Run") -> object | None:
    """A select box over the saved runs (current one first); returns the loaded run or None."""
    try:
        infos = [r for r in list_runs() if not r.error]
    except NCFError as e:
        st.error(plain(e))
        return None
    if not infos:
        st.info("No saved runs yet: train a model on the Train page first.")
        st.page_link("app_pages/train.py", label="Go to Train", icon=":material/arrow_forward:")
        return None
    infos.sort(key=lambda r: r.created, reverse=True)
    ids = [r.id for r in infos]
    labels = {r.id: f"{r.name or r.id} · {r.config.get('model', {}).get('model', '?')} on "
                    f"{_source_label(r.config.get('data', {}).get('source', '?'))}" for r in infos}
    current = st.session_state.run_id if st.session_state.run_id in ids else ids[0]
    chosen = st.selectbox(label, ids, index=ids.index(current), format_func=labels.get,
                          help="Saved runs are shared by everyone using this server.")
    if chosen != st.session_state.run_id:
        st.session_state.run_id = chosen
    return load_run(chosen)


def _source_label(source: str) -> str:
    """A run's data source for display: uploads are cache paths; show just the file name."""
    return source.replace("\\", "/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------- describing runs and metrics


def describe_config(cfg, ds_label: str, batch: str | None = None, events: list[dict] | None = None) -> str:
    """One line of markdown naming what a configuration trains. With a job's `events`, the epochs
    and optimiser each stage actually ran (a pre-trained NeuMF runs three stages; a stopped run
    fewer epochs than planned) replace the planned ones."""
    m, t = cfg.model, cfg.train
    implicit = m.resolved_objective == "implicit"
    parts = [f"**{m.model.upper()}**" + (" with GMF and MLP pre-training" if m.pretrain else "")
             + f" on **{plain(ds_label)}**", f"{m.resolved_objective} objective"]
    runs = train_events.stages(events or [])
    if runs:
        stages = []
        for run in runs:
            s, ran = run.start, run.epochs_run
            what = f"{ran} of {s.epochs} epochs" if ran != s.epochs else f"{ran} epochs"
            lr = f" · lr {s.lr:g}" if isinstance(s.lr, int | float) else ""
            stage = f"{s.stage}: " if len(runs) > 1 and s.stage else ""
            stages.append(f"{stage}{what} · batch {s.batch_size}{lr} · {s.optimizer}")
        parts.append(" → ".join(stages))
    elif m.pretrain:
        parts.append(pipeline_plan(t, m.resolved_objective))
        if batch:
            parts.append(batch)
    else:
        epochs = "the recipe's epochs" if t.epochs is None else f"{t.epochs} epochs"
        parts.append(epochs)
        if batch:
            parts.append(batch)
        if t.lr is not None:
            parts.append(f"lr {t.lr:g}")
        if t.optimizer:
            parts.append(t.optimizer)
    if implicit and m.model != "pop":
        parts.append(f"{t.n_negatives} negatives per positive")
    return " · ".join(parts)


@st.cache_resource(max_entries=8, show_spinner="Scoring the most-popular baseline…")
def _baseline(data_json: str) -> dict:
    from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from ncf.data import load_split
    from ncf.train import train

    data = DataConfig.from_dict(json.loads(data_json))
    split = load_split(data, "implicit")
    cfg = RunConfig(data=data, model=ModelConfig(model="pop"), train=TrainConfig(epochs=1, device="cpu"))
    return dict(train(cfg, split).metrics)


def baseline_metrics(config: dict | None) -> dict:
    """The most-popular baseline's test metrics on a run's own data and split ({} when it does not
    apply: rating prediction, or data that cannot be read here)."""
    try:
        if not config or config.get("model", {}).get("model") == "pop":
            return {}
        from ncf.config import ModelConfig

        if ModelConfig.from_dict(config.get("model", {})).resolved_objective != "implicit":
            return {}
        return _baseline(json.dumps(config.get("data", {}), sort_keys=True))
    except (NCFError, OSError, ValueError):
        return {}


def metric_tiles(metrics: dict, baseline: dict | None = None, negatives: int | None = 99,
                 max_tiles: int = 5) -> None:
    """The headline test metrics as tiles with readable names, a tooltip each, the most-popular
    baseline's figure as the delta, and missing values shown as missing."""
    from ncf.labels import SAMPLED_VS_FULL, higher_is_better, is_rating_metric, metric_help, metric_label

    rating = [k for k in metrics if is_rating_metric(k) and not k.startswith("val_")]
    ranking = [k for k in ("hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10") if k in metrics]
    keys = (rating or ranking)[:max_tiles]
    if not keys:
        return
    cols = st.columns(len(keys))
    for col, key in zip(cols, keys, strict=True):
        value = metrics.get(key)
        base = (baseline or {}).get(key)
        delta = None
        if isinstance(value, int | float) and isinstance(base, int | float):
            delta = f"{value - base:+.4f} vs most popular ({base:.4f})"
        col.metric(metric_label(key, negatives), "–" if value is None else f"{value:.4f}", delta=delta,
                   delta_color="normal" if higher_is_better(key) else "inverse",
                   help=metric_help(key, negatives) + ("" if value is not None else
                                                       " Missing: the run ended before it was computed."))
    if "hr@10" in keys and any(k.startswith("full_") for k in keys):
        with st.expander("Why is the sampled HR@10 so much higher than the full-ranking recall?"):
            st.write(SAMPLED_VS_FULL.format(neg=negatives or "a few"))
