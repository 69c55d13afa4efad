"""Widgets the pages share: the sidebar's status box, the run picker, a configuration in one line,
the preset the settings come from, metric tiles, the guard before training, and user text made
safe for markdown."""

from __future__ import annotations

import re

import streamlit as st

from app_pages import PAGES
from appstate.configs import pipeline_plan, run_config
from appstate.resources import (
    active_job_id,
    current_dataset,
    device_label,
    list_runs,
    load_run,
    owner,
    runner,
)
from appstate.session import PRESET, PRESET_KEYS, UPLOAD_PREFIX, preset_changes
from ncf import events as train_events
from ncf import registry
from ncf.compare import source_label
from ncf.errors import ConfigError, NCFError

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """User-supplied text (a file name, a title) made safe to put inside Streamlit markdown: every
    markdown character is escaped, so it shows as typed and can never become a link or an image."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def ready_to_train(what: str):
    """(run config, dataset, job runner) for a page that starts jobs. Otherwise the page says why and
    stops: settings that cannot be trained, no dataset loaded, or no runner ("<what> not available on
    this server", e.g. models/ unwritable; `what` is "Training is", "Sweeps are"). The rest of the app
    keeps working."""
    try:
        cfg = run_config()
    except ConfigError as e:
        st.error(plain(f"The settings cannot be trained: {e}"))
        st.page_link(PAGES.model, label="Fix them on the Model page", icon=":material/arrow_back:")
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
        st.page_link(PAGES.train, label="Go to Train", icon=":material/arrow_forward:")
        return None
    infos.sort(key=lambda r: r.created, reverse=True)
    ids = [r.id for r in infos]
    labels = {r.id: f"{r.name or r.id} · {r.config.get('model', {}).get('model', '?')} on "
                    f"{source_label(r.config.get('data', {}).get('source', '?'))}" for r in infos}
    current = st.session_state.run_id if st.session_state.run_id in ids else ids[0]
    chosen = st.selectbox(label, ids, index=ids.index(current), format_func=labels.get,
                          help="Saved runs are shared by everyone using this server.")
    if chosen != st.session_state.run_id:
        st.session_state.run_id = chosen
    return load_run(chosen)


def preset_line() -> None:
    """Which named preset of ncf.config the settings come from, and where this session's settings
    differ from it (the Model page)."""
    with st.container(key="preset"):
        st.caption(f"**Preset: {plain(PRESET.label)}** · {plain(PRESET.description)}",
                   help=f"A named preset in ncf.config, from {PRESET.source}. The command line trains with it "
                        f"too: `python -m ncf train --preset {PRESET.name}`.")
        changes = preset_changes()
        if not changes:
            st.caption("Your settings are the preset's.")
            return
        st.caption("Your settings differ from it: " + ", ".join(
            f"{PRESET_KEYS[key]} {plain(_shown(key, value))} (preset: {plain(_shown(key, was))})"
            for key, value, was in changes) + ".")


def _shown(key: str, value: object) -> str:
    if key == "model":
        return registry.get(str(value)).label
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
