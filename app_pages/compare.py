"""Compare: every saved run in one table, their curves overlaid, the popularity baseline, housekeeping."""

import pandas as pd
import streamlit as st

import appstate
from ncf import plots
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

KEY_METRICS = ("hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10", "rmse")
rows = []
for r in sorted(infos, key=lambda r: r.created, reverse=True):
    model = r.config.get("model", {}) if r.config else {}
    train = r.config.get("train", {}) if r.config else {}
    row = {"name": r.name or r.id, "id": r.id, "dataset": appstate._source_label(r.config.get("data", {}).get("source", ""))
           if r.config else "", "model": model.get("model", ""), "factors": model.get("factors"),
           "layers": ",".join(map(str, model.get("layers") or [])) or "default", "epochs": train.get("epochs"),
           "lr": train.get("lr")}
    row.update({m: (r.metrics or {}).get(m) for m in KEY_METRICS})
    row.update({"seconds": r.train_seconds, "device": r.device, "created": r.created, "problem": r.error or ""})
    rows.append(row)
table = pd.DataFrame(rows)
table = table.dropna(axis=1, how="all")
st.caption("Saved runs are shared by everyone on this server. Select rows to overlay their curves.")
picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
                      key="runs_table", column_config={
                          "seconds": st.column_config.NumberColumn("train s", format="%.1f"),
                          **{m: st.column_config.NumberColumn(m, format="%.3f") for m in KEY_METRICS}})
selected = [table.iloc[i]["id"] for i in picked.selection.rows] if picked else []
good = [r for r in rows if not r["problem"]]
if not selected:
    selected = [r["id"] for r in good[:3]]

if selected:
    histories = {}
    for run_id in selected:
        try:
            run = appstate.load_run(run_id)
        except NCFError as e:
            st.warning(appstate.plain(f"{run_id}: {e}"))
            continue
        histories[f"{run.name or run.id}"] = run.history
    metric_names = sorted({k for h in histories.values() for e in h if e.get("event") == "epoch"
                           for k in (e.get("metrics") or {})} | {"train_loss"})
    metric = st.selectbox("Curve", metric_names, index=metric_names.index("hr@10") if "hr@10" in metric_names else 0)
    st.plotly_chart(plots.compare_curves(histories, metric), width="stretch")

    st.subheader("Against the most-popular baseline")
    st.caption("Recommending the same popular items to everyone is the bar any model must clear.")
    chosen = table[table["id"].isin(selected)]
    datasets = set(chosen["dataset"])
    pops = table[(table["model"] == "pop") & table["dataset"].isin(datasets) & ~table["id"].isin(selected)]
    side = pd.concat([chosen, pops]).drop_duplicates("id")
    side["label"] = side["name"].where(side["name"] != "", side["id"]) + " (" + side["model"] + ")"
    shown = [m for m in KEY_METRICS if m in side and side[m].notna().any() and m != "rmse"]
    if shown:
        st.plotly_chart(plots.metric_bars(side, "label", shown), width="stretch")
    if pops.empty and "pop" not in set(chosen["model"]):
        first = appstate.load_run(selected[0])
        st.info(f"No most-popular baseline for {appstate.plain(appstate._source_label(first.config.data.source))} yet.")
        if st.button("Add the most-popular baseline", icon=":material/add:"):
            base = first.config.replace(model=ModelConfig(model="pop"), train=TrainConfig(epochs=1),
                                        name=f"most popular ({chosen['dataset'].iloc[0]})")
            try:
                job = appstate.runner().submit(base, owner=appstate.owner(), name=base.name)
                with st.spinner("Counting what is popular…"):
                    status = appstate.runner().wait(job, timeout=120)
            except NCFError as e:
                st.error(appstate.plain(e))
            else:
                if status.error:
                    st.error(status.error)
                else:
                    st.rerun()

st.subheader("Download or delete")
ids = [r["id"] for r in rows]
c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
names = {r["id"]: r["name"] for r in rows}
target = c1.selectbox("Run", ids, format_func=lambda i: i if names[i] == i else f"{names[i]} · {i}")
c2.download_button("Download zip", data=lambda: zip_run(target), file_name=f"{target}.zip",
                   mime="application/zip", icon=":material/download:")
if c3.button("Delete", icon=":material/delete:", key="delete_run"):
    ss.confirm_delete = target
if ss.get("confirm_delete") == target:
    st.warning("Delete this run for everyone on the server? This cannot be undone.")
    if st.button("Yes, delete it", type="primary"):
        try:
            delete_run(target)
        except NCFError as e:
            st.error(appstate.plain(e))
        else:
            appstate.load_run.clear()
            if ss.run_id == target:
                ss.run_id = None
            ss.confirm_delete = None
            st.rerun()
