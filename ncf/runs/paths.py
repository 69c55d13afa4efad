"""Where runs live and what they may be called: the models folder, run ids (never a path), display names."""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from ncf.errors import RunError

TMP_PREFIX = ".tmp-"
MAX_NAME_CHARS = 80
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def models_dir() -> Path:
    """The folder of saved runs: $NCF_MODELS_DIR, else `models/` next to the `ncf` package."""
    env = os.environ.get("NCF_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def models_root(folder: str | os.PathLike | None) -> Path:
    """The models folder a call names (`models_dir=`), else the default one."""
    return Path(folder) if folder is not None else models_dir()


def validate_run_id(run_id: str) -> str:
    """`run_id` if it can only name a folder directly inside the models folder, else `RunError`.

    Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters, and
    no '..': no separators, no absolute paths, no hidden or temporary folders."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or ".." in run_id:
        shown = run_id if isinstance(run_id, str) else type(run_id).__name__
        raise RunError(f"{shown[:120]!r} is not a run id: expected letters, digits, '.', '_' or '-' "
                       f"(starting with a letter or digit, at most 100 characters, no '..').")
    return run_id


def run_path(run_id: str, folder: str | os.PathLike | None) -> Path:
    """The folder of a validated run id; its resolved path must stay inside the models folder
    (a symlink planted in models/ pointing elsewhere is refused too)."""
    root = models_root(folder)
    path = root / validate_run_id(run_id)
    resolved, root_resolved = path.resolve(), root.resolve()
    if resolved.parent != root_resolved:
        raise RunError(f"Run {run_id!r} points outside the models folder {root}; refusing to use it.")
    return path


def clean_name(name: str) -> str:
    """A display name as stored: any text, control characters turned into spaces, at most 80 characters.
    It is shown as text, never as HTML or a path, so nothing else needs escaping here."""
    text = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in str(name or ""))
    return " ".join(text.split())[:MAX_NAME_CHARS]


def run_ref(text: str) -> str | Path:
    """For command lines: a run id as is, or a `Path` when the text names an existing folder by path
    ('models/abc', '/tmp/run'). `load_run` treats a `str` as an id only (so a value from a URL can
    never become a path); callers that accept paths convert with this first."""
    if isinstance(text, str) and RUN_ID_RE.fullmatch(text) and ".." not in text:
        return text
    return Path(text)


def _slug(text: str, limit: int = 24) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:limit].strip("-") or "data"


def new_run_id(model: str, dataset: str, when: datetime | None = None) -> str:
    """A readable, sortable id such as '20261125-141502-neumf-synthetic-ab12'."""
    when = when or datetime.now(UTC)
    return validate_run_id(f"{when:%Y%m%d-%H%M%S}-{_slug(model, 12)}-{_slug(dataset)}-{secrets.token_hex(2)}")

