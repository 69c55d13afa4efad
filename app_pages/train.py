"""Train: submit the configured model to the shared job runner and watch it learn, live."""

import contextlib

import streamlit as st

import appstate
from app_pages import PAGES
from ncf import events as ev
from ncf import plots
from ncf.compare import source_label
from ncf.config import RunConfig
from ncf.errors import NCFError

ss = st.session_state
st.header("Train")
# The live view is a fragment that the browser reruns every REFRESH_SECONDS while the job is queued
# or running: each run reads the job's small status files, draws and returns. A page that slept
# inside its own run while it waited for news was "running" all along, so Streamlit showed its
# running indicator and its own Stop button beside the app's (issue 14); a fragment run that ends
# within half a second never shows them.
REFRESH_SECONDS = 1.0

cfg, ds, runner = appstate.ready_to_train("Training is")

# ---------------------------------------------------------------- the next run (the form)
with st.container(border=True, key="next_run"):
    st.markdown("#### :material/tune: Next run")
    st.markdown(appstate.describe_config(cfg, ds_label=f"{ds.name} ({ds.n_interactions:,} interactions)",
                                         batch=appstate.batch_label(cfg)))
    st.caption("These are the settings on the Data and Model pages; change them there. They apply to the "
               "next run you start, not to a run already trained or training.")
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    name = c1.text_input("Run name (shown to everyone comparing runs)", key="run_name", max_chars=60,
                         placeholder=f"{cfg.model.model}-{ds.name}")
    if c2.button("Train", type="primary", icon=":material/play_arrow:", width="stretch"):
        name = name.strip() or f"{cfg.model.model}-{ds.name}"
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
    """Stable text per job (a select box's options must not change while the job runs): its run's
    name and when it was started. Users see runs only; the job id stays internal."""
    try:
        s = runner.status(job_id, events=False)
    except NCFError:
        return "a run that is no longer known"
    return f"{s.name or 'unnamed run'} · started {s.submitted[11:16]} UTC"


if len(ss.job_ids) > 1:
    watched = ss.get("watch_job") if ss.get("watch_job") in ss.job_ids else ss.job_ids[-1]
    ss.watch_job = st.selectbox("Run shown below", list(reversed(ss.job_ids)),
                                index=list(reversed(ss.job_ids)).index(watched), format_func=_label)
job_id = ss.get("watch_job") if ss.get("watch_job") in ss.job_ids else ss.job_ids[-1]


def _fmt_seconds(s) -> str:
    if s is None:
        return "–"
    s = int(round(float(s)))
    return f"{s // 60}:{s % 60:02d}"


def _negatives(cfg) -> int | None:
    return cfg.data.test_negatives if cfg is not None and cfg.data.split == "leave_one_out" else None


def _stop(job: str) -> None:
    """The Stop button: the runner refuses a job of another owner (a session passes its own id)."""
    try:
        runner.stop(job, owner=appstate.owner())
    except NCFError as e:
        ss.stop_error = str(e)


def live_view() -> None:
    try:
        status = runner.status(job_id)
    except NCFError as e:
        st.error(appstate.plain(e))
        return
    events = status.events or []
    typed = ev.parse_all(events)
    progress = ev.progress(typed)  # the summary the CLI's progress line shows too
    done = next((e for e in reversed(typed) if isinstance(e, ev.Done)), None)
    state = status.state
    try:
        shown_cfg = RunConfig.from_dict(status.config)
    except (NCFError, TypeError, KeyError, ValueError):
        shown_cfg = None

    icon = {"queued": ":material/hourglass_top:", "running": ":material/directions_run:",
            "done": ":material/check_circle:", "stopped": ":material/stop_circle:", "failed": ":material/error:",
            "interrupted": ":material/warning:"}.get(state, "")
    # What this run is, from its own settings: the form above may already describe another one.
    st.markdown(f"#### {icon} {appstate.plain(status.name or 'Unnamed run')} · {state.capitalize()}")
    if shown_cfg is not None:
        st.markdown(appstate.describe_config(shown_cfg, ds_label=source_label(shown_cfg.data.source),
                                             events=events))
    head = st.columns(4)
    if state == "queued":
        head[0].caption(f"Position {status.position} in the queue" if status.position else "Starting…")
    head[0].metric("Samples/s", f"{progress.samples_per_second:,.0f}" if progress.training else "–")
    head[1].metric("Elapsed", _fmt_seconds(progress.elapsed if progress.training else None))
    head[2].metric("Remaining", _fmt_seconds(progress.eta) if state == "running" and progress.training else "–")
    head[3].metric("Device", progress.device or "–")
    if state == "running" and progress.training:
        pretrained = shown_cfg is not None and shown_cfg.model.pretrain
        stage = f" ({progress.stage} stage)" if pretrained and progress.stage else ""
        st.progress(progress.fraction, text=f"epoch {progress.epoch} of {progress.epochs}{stage}")
    if state in ("queued", "running") and status.owner == appstate.owner():
        st.button("Stop training", icon=":material/stop:", key=f"stop_{job_id}", on_click=_stop,
                  args=(job_id,), help="Stops after the current step; what was learned so far is saved as a run.")
    elif state in ("queued", "running"):
        st.caption(":material/visibility: You are watching a run started in another session: only that "
                   "session can stop it.")
    if ss.get("stop_error"):
        st.error(appstate.plain(ss.pop("stop_error")))
    if status.error:
        st.error(appstate.plain(status.error))
    if progress.training:
        st.plotly_chart(plots.training_curves(events, negatives=_negatives(shown_cfg)), width="stretch", key="live_curves")
    elif state in ("queued", "running"):
        st.info(f"{progress.message or 'Starting a worker process'}… the curves appear with the first batches.",
                icon=":material/hourglass_top:")
    if done:
        appstate.metric_tiles(done.metrics, baseline=appstate.baseline_metrics(status.config),
                              negatives=_negatives(shown_cfg))
        kept = done.best_epoch
        if kept is not None and kept != done.epochs:
            what = "the model as initialised" if kept == 0 else f"epoch {kept} of {done.epochs}"
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
        st.page_link(PAGES.recommend, label="See its recommendations", icon=":material/arrow_forward:")
        st.page_link(PAGES.embeddings, label="Look at its embeddings", icon=":material/scatter_plot:")


active = False
with contextlib.suppress(NCFError):
    active = runner.status(job_id, events=False).state in ("queued", "running")
with st.container(border=True, key="run_shown"):
    st.fragment(live_view, run_every=REFRESH_SECONDS if active else None)()
