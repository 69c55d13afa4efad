"""Experiments: a grid of runs (models x one or two settings x seeds) through the shared job pool, watched
live, then read as the paper's Figures 4-7 (a metric against a setting), time against quality and a table."""

import streamlit as st

import appstate
from app_pages import PAGES
from ncf import plots, reference, registry, sweeps
from ncf.errors import ConfigError, NCFError
from ncf.experiments import max_runs, orderings_disagree
from ncf.labels import metric_label

ss = st.session_state
st.header("Experiments")
REFRESH_SECONDS = 1.0  # the live grid is a fragment rerun this often while the sweep runs (see the Train page)
NONE = "none"


def label(name: str) -> str:
    return sweeps.SWEEPABLE[name].label if name in sweeps.SWEEPABLE else name


def fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


base, ds, runner = appstate.ready_to_train("Sweeps are")
st.page_link(PAGES.search, label="Hyper-parameter search (Optuna): ranges and a budget of runs, chosen on "
             "validation", icon=":material/travel_explore:")

# ---------------------------------------------------------------- a new sweep
with st.expander("New sweep", expanded=not ss.get("sweep_id"), icon=":material/grid_on:"):
    st.caption("Everything not swept is as on the Data and Model pages: "
               + appstate.describe_config(base, ds_label=ds.name, batch=appstate.batch_label(base)) + ".")
    choices = sweeps.variants()
    models = st.multiselect("Models", choices, default=[m for m in ("gmf", "mlp", "neumf") if m in choices],
                            format_func=lambda name: registry.REGISTRY[name].label, key="sweep_models")
    c1, c2 = st.columns(2)
    p1 = c1.selectbox("Setting", list(sweeps.SWEEPABLE), format_func=label, key="sweep_p1")
    v1 = c1.text_input(f"Values of {label(p1)} (comma-separated)", sweeps.SWEEPABLE[p1].default, key=f"sweep_v1_{p1}")
    p2 = c2.selectbox("Second setting (optional)", [NONE, *(n for n in sweeps.SWEEPABLE if n != p1)],
                      format_func=label, key="sweep_p2")
    v2 = (c2.text_input(f"Values of {label(p2)} (comma-separated)", sweeps.SWEEPABLE[p2].default, key=f"sweep_v2_{p2}")
          if p2 != NONE else "")
    c3, c4 = st.columns([1, 2])
    seeds_text = c3.text_input("Seeds", "0", key="sweep_seeds",
                               help="Each configuration trains once per seed; the charts show the mean and the spread.")
    name = c4.text_input("Sweep name", key="sweep_name", max_chars=60, placeholder="e.g. factors on ml-100k")
    points = []
    try:
        params = {p1: sweeps.parse_values(p1, v1)}
        if p2 != NONE:
            params[p2] = sweeps.parse_values(p2, v2)
        seeds = sweeps.parse_seeds(seeds_text)
        points = sweeps.grid(base, models, params, seeds)
    except ConfigError as e:
        st.error(appstate.plain(e))
    if points:
        split = appstate.current_split()
        est = sweeps.estimate(points, split.n_train, sweeps.measured_rates(runner, base.data.source))
        m1, m2, m3 = st.columns(3)
        m1.metric("Runs", len(points), help=f"A session's sweep is capped at {max_runs()} runs on this server.")
        m2.metric("Estimated time", f"≈ {fmt_seconds(est.seconds)}")
        m3.metric("Training samples", f"{est.samples / 1e6:,.1f} M")
        how = []
        if est.measured:
            how.append(", ".join(f"{m} at {r:,.0f}" for m, r in est.measured.items())
                       + f" samples/s, measured start to finish on the newest finished run on {ds.name}")
        if est.assumed:
            how.append(f"{', '.join(est.assumed)} at an assumed {sweeps.DEFAULT_RATE:,.0f} samples/s plus "
                       f"{sweeps.OVERHEAD_SECONDS:.0f} s a run (no finished run on {ds.name} to measure)")
        st.caption(f"An estimate: {'; '.join(how)}. Runs go one at a time through the shared job pool, taking "
                   "turns with other sessions' runs, so a busy server takes longer.")
    if st.button("Start sweep", type="primary", icon=":material/play_arrow:", disabled=not points):
        try:
            sw = sweeps.start_sweep(runner, base, models, params, seeds, owner=appstate.owner(), name=name)
        except NCFError as e:
            st.error(appstate.plain(e))
        else:
            ss.sweep_id = sw.id
            st.rerun()

# ---------------------------------------------------------------- choosing a sweep
# Searches live on the Search page: this page's results would show every trial's test figures.
all_sweeps = [s for s in sweeps.list_sweeps(runner.models_dir) if not s.is_search]
if not all_sweeps:
    st.info("No sweeps yet: choose models, a setting and its values above, then **Start sweep**.")
    st.stop()
ids = [s.id for s in all_sweeps]
names = {s.id: f"{s.name} · {len(s.points)} runs · started {s.created[:16].replace('T', ' ')}" for s in all_sweeps}
if ss.get("sweep_id") not in ids:
    if ss.get("sweep_id"):
        st.warning("The sweep in the link is not on this server (removed, or another server's).")
    ss.sweep_id = ids[0]
ss.sweep_id = st.selectbox("Sweep", ids, index=ids.index(ss.sweep_id), format_func=names.get,
                           help="Sweeps are shared by everyone using this server, like runs.")
appstate.sync_query_params()
sweep_id = ss.sweep_id


def live_view() -> None:
    sw = sweeps.load_sweep(runner.models_dir, sweep_id)
    st.markdown(f"#### {appstate.plain(sw.name)} · {sw.state.capitalize()}")
    st.markdown(f"[Link to this sweep](?sweep={sw.id}) · {len(sw.points)} runs · started {sw.created[:19]} UTC")
    counts = {s: sum(1 for p in sw.points if p["state"] == s) for s in ("done", "stopped", "failed", "skipped")}
    told = ", ".join(f"{n} {'not run' if s == 'skipped' else s}" for s, n in counts.items() if n and s != "done")
    st.progress(sw.n_finished / max(1, len(sw.points)),
                text=f"{counts['done']} of {len(sw.points)} runs done" + (f" ({told})" if told else ""))
    if sw.active:
        st.button("Stop sweep", icon=":material/stop:", key="stop_sweep", on_click=sweeps.stop_sweep,
                  args=(runner, sw.id), help="Stops the run in progress (it is saved) and starts no more.")
    if sw.note:
        st.caption(appstate.plain(sw.note))
    if sw.error:
        st.error(appstate.plain(sw.error))
    rows, x = sweeps.chart_rows(sw, sweeps.sweep_rows(sw, runner.models_dir))
    st.dataframe(sweeps.point_states(runner, sw, rows), hide_index=True, key="sweep_grid",
                 height=min(400, 38 + 35 * len(sw.points)))
    if sw.active and rows:  # the figure fills in while the sweep runs; selecting points comes when it ends
        st.plotly_chart(plots.sweep_chart(rows, x or "model", "hr@10", series="series"), width="stretch",
                        key="live_chart")
    if not sw.active and ss.get("sweep_settled") != sw.id:
        ss.sweep_settled = sw.id
        st.rerun(scope="app")  # the results below need a whole-page run


sw = sweeps.load_sweep(runner.models_dir, sweep_id)
with st.container(border=True, key="sweep_shown"):
    st.fragment(live_view, run_every=REFRESH_SECONDS if sw.active else None)()

rows, x = sweeps.chart_rows(sw, sweeps.sweep_rows(sw, runner.models_dir))
if not rows:
    st.info("The results appear here as runs finish.")
    st.stop()
if sw.active:
    st.stop()  # the live view above draws the figure as it fills; the full results come when the sweep ends

# ---------------------------------------------------------------- results
opened = []
table_rows, rows = rows, [r for r in rows if not r.get("stopped")]
if len(rows) < len(table_rows):
    st.caption(f"{len(table_rows) - len(rows)} stopped run(s) trained fewer epochs than planned: they are in the "
               "table, not in the charts.")
kind = st.segmented_control("Metric", ["HR / Recall", "NDCG"], default="HR / Recall", key="sweep_metric")
sampled, full = ("ndcg@10", "full_ndcg@10") if kind == "NDCG" else ("hr@10", "full_recall@10")
negatives = sw.base_config.data.test_negatives
published = reference.published_for(sw.base["data"], models=set(sw.models))
left, right = st.columns(2)
for col, metric, pub in ((left, sampled, published), (right, full, ())):
    with col:
        st.markdown(f"**{metric_label(metric, negatives)}**")
        fig = plots.sweep_chart(rows, x or "model", metric, series="series", published=pub)
        event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode="points", key=f"chart_{metric}")
        for p in event.selection.points if event else []:
            name = fig.data[p["curve_number"]].name if p.get("curve_number") is not None else None
            opened += sweeps.runs_at(rows, name, x or "model", p.get("x"))
if published and x == "factors":
    st.caption(f"Dotted, hollow markers: published figures ({'; '.join(sorted({p.source for p in published}))}) on "
               f"{reference.PROTOCOL}. They were not measured here; the shared ML-1M copy may be partial.")
if orderings_disagree(rows, series="series", sampled=sampled, full=full):
    st.warning(f"The sampled metric ({negatives} negatives) and the full ranking order these models differently: "
               "sampled metrics can reverse the order of models (Krichene and Rendle, KDD 2020). Trust the "
               "full ranking for the order.", icon=":material/swap_vert:")
st.markdown("**Time against quality**")
hover = [k for k in (*sw.params, "seed") if k]
event = st.plotly_chart(plots.time_quality(rows, sampled, series="series", hover=hover), width="stretch",
                        on_select="rerun", selection_mode="points", key="chart_time")
opened += [p["customdata"] for p in (event.selection.points if event else []) if p.get("customdata")]
table = st.dataframe(table_rows, hide_index=True, on_select="rerun", selection_mode="single-row", key="sweep_table",
                     column_order=["model", *sw.params, "seed", sampled, full, "val_hr@10", "epochs", "train_seconds",
                                   "stopped", "run"])
opened += [table_rows[i]["run"] for i in table.selection.rows]
st.caption("Click a point of a chart or a row of the table to open its run on the other pages.")
if opened:
    run_id = opened[-1]
    if ss.run_id != run_id:
        ss.run_id = run_id
        st.rerun()  # the sidebar and the URL name the opened run
    st.success(f"Opened run {run_id}" + (f" (and {len(opened) - 1} more at that point: one per seed)"
                                         if len(set(opened)) > 1 else "") + ".")
    c1, c2, c3 = st.columns(3)
    c1.page_link(PAGES.recommend, label="Its recommendations", icon=":material/recommend:")
    c2.page_link(PAGES.embeddings, label="Its embeddings", icon=":material/scatter_plot:")
    c3.page_link(PAGES.compare, label="Compare runs", icon=":material/compare_arrows:")
