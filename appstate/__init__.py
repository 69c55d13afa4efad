"""What the app's pages share, beside them, by concern:

- `session`    the session's settings: one key per widget, defaults derived from ncf.config and the
               registry (the preset they come from), read from a link once per session
- `links`      share links and the address bar
- `resources`  what the sessions of one server share (st.cache_resource: datasets, uploads, splits,
               runs), the job runner, and who owns a job or a run
- `configs`    the settings as the run configuration a job trains
- `widgets`    the sidebar, the run picker, metric tiles, the guard before training, safe user text

Pages call the public names re-exported here (`appstate.plain`, `appstate.run_config`); the pages
themselves are `app_pages.PAGES`. Storing an upload is the core's (`ncf.data.uploads`).
"""

from appstate.configs import (
    PIPELINE_RECIPE_KEYS,
    batch_label,
    data_config,
    follows_pipeline_recipe,
    model_config,
    parse_layers,
    pipeline_plan,
    run_config,
    train_config,
)
from appstate.links import share_link, share_params, sync_query_params
from appstate.resources import (
    XSRF_COOKIE,
    active_job_id,
    baseline_metrics,
    browser_token,
    can_delete_run,
    current_dataset,
    current_split,
    data_source_for_jobs,
    device_label,
    is_available,
    list_runs,
    load_dataset,
    load_run,
    load_uploaded,
    open_upload,
    owner,
    runner,
    upload_key,
)
from appstate.session import (
    AUTO_BATCH,
    BATCH_SIZES,
    CHOICES,
    JOB_ID,
    OBJECTIVE_CHOICES,
    PRESET,
    PRESET_KEYS,
    QUICK,
    SETTINGS,
    SPLITS,
    SWEEP_ID,
    UPLOAD_PREFIX,
    apply_train_defaults,
    default_factors,
    default_layers,
    init,
    on_objective_change,
    preset_changes,
    recipe,
    resolved_objective,
    settings,
    uses_validation,
)
from appstate.widgets import describe_config, metric_tiles, plain, preset_line, ready_to_train, run_picker, sidebar

__all__ = [
    "AUTO_BATCH", "BATCH_SIZES", "CHOICES", "JOB_ID", "OBJECTIVE_CHOICES", "PIPELINE_RECIPE_KEYS", "PRESET",
    "PRESET_KEYS", "QUICK", "SETTINGS", "SPLITS", "SWEEP_ID", "UPLOAD_PREFIX", "XSRF_COOKIE", "active_job_id",
    "apply_train_defaults", "baseline_metrics", "batch_label", "browser_token", "can_delete_run",
    "current_dataset", "current_split", "data_config", "data_source_for_jobs", "default_factors",
    "default_layers", "describe_config", "device_label", "follows_pipeline_recipe", "init", "is_available",
    "list_runs", "load_dataset", "load_run", "load_uploaded", "metric_tiles", "model_config",
    "on_objective_change", "open_upload", "owner", "parse_layers", "pipeline_plan", "plain", "preset_changes",
    "preset_line", "ready_to_train", "recipe", "resolved_objective", "run_config", "run_picker", "runner",
    "settings", "share_link", "share_params", "sidebar", "sync_query_params", "train_config", "upload_key",
    "uses_validation",
]
