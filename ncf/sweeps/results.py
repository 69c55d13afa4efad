"""Reading a sweep's results: the grid's live states, one row per finished run, and chart series."""

from __future__ import annotations

import contextlib

from ncf.errors import NCFError
from ncf.experiments import REPORTED_METRICS
from ncf.sweeps.store import POINT_FINISHED, Sweep


def point_states(runner, sweep: Sweep, rows: list[dict] | None = None, metrics=("hr@10", "full_recall@10")) -> list[dict]:
    """The grid as it stands: each point's values, its job's live state (queued, running with epoch) and,
    from `rows` (`sweep_rows`), its headline figures where finished."""
    by_run = {r["run"]: r for r in rows or ()}
    out = []
    for i, p in enumerate(sweep.points):
        state, progress = p["state"], ""
        if p["job"] is not None and state not in POINT_FINISHED:
            with contextlib.suppress(NCFError):
                st = runner.status(p["job"], events=False)
                state = st.state
                if st.state == "running" and st.progress.epoch:
                    progress = f"epoch {st.progress.epoch}"
                elif st.state == "queued" and st.position:
                    progress = f"{st.ahead} ahead in the queue"
        row = by_run.get(p["run_id"], {})
        out.append({"#": i + 1, **p["values"], "state": state, "progress": progress,
                    **{m: row.get(m) for m in metrics}, "run": p["run_id"] or ""})
    return out


def sweep_rows(sweep: Sweep, models_dir) -> list[dict]:
    """One row per finished run (as `ncf.experiments.result_row`): the swept values, the metrics,
    training seconds and the run id. Runs that cannot be read are left out."""
    from ncf.runs import list_runs

    wanted = {p["run_id"] for p in sweep.points if p["run_id"]}
    if not wanted:
        return []
    infos = {r.id: r for r in list_runs(models_dir) if r.id in wanted and r.error is None}
    rows = []
    for p in sweep.points:
        info = infos.get(p["run_id"]) if p["run_id"] else None
        if info is None:
            continue
        row = {**p["values"]}
        row.update({k: info.metrics[k] for k in REPORTED_METRICS if k in info.metrics})
        row.update(epochs=info.epochs, train_seconds=round(info.train_seconds or 0.0, 2), stopped=info.stopped,
                   run=info.id)
        rows.append(row)
    return rows


def chart_rows(sweep: Sweep, rows: list[dict]) -> tuple[list[dict], str | None]:
    """The rows with a "series" column (the model, and the second swept setting's value where there is
    one) and the setting for the x axis (the first swept one; None for a sweep over models only)."""
    names = list(sweep.params)
    x = names[0] if names else None
    second = names[1] if len(names) > 1 else None
    out = [{**r, "series": r["model"] if second is None else f"{r['model']} · {second}={r.get(second)}"} for r in rows]
    return out, x


def runs_at(rows: list[dict], series: str, x: str, value) -> list[str]:
    """The run ids behind one point of a sweep chart (one per seed)."""
    return [r["run"] for r in rows if r.get("series") == series and r.get(x) == value]
