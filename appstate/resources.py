"""What the sessions of one server share: parsed datasets, splits and loaded runs (st.cache_resource,
read-only), the job runner, and who a session is for the jobs and runs it owns.

Session state holds only the handles (a source key, a run id, job ids); the objects they name live
here, once per server.
"""

from __future__ import annotations

import hashlib
import json

import streamlit as st

from appstate.session import UPLOAD_PREFIX, settings, uses_validation
from ncf.errors import ConfigError, NCFError

# ---------------------------------------------------------------- data


@st.cache_resource(max_entries=6, show_spinner="Loading the dataset…")
def load_dataset(source: str):
    """A named source (synthetic or a MovieLens release), parsed once per server."""
    import ncf.data

    return ncf.data.load(source)


@st.cache_resource(max_entries=16, show_spinner=False)
def load_uploaded(key: str, _filename: str = "", _data: bytes = b"", _columns: dict | None = None):
    """An uploaded file, parsed once per content+column choice (the key is their hash).

    The bytes are also kept in the cache folder (ncf.data.uploads), because a training job is
    another process and loads its data by path."""
    from ncf.data import load, load_upload

    if not _data:  # the parsed copy was evicted: read the kept file again
        path = st.session_state.get("upload_paths", {}).get(key)
        if not path:
            raise NCFError("The uploaded file is no longer available (the server restarted); upload it again.")
        return load(path, columns=st.session_state.get("upload_columns", {}).get(key))
    return load_upload(_filename, _data, columns=_columns)


def upload_key(filename: str, data: bytes, columns: dict | None) -> str:
    """This session's source key for an upload: the content hash of ncf.data.uploads."""
    from ncf.data.uploads import upload_key as content_key

    return UPLOAD_PREFIX + content_key(filename, data, columns)


def open_upload(filename: str, data: bytes, columns: dict | None) -> str:
    """Parses an uploaded file (DataError on a bad one) and returns its source key for this session."""
    from ncf.data.uploads import keep_upload

    key = upload_key(filename, data, columns)
    load_uploaded(key, filename, data, columns)
    st.session_state.setdefault("upload_paths", {})[key] = str(keep_upload(filename, data, columns))
    st.session_state.setdefault("upload_columns", {})[key] = columns
    return key


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
    from ncf.data.split_cache import cached_split

    # Read back from disk where this data and these settings were split before (a fresh server).
    return cached_split(_ds, kind=kind, seed=seed, n_negatives=n_negatives, test_fraction=test_fraction,
                        validation=validation)


def current_split():
    ds = current_dataset()
    if ds is None:
        return None
    s = settings()
    return _split(s["source"], s["split"], int(s["data_seed"]), int(s["test_negatives"]),
                  float(s["test_fraction"]), uses_validation(s), ds)


# ---------------------------------------------------------------- runs and jobs


def load_run(run_id: str):
    """A saved run, loaded once per server and shared read-only: through the core's one cache of
    loaded runs (ncf.runs), which a deletion or a changed folder already invalidates."""
    from ncf.runs import load_run as load

    with st.spinner("Loading the run…"):
        return load(run_id)


def list_runs():
    from ncf.runs import list_runs as _list

    return _list()


def runner():
    from ncf.jobs import get_runner

    return get_runner()


XSRF_COOKIE = "_streamlit_xsrf"


def browser_token(cookie: str) -> bytes | None:
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
    token = browser_token(cookie) if cookie else None
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


@st.cache_resource
def device_label() -> str:
    from ncf.device import pick_device

    return str(pick_device("auto"))


# ---------------------------------------------------------------- the most-popular baseline


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
