"""Hyper-parameter search: an Optuna study over ranges of settings, its trials through the shared job
pool like a sweep's runs, each judged on the validation hold-out; the chosen trial's test figures are
shown once, when the search has ended. The logic is ncf.search; this page lays it out."""

import streamlit as st

import appstate
from app_pages import PAGES
from ncf import registry, search, sweeps
from ncf.errors import ConfigError, NCFError
from ncf.experiments import max_runs
from ncf.labels import metric_label

ss = st.session_state
st.header("Hyper-parameter search")
REFRESH_SECONDS = 1.0


def label(name: str) -> str:
    return sweeps.SWEEPABLE[name].label if name in sweeps.SWEEPABLE else name


base, ds, runner = appstate.ready_to_train("Searches are")
st.caption("Optuna's TPE sampler proposes each run from the ones before it. Every run holds out each user's "
           "second-latest item and is judged on it (validation HR@10); the test items are read once, for the "
           "chosen run, when the search has ended. Fixed-grid sweeps are on the "
           "Experiments page.")
st.page_link(PAGES.experiments, label="Sweeps (Experiments)", icon=":material/science:")

# ---------------------------------------------------------------- a new search
with st.expander("New search", expanded=not ss.get("search_id"), icon=":material/travel_explore:"):
    st.caption("Everything not searched is as on the Data and Model pages: "
               + appstate.describe_config(base, ds_label=ds.name, batch=appstate.batch_label(base)) + ".")
    choices = sweeps.variants()
    model = st.selectbox("Model", choices, index=choices.index(base.model.model) if base.model.model in choices else 0,
                         format_func=lambda name: registry.REGISTRY[name].label, key="search_model")
    names = st.multiselect("Settings to search", list(sweeps.SWEEPABLE), default=["factors", "lr"], format_func=label,
                           key="search_params")
    ranges, problems = [], []
    for name in names:
        low0, high0, log0 = search.DEFAULT_RANGES.get(name, (0.0, 1.0, False))
        c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        low = c1.text_input(f"{label(name).capitalize()} from", f"{low0:g}", key=f"search_low_{name}")
        high = c2.text_input("to", f"{high0:g}", key=f"search_high_{name}")
        log = c3.checkbox("log scale", log0, key=f"search_log_{name}")
        try:
            ranges.append(search.setting_range(name, low, high, log))
        except ConfigError as e:
            problems.append(appstate.plain(e))
    c1, c2 = st.columns([1, 2])
    budget = c1.number_input("Budget (runs)", min_value=1, max_value=max_runs(), value=min(10, max_runs()),
                             key="search_budget", help=f"A session's search is capped at {max_runs()} runs here.")
    name = c2.text_input("Search name", key="search_name", max_chars=60, placeholder="e.g. neumf on ml-100k")
    for p in problems:
        st.error(p)
    if not names:
        st.info("Choose at least one setting to search.")
    if st.button("Start search", type="primary", icon=":material/play_arrow:", disabled=bool(problems or not ranges)):
        try:
            sw = search.start_search(runner, base, model, ranges, int(budget), owner=appstate.owner(), name=name)
        except NCFError as e:
            st.error(appstate.plain(e))
        else:
            ss.search_id = sw.id
            st.rerun()

# ---------------------------------------------------------------- choosing a search
found = [s for s in sweeps.list_sweeps(runner.models_dir) if s.is_search]
if not found:
    st.info("No searches yet: choose a model, settings and their ranges above, then **Start search**.")
    st.stop()
ids = [s.id for s in found]
titles = {s.id: f"{s.name} · {s.extra['search']['budget']} runs · started {s.created[:16].replace('T', ' ')}"
          for s in found}
if ss.get("search_id") not in ids:
    ss.search_id = ids[0]
ss.search_id = st.selectbox("Search", ids, index=ids.index(ss.search_id), format_func=titles.get)
search_id = ss.search_id


def live_view() -> None:
    sw = sweeps.load_sweep(runner.models_dir, search_id)
    budget = sw.extra["search"]["budget"]
    st.markdown(f"#### {appstate.plain(sw.name)} · {sw.state.capitalize()}")
    st.progress(sw.n_finished / budget, text=f"{sw.n_finished} of {budget} runs finished")
    if sw.active:
        st.button("Stop search", icon=":material/stop:", key="stop_search", on_click=sweeps.stop_sweep,
                  args=(runner, sw.id), help="Stops the run in progress (it is saved) and starts no more.")
    if sw.note:
        st.caption(appstate.plain(sw.note))
    if sw.error:
        st.error(appstate.plain(sw.error))
    rows = search.trial_rows(sw, runner.models_dir)
    if rows:
        st.dataframe(rows, hide_index=True, key="search_trials", height=min(400, 38 + 35 * len(rows)))
    if not sw.active and ss.get("search_settled") != sw.id:
        ss.search_settled = sw.id
        st.rerun(scope="app")  # the outcome below needs a whole-page run


sw = sweeps.load_sweep(runner.models_dir, search_id)
with st.container(border=True, key="search_shown"):
    st.fragment(live_view, run_every=REFRESH_SECONDS if sw.active else None)()
if sw.active:
    st.stop()  # the test figures wait until the search has ended

# ---------------------------------------------------------------- the outcome, once
chosen = search.outcome(sw, runner.models_dir)
if chosen is None:
    st.info("No run of this search finished, so there is nothing to choose.")
    st.stop()
values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in chosen["values"].items())
st.success(f"Chosen on the validation hold-out: trial {chosen['trial']} ({values}), validation HR@10 "
           f"{chosen['val_hr@10']:.4f}.", icon=":material/check_circle:")
st.markdown("**The chosen run's test figures, read once now that the search has ended**")
negatives = sw.base_config.data.test_negatives
test = chosen["test_metrics_read_once"]
cols = st.columns(max(1, len(test)))
for col, (metric, value) in zip(cols, test.items(), strict=False):
    col.metric(metric_label(metric, negatives), f"{value:.4f}")
st.caption("These are the only test figures of this search: reading the test items to compare trials would make "
           "them a second validation set, and the figures above an optimistic estimate.")
if st.button("Open the chosen run", icon=":material/open_in_new:", key="open_chosen"):
    ss.run_id = chosen["run"]
    st.rerun()
if ss.get("run_id") == chosen["run"]:
    c1, c2 = st.columns(2)
    c1.page_link(PAGES.recommend, label="Its recommendations", icon=":material/recommend:")
    c2.page_link(PAGES.compare, label="Compare runs", icon=":material/compare_arrows:")
