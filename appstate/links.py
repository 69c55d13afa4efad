"""Share links: the settings that differ from the defaults, mirrored into the address bar (with this
session's live job, run and sweep, so a reload comes back to them) and handed out as a link."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from appstate.resources import active_job_id
from appstate.session import SETTINGS, UPLOAD_PREFIX, settings


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
