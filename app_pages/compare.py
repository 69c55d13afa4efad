"""Compare: every saved run in one table, their curves overlaid, the popularity baseline, housekeeping."""

import contextlib

import pandas as pd
import streamlit as st

import appstate
from ncf import compare, events, labels, plots
from ncf.config import ModelConfig, TrainConfig
from ncf.errors import NCFError
from ncf.runs import delete_run, zip_run

ss = st.session_state
st.header("Compare runs")
try:
    infos = appstate.list_runs()
except NCFError as e:
    st.error(appstate.plain(e))
    st.stop()
if not infos:
    st.info("No saved runs yet: train a model on the Train page first.")
    st.stop()



def _row(r) -> dict:
    cfg = r.config or {}
    stages = compare.stage_epochs(compare.read_history(r.path)) if not r.error else []
    dataset, proto = compare.scope(cfg) if cfg else ("", "")
    return {"id": r.id, "name": r.name or r.id, "model": (cfg.get("model") or {}).get("model", ""),
            "dataset": dataset, "protocol": proto, "metrics": r.metrics or {}, "settings": compare.settings(cfg, stages),
            "seconds": r.train_seconds, "created": r.created, "device": r.device, "stopped": r.stopped,
            "cfg": cfg, "problem": r.error or ""}


rows = [_row(r) for r in sorted(infos, key=lambda r: r.created, reverse=True)]
good = [r for r in rows if not r["problem"]]

# ---------------------------------------------------------------- what to compare
# Figures compare only on one dataset under one test protocol (issue point 2): the page starts on the
# current dataset and its split, and a mixed selection is refused rather than drawn.
current_ds = compare.source_label(ss.source) if not ss.source.startswith(appstate.UPLOAD_PREFIX) else None
datasets = list(dict.fromkeys(r["dataset"] for r in good))
ALL = "all datasets"
default_ds = current_ds if current_ds in datasets else (datasets[0] if datasets else ALL)
c1, c2 = st.columns(2)
ds_choice = c1.selectbox("Dataset", [*datasets, ALL], index=[*datasets, ALL].index(default_ds),
                         help="Runs on different data are not comparable; the current dataset comes first.")
in_ds = good if ds_choice == ALL else [r for r in good if r["dataset"] == ds_choice]
protocols = list(dict.fromkeys(r["protocol"] for r in in_ds if r["model"] != "pop"))
current_proto = None
with contextlib.suppress(NCFError):
    current_proto = compare.protocol(appstate.run_config().to_dict())
default_proto = current_proto if current_proto in protocols else (protocols[0] if protocols else None)
ANY = "any protocol"
proto_choice = c2.selectbox("Test protocol", [*protocols, ANY],
                            index=[*protocols, ANY].index(default_proto) if default_proto else 0,
                            help="How the runs were tested (the split and the task). Figures from different "
                                 "protocols measure different things.")
scoped = in_ds if proto_choice == ANY else [r for r in in_ds if r["protocol"] == proto_choice]
runs = scoped
if not runs:
    st.info("No trained runs on this dataset under this protocol yet: train one on the Train page.")
keys = compare.metric_keys(runs[0]["cfg"]) if runs and proto_choice != ANY else (*compare.RANKING_KEYS,
                                                                                 *compare.RATING_KEYS)
negatives = runs[0]["cfg"].get("data", {}).get("test_negatives", 99) if runs else 99

table = pd.DataFrame([{"name": r["name"], "model": r["model"],
                       **{k: r["metrics"].get(k) for k in keys},
                       "epochs run": r["settings"].get("epochs run", ""),
                       "train time": compare.readable_duration(r["seconds"]),
                       "created": compare.readable_time(r["created"]),
                       **({"dataset": r["dataset"]} if ds_choice == ALL else {}),
                       **({"protocol": r["protocol"]} if proto_choice == ANY else {}),
                       "id": r["id"]} for r in runs],
                     columns=["name", "model", *keys, "epochs run", "train time", "created", "id"])
table = table.dropna(axis=1, how="all")  # no empty columns
table = table.loc[:, [c for c in table.columns if c in keys or (table[c] != "").any()]]
st.caption("Saved runs are shared by everyone on this server. Select rows to compare them; blank metric "
           "cells were not computed (a stopped run has no full-ranking figures).")
picked = st.dataframe(
    table, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row", key="runs_table",
    column_config={"name": st.column_config.TextColumn("name", width="medium"),
                   "id": st.column_config.TextColumn("run id", width="small"),
                   **{k: st.column_config.NumberColumn(labels.metric_label(k, negatives, short=True), format="%.4f",
                                                       help=labels.metric_help(k, negatives)) for k in keys}})
selected = [table.iloc[i]["id"] for i in picked.selection.rows] if picked else []
if not selected:
    selected = [r["id"] for r in runs if r["model"] != "pop"][:3]
    if selected:
        st.caption(f"Showing the newest {len(selected)} of these runs; select rows to choose others.")
chosen = [r for r in runs if r["id"] in selected]

if chosen:
    st.subheader("How they differ")
    diff = compare.differing([r["settings"] for r in chosen])
    if diff:
        st.dataframe(pd.DataFrame([{"name": r["name"], "model": r["model"],
                                    **{k: r["settings"].get(k, "") for k in diff}} for r in chosen]),
                     hide_index=True, width="stretch", key="diff_table")
        st.caption("Only the settings that differ among the selected runs; a blank cell does not apply to "
                   "that model. 'recipe' is the engine's default for the model and data.")
    else:
        st.caption("The selected runs share every setting (only their names differ).")

    histories = {}
    for r in chosen:
        try:
            histories[r["name"]] = events.parse_all(appstate.load_run(r["id"]).history)
        except NCFError as e:
            st.warning(appstate.plain(f"{r['name']}: {e}"))
    curve_keys = sorted({k for h in histories.values() for e in h if isinstance(e, events.Epoch)
                         for k in e.metrics if not k.startswith("full_")} | {"train_loss"})
    first = next((k for k in keys if k in curve_keys), curve_keys[0])
    metric = st.selectbox("Curve", curve_keys, index=curve_keys.index(first),
                          format_func=lambda k: labels.metric_label(k, negatives))
    st.plotly_chart(plots.compare_curves(histories, metric), width="stretch")

    st.subheader("Against the most-popular baseline")
    refuse = compare.mixing_message([(r["dataset"], r["protocol"]) for r in chosen])
    if refuse:
        st.warning(refuse, icon=":material/block:")
    else:
        dataset, proto = chosen[0]["dataset"], chosen[0]["protocol"]
        ranking = compare.objective(chosen[0]["cfg"]) == "implicit"
        # one baseline per dataset and protocol: the newest
        pop = next((r for r in good if r["model"] == "pop" and (r["dataset"], r["protocol"]) == (dataset, proto)),
                   None) if ranking else None
        bars = pd.DataFrame([{"label": f"{r['name']} ({r['model']})", **{k: r["metrics"].get(k) for k in keys}}
                             for r in [*chosen, *([pop] if pop and pop not in chosen else [])]])
        if ranking:
            st.caption("Recommending the same popular items to everyone is the bar any model must clear.")
        st.plotly_chart(plots.metric_bars(bars, "label", list(keys), negatives=negatives), width="stretch")
        if ranking and pop is None:
            st.info(f"No most-popular baseline for {appstate.plain(dataset)} under this protocol yet.")
            if st.button("Add the most-popular baseline", icon=":material/add:"):
                first_cfg = appstate.load_run(chosen[0]["id"]).config
                base = first_cfg.replace(model=ModelConfig(model="pop"), train=TrainConfig(epochs=1),
                                         name=f"most popular ({dataset})")
                try:
                    job = appstate.runner().submit(base, owner=appstate.owner(), name=base.name)
                    with st.spinner("Counting what is popular…"):
                        status = appstate.runner().wait(job, timeout=120)
                except NCFError as e:
                    st.error(appstate.plain(e))
                else:
                    if status.error:
                        st.error(appstate.plain(status.error))
                    else:
                        st.rerun()

st.subheader("Download or delete")
ids = [r["id"] for r in rows]
c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
names = {r["id"]: r["name"] for r in rows}
target = c1.selectbox("Run", ids, format_func=lambda i: i if names[i] == i else f"{names[i]} · {i}")
c2.download_button("Download zip", data=lambda: zip_run(target), file_name=f"{target}.zip",
                   mime="application/zip", icon=":material/download:")
mine = appstate.can_delete_run(target)
if c3.button("Delete", icon=":material/delete:", key="delete_run", disabled=not mine,
             help=None if mine else "Only the session that trained this run can delete it; everyone can "
             "read, compare and download it. The server's operator can delete any run from the command line."):
    ss.confirm_delete = target
if ss.get("confirm_delete") == target and mine:
    st.warning("Delete this run for everyone on the server? This cannot be undone.")
    if st.button("Yes, delete it", type="primary"):
        try:
            delete_run(target)
        except NCFError as e:
            st.error(appstate.plain(e))
        else:
            if ss.run_id == target:
                ss.run_id = None
            ss.confirm_delete = None
            st.rerun()
