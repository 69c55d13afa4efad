"""A sweep's life on a shared server: a grid of runs that goes through the job pool one run at a time.

`start_sweep` expands variants (models) x one or more settings x seeds into run configurations,
validates every one and refuses a grid past the session cap (`ncf.experiments.max_runs`,
NCF_MAX_SWEEP_RUNS) before anything is queued. The sweep is then a file,
`<models_dir>/.sweeps/<id>/sweep.json` (owner, base config, each point's values, config, job id and
state), so a page, a reload, a `?sweep=<id>` link or a restarted server read the same truth.

A driver thread in the server process (one per `JobRunner`) submits a sweep's runs ONE AT A TIME, the
next when the previous has finished. So the runner's fair queue interleaves them with every other
session's single runs (the owner served least recently goes first), and a sweep never fills its
owner's per-owner queue. `stop_sweep` marks the sweep stopped and stops its queued or running job;
the points not yet submitted are never run.

After a restart a sweep that was running is resumed, not dropped: the new runner marks the job the
dead server left as interrupted, and the driver submits that point again and carries on. (Marking the
sweep interrupted would lose the rest of a long grid to a routine redeploy; a run is cheap to redo.)

The package, by concern: `grids` (the settings a sweep varies and the grid of runs), `estimates` (how
long it takes), `store` (the sweep on disk), `driver` (start, stop and the thread that feeds the
job pool) and `results` (rows and charts of finished runs).
"""

from ncf.sweeps.driver import SweepDriver, driver_for, start_sweep, stop_sweep, wait_sweep
from ncf.sweeps.estimates import (
    DEFAULT_RATE,
    OVERHEAD_SECONDS,
    Estimate,
    batch_for,
    estimate,
    measured_rates,
    run_samples,
)
from ncf.sweeps.grids import SWEEPABLE, Point, Setting, grid, parse_seeds, parse_values, point_label, variants
from ncf.sweeps.results import chart_rows, point_states, runs_at, sweep_rows
from ncf.sweeps.store import (
    ACTIVE,
    DONE,
    FAILED,
    POINT_FINISHED,
    STOPPED,
    SWEEP_ID,
    Sweep,
    list_sweeps,
    load_sweep,
    sweeps_dir,
)

__all__ = [
    "ACTIVE", "DEFAULT_RATE", "DONE", "FAILED", "OVERHEAD_SECONDS", "POINT_FINISHED", "STOPPED", "SWEEPABLE",
    "SWEEP_ID", "Estimate", "Point", "Setting", "Sweep", "SweepDriver", "batch_for", "chart_rows", "driver_for",
    "estimate", "grid", "list_sweeps", "load_sweep", "measured_rates", "parse_seeds", "parse_values",
    "point_label", "point_states", "run_samples", "runs_at", "start_sweep", "stop_sweep", "sweep_rows",
    "sweeps_dir", "variants", "wait_sweep",
]
