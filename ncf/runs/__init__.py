"""Saved runs: one folder per trained model, written atomically, loaded without pickle.

A run folder holds everything needed to use the model without the original data:

    config.json               what produced it (RunConfig, data and split fingerprints, versions, name, device)
    weights.safetensors       the model's state_dict
    vocab.json                raw user and item ids, in index order
    items.json                item titles / genres per item index (when the data has them)
    users.json                user attributes per user index (when the data has them)
    features.json             the side features' encoders (when the model takes features; their tables are weights)
    interactions.safetensors  train and test interactions as indices (to exclude seen items, mark the held-out one)
    history.jsonl             the training events, one JSON object per line
    metrics.json              the final metrics
    manifest.json             written last: format marker, sha256 and size of every other file

Writing builds the folder under `models_dir/.tmp-<id>-<random>/`, fsyncs every file, then renames it
into place. A rename within one filesystem is atomic, so a crash (even kill -9) leaves either a
complete run or a `.tmp-*` leftover that `list_runs` skips and `clean_incomplete` removes.
Loading checks the manifest's checksums before anything is parsed, and parses only JSON and
safetensors: a foreign, truncated or tampered folder is refused with a `RunError` that says why.

The package by concern: `paths` (the models folder, run ids, names), `run` (`Run`, `RunInfo`),
`format` (what each file holds, the manifest and its version, rebuilding a `Run`), `store` (atomic
save, load through one cache of loaded runs), `listing` (list, clean leftovers, delete, zip).
Callers use the names re-exported here: `from ncf import runs; runs.load_run(...)`.
"""

from ncf.runs.format import FORMAT, FORMAT_VERSION
from ncf.runs.listing import clean_incomplete, delete_run, incomplete_runs, list_runs, zip_run
from ncf.runs.paths import clean_name, models_dir, new_run_id, run_ref, validate_run_id
from ncf.runs.run import Run, RunInfo
from ncf.runs.store import clear_cache, load_run, save_run

__all__ = ["FORMAT", "FORMAT_VERSION", "Run", "RunInfo", "clean_incomplete", "clean_name", "clear_cache", "delete_run",
           "incomplete_runs", "list_runs", "load_run", "models_dir", "new_run_id", "run_ref", "save_run",
           "validate_run_id", "zip_run"]
