"""Train: submit the configured model to the shared job runner and watch it learn, live."""

import contextlib
import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

import appstate
from ncf import plots
from ncf.errors import ConfigError, NCFError

ss = st.session_state
st.header("Train")
# The live view paces itself on the server: it draws, then naps until the job has news (a new
# state, queue position or event) and redraws. A browser timer alone fired regardless of how long
# each redraw took, and with ten or more sessions on two cores pages stopped updating (issue 6);
# redrawing only on news also spares the server and the browsers the identical redraws of a job
# that waits in the queue. The browser's timer (KICK_SECONDS) only starts the view after a full
# run of the page (a fragment cannot rerun itself from there) and restarts it should it end.
POLL_SECONDS = 0.25  # how often the nap looks for news (reads one small file)
MIN_REDRAW_SECONDS = 1.0  # a running job's curves redraw at most once a second
IDLE_REDRAW_SECONDS = 15.0  # and at least this often, news or not
KICK_SECONDS = 3.0

try:
    cfg = appstate.run_config()
except ConfigError as e:
    st.error(appstate.plain(f"The settings cannot be trained: {e}"))
    st.page_link("app_pages/model.py", label="Fix them on the Model page", icon=":material/arrow_back:")
    st.stop()
ds = appstate.current_dataset()
if ds is None:
    st.info("Load the dataset on the Data page first.")
    st.stop()

m, t = cfg.model, cfg.train
pretrain = " with GMF and MLP pre-training" if m.pretrain else ""
st.write(f"**{m.model.upper()}**{pretrain} on **{appstate.plain(ds.name)}** ({ds.n_interactions:,} interactions) · "
         f"{m.resolved_objective} objective · {t.epochs} epochs · {appstate.batch_label(cfg)} · lr {t.lr:g} · "
         f"{t.optimizer}")
try:
    runner = appstate.runner()
except NCFError as e:  # e.g. models/ unwritable: say so, the rest of the app keeps working
    st.error(appstate.plain(f"Training is not available on this server: {e}"))
    st.stop()
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
name = c1.text_input("Run name (shown to everyone comparing runs)", key="run_name", max_chars=60,
                     placeholder=f"{m.model}-{ds.name}")
if c2.button("Train", type="primary", icon=":material/play_arrow:", width="stretch"):
    name = name.strip() or f"{m.model}-{ds.name}"
    try:
        job_id = runner.submit(cfg.replace(name=name), owner=appstate.owner(), name=name)
    except NCFError as e:
        st.error(appstate.plain(e))
    else:
        ss.job_ids = [*ss.job_ids, job_id]
        ss.watch_job = job_id
        appstate.sync_query_params()

if not ss.job_ids:
    st.info("Press **Train**: the model trains in a worker process, so you can keep using the app. "
            "Loss and metrics appear here as it learns.")
    st.stop()


def _label(job_id: str) -> str:
    """Stable text per job (a select box's options must not change while the job runs)."""
    try:
        name = runner.status(job_id, events=False).name
    except NCFError:
        name = ""
    return f"{name} · {job_id}" if name else job_id


if len(ss.job_ids) > 1:
    watched = ss.get("watch_job") if ss.get("watch_job") in ss.job_ids else ss.job_ids[-1]
    ss.watch_job = st.selectbox("Job", list(reversed(ss.job_ids)), index=list(reversed(ss.job_ids)).index(watched),
                                format_func=_label)
job_id = ss.get("watch_job") if ss.get("watch_job") in ss.job_ids else ss.job_ids[-1]


def _fmt_seconds(s) -> str:
    if s is None:
        return "–"
    s = int(round(float(s)))
    return f"{s // 60}:{s % 60:02d}"


def live_view() -> None:
    try:
        status = runner.status(job_id)
    except NCFError as e:
        st.error(appstate.plain(e))
        return
    events = status.events or []
    last_batch = next((e for e in reversed(events) if e.get("event") in ("batch", "epoch")), {})
    start = next((e for e in reversed(events) if e.get("event") == "start"), {})
    done = next((e for e in reversed(events) if e.get("event") == "done"), None)

    head = st.columns([2, 1, 1, 1, 1])
    state = status.state
    icon = {"queued": ":material/hourglass_top:", "running": ":material/directions_run:",
            "done": ":material/check_circle:", "stopped": ":material/stop_circle:", "failed": ":material/error:",
            "interrupted": ":material/warning:"}.get(state, "")
    head[0].markdown(f"### {icon} {state.capitalize()}")
    if state == "queued":
        head[0].caption(f"Position {status.position} in the queue" if status.position else "Starting…")
    head[1].metric("Samples/s", f"{last_batch.get('samples_per_second', 0):,.0f}" if last_batch else "–")
    head[2].metric("Elapsed", _fmt_seconds(last_batch.get("elapsed") if last_batch else None))
    head[3].metric("Remaining", _fmt_seconds(last_batch.get("eta")) if state == "running" else "–")
    head[4].metric("Device", str(start.get("device", "–")))
    if state == "running" and last_batch:
        epochs = int(start.get("epochs") or 1)
        epoch = int(last_batch.get("epoch", 1))
        frac = (epoch - 1 + last_batch.get("step", 0) / max(1, last_batch.get("steps", 1))) / epochs
        if last_batch.get("event") == "epoch":
            frac = epoch / epochs
        stage = f" ({last_batch.get('stage')})" if m.pretrain and last_batch.get("stage") else ""
        st.progress(min(1.0, max(0.0, frac)), text=f"epoch {epoch} of {epochs}{stage}")
    if state in ("queued", "running"):
        st.button("Stop", icon=":material/stop:", key=f"stop_{job_id}", on_click=runner.stop, args=(job_id,),
                  help="Stops after the current step; what was learned so far is saved as a run.")
    if status.error:
        st.error(appstate.plain(status.error))
    if any(e.get("event") in ("batch", "epoch") for e in events):
        st.plotly_chart(plots.training_curves(events), width="stretch", key="live_curves")
    elif state in ("queued", "running"):
        waiting = next((e.get("message") for e in reversed(events) if e.get("event") == "job"), None)
        st.info(f"{waiting or 'Starting a worker process'}… the curves appear with the first batches.",
                icon=":material/hourglass_top:")
    if done:
        metrics = done.get("metrics") or {}
        if metrics:
            cols = st.columns(min(6, len(metrics)))
            for col, (k, v) in zip(cols, list(metrics.items())[:6], strict=False):
                col.metric(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        kept = done.get("best_epoch")
        if kept is not None and kept != done.get("epochs"):
            what = "the model as initialised" if kept == 0 else f"epoch {kept} of {done.get('epochs')}"
            st.caption(f"Kept {what}: it ranked the validation items best (dotted curves). The figures "
                       "above are its test metrics.")
    if state not in ("queued", "running") and ss.get("settled") != job_id:
        # The job ended while we watched: make its run the current one and redraw the whole page
        # once (the sidebar shows the new run, and the live refresh stops).
        ss.settled = job_id
        if status.run_id:
            ss.run_id = status.run_id
        st.rerun(scope="app")
    if state in ("done", "stopped") and status.run_id:
        st.success(f"Saved as run {status.run_id}.")
        st.page_link("app_pages/recommend.py", label="See its recommendations", icon=":material/arrow_forward:")
        st.page_link("app_pages/embeddings.py", label="Look at its embeddings", icon=":material/scatter_plot:")
    ctx = get_script_run_ctx()
    if state in ("queued", "running") and ctx is not None and ctx.fragment_ids_this_run:
        _nap_until_news(job_id, (state, status.position, status.last_event))
        st.rerun(scope="fragment")


def _nap_until_news(job_id: str, shown: tuple) -> None:
    started = time.monotonic()
    while (waited := time.monotonic() - started) < IDLE_REDRAW_SECONDS:
        time.sleep(POLL_SECONDS)
        # Reading session state is one of Streamlit's yield points: a click that arrived meanwhile
        # (Stop, another page, the browser's timer) takes over this run here, without waiting.
        _ = "watch_job" in ss
        if waited < MIN_REDRAW_SECONDS:
            continue
        try:
            now = runner.status(job_id, events=False)
        except NCFError:
            return
        if (now.state, now.position, now.last_event) != shown:
            return


active = False
with contextlib.suppress(NCFError):
    active = runner.status(job_id).state in ("queued", "running")
st.fragment(live_view, run_every=KICK_SECONDS if active else None)()

if len(ss.job_ids) > 1:
    with st.expander("This session's jobs"):
        rows = []
        for j in reversed(ss.job_ids):
            try:
                s = runner.status(j)
            except NCFError:
                continue
            rows.append({"job": s.id, "state": s.state, "queue position": s.position or None, "run": s.run_id})
        st.dataframe(rows, hide_index=True, width="stretch")
