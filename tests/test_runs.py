"""Saved runs: round trip, atomic writes, refusal of anything damaged or foreign, safe ids."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch

from ncf import runs
from ncf.config import ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, ratio_split, synthetic
from ncf.errors import RunError
from ncf.models import build_model
from ncf.runs import delete_run, list_runs, load_run, save_run, store, validate_run_id, zip_run
from ncf.train import TrainResult, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic(n_users=120, n_items=80, seed=3), n_negatives=20, seed=0)


@pytest.fixture(scope="module")
def trained(split):
    cfg = RunConfig(model=ModelConfig(model="neumf"), train=TrainConfig(epochs=1, batch_size=512), name="first")
    return cfg, train(cfg, split)


@pytest.fixture
def saved(trained, split, tmp_path):
    cfg, result = trained
    return save_run(result, cfg, split, name="first run", models_dir=tmp_path / "models")


def untrained_result(model_cfg: ModelConfig, split) -> TrainResult:
    torch.manual_seed(0)
    return TrainResult(model=build_model(model_cfg, split.n_users, split.n_items).eval(), history=[], metrics={},
                       epochs=0, train_seconds=0.0, samples_per_second=0.0, stopped=False, device="cpu")


def rewrite_manifest(folder: Path) -> None:
    """Forges a manifest that matches the files as they are now (what a careful tamperer would do)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for fname in manifest["files"]:
        data = (folder / fname).read_bytes()
        manifest["files"][fname] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------------------------
# Round trip


def test_save_then_load_gives_identical_predictions(saved, trained):
    _, result = trained
    runs.clear_cache()  # rebuild from disk, not from the cache save_run filled
    run = load_run(saved.id, models_dir=saved.path.parent)
    users = torch.arange(run.n_users)
    with torch.no_grad():
        assert torch.equal(run.model.score_users(users), result.model.cpu().eval().score_users(users))
    assert run.name == "first run" and run.config.model.model == "neumf"
    assert run.config.train.lr is not None  # the settings actually used are stored, defaults resolved


@pytest.mark.parametrize("model", ["gmf", "mlp", "dot", "embnn", "pop"])
def test_every_model_round_trips(model, split, tmp_path):
    cfg = RunConfig(model=ModelConfig(model=model, objective="explicit" if model == "embnn" else None))
    result = untrained_result(cfg.model, split)
    if model == "pop":
        result.model.fit_counts(split.train_item)
    run = save_run(result, cfg, split, models_dir=tmp_path)
    runs.clear_cache()
    loaded = load_run(run.path)
    users = torch.arange(5)
    with torch.no_grad():
        assert torch.equal(loaded.model.score_users(users), result.model.score_users(users))


def test_folder_holds_every_file_and_a_checksummed_manifest(saved, split):
    names = {p.name for p in saved.path.iterdir()}
    assert names == {"config.json", "weights.safetensors", "vocab.json", "items.json", "users.json",
                     "interactions.safetensors", "history.jsonl", "metrics.json", "manifest.json"}
    manifest = json.loads((saved.path / "manifest.json").read_text())
    assert manifest["format"] == "ncf-run" and manifest["version"] == 1
    assert set(manifest["files"]) == names - {"manifest.json"}
    for fname, entry in manifest["files"].items():
        data = (saved.path / fname).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    config = json.loads((saved.path / "config.json").read_text())
    assert config["dataset"]["fingerprint"] == split.dataset.fingerprint()
    assert config["split"]["fingerprint"] == split.fingerprint()
    assert set(config["versions"]) >= {"torch", "numpy", "ncf"}
    assert config["device"] == "cpu" and config["train_seconds"] > 0
    # Nothing pickled: every file is JSON or safetensors.
    for path in saved.path.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), path.name


def test_loaded_run_carries_interactions_vocab_and_titles(saved, split):
    assert saved.train_user.tolist() == split.train_user.tolist()
    assert saved.test_item.tolist() == split.test_item.tolist()
    assert saved.test_negatives.shape == split.test_negatives.shape
    assert saved.train_rating is not None and saved.train_timestamp is not None
    assert saved.items.to_list() == split.dataset.items.to_list()
    assert saved.item_info["title"].tolist() == split.dataset.item_info["title"].tolist()
    assert saved.history and saved.history[-1]["event"] == "done"


def test_rebuilt_split_evaluates_like_the_original(saved, split):
    from ncf.evaluate import evaluate

    assert evaluate(saved.model, saved.split()) == pytest.approx(evaluate(saved.model, split))


def test_ratio_split_run_round_trips(tmp_path):
    ds = synthetic(n_users=60, n_items=40, seed=1)
    split = ratio_split(ds, seed=0)
    cfg = RunConfig(model=ModelConfig(model="dot", objective="explicit"))
    run = save_run(untrained_result(cfg.model, split), cfg, split, models_dir=tmp_path)
    assert run.test_negatives is None and len(run.test_rating) == len(split.test_rating)


def test_display_name_is_text_cleaned_and_capped(trained, split, tmp_path):
    cfg, result = trained
    run = save_run(result, cfg, split, name="<b>Anna's</b>\nrun\t" + "x" * 200, models_dir=tmp_path)
    assert run.name.startswith("<b>Anna's</b> run x") and len(run.name) == 80 and "\n" not in run.name


def test_load_is_cached_until_the_run_changes(saved):
    root = saved.path.parent
    assert load_run(saved.id, models_dir=root) is load_run(saved.id, models_dir=root)
    delete_run(saved.id, models_dir=root)
    with pytest.raises(RunError, match="No run folder"):
        load_run(saved.id, models_dir=root)


def test_trainable_copy_does_not_touch_the_shared_model(saved):
    copy = saved.model_copy()
    assert all(p.requires_grad for p in copy.parameters())
    with torch.no_grad():
        next(copy.parameters()).add_(1.0)
    assert not torch.equal(next(copy.parameters()), next(saved.model.parameters()))


# ---------------------------------------------------------------------------------------------
# Atomic writes


def test_failure_while_writing_leaves_no_run_and_no_temp(trained, split, tmp_path, monkeypatch):
    cfg, result = trained
    root = tmp_path / "models"
    earlier = save_run(result, cfg, split, models_dir=root)
    real_write = store.write_file

    def failing_write(folder, name, data):
        if name == "weights.safetensors":
            raise RuntimeError("simulated failure in the middle of a save")
        return real_write(folder, name, data)

    monkeypatch.setattr(store, "write_file", failing_write)
    with pytest.raises(RuntimeError, match="simulated"):
        save_run(result, cfg, split, models_dir=root)
    assert [p.name for p in root.iterdir()] == [earlier.id]
    assert load_run(earlier.id, models_dir=root).id == earlier.id


def test_kill_9_mid_save_leaves_only_a_temp_folder_that_is_cleaned(trained, split, tmp_path):
    """A real SIGKILL of a process in the middle of writing its run folder."""
    cfg, result = trained
    root = tmp_path / "models"
    earlier = save_run(result, cfg, split, models_dir=root)
    script = textwrap.dedent(f"""
        import os, signal
        from ncf import runs
        from ncf.runs import store
        from ncf.config import ModelConfig, RunConfig
        from ncf.data import leave_one_out, synthetic
        from ncf.models import build_model
        from ncf.train import TrainResult
        split = leave_one_out(synthetic(n_users=120, n_items=80, seed=3), n_negatives=20, seed=0)
        cfg = RunConfig(model=ModelConfig(model="gmf"))
        model = build_model(cfg.model, split.n_users, split.n_items)
        result = TrainResult(model, [], {{}}, 0, 0.0, 0.0, False, "cpu")
        real_write = store.write_file
        def write_then_die(folder, name, data):
            entry = real_write(folder, name, data)
            if name == "interactions.safetensors":
                os.kill(os.getpid(), signal.SIGKILL)
            return entry
        store.write_file = write_then_die
        runs.save_run(result, cfg, split, models_dir={str(root)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = runs.incomplete_runs(root)
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")
    assert [info.id for info in list_runs(root)] == [earlier.id]  # the leftover is not listed as a run
    assert runs.clean_incomplete(root) == []  # younger than a minute: maybe a save in progress
    old = time.time() - 120
    os.utime(root / leftovers[0], (old, old))
    assert runs.clean_incomplete(root) == leftovers
    assert runs.incomplete_runs(root) == []
    assert load_run(earlier.id, models_dir=root).id == earlier.id


def test_unwritable_models_dir_gives_a_clear_error(trained, split, tmp_path):
    """Tests run as root, which ignores permission bits, so chmod cannot make a folder unwritable here.
    A models path below a plain FILE cannot be created by anyone, root included."""
    cfg, result = trained
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(RunError, match="Could not save the run") as info:
        save_run(result, cfg, split, models_dir=blocker / "models")
    assert "not a folder" in str(info.value)


def test_full_disk_gives_a_clear_error_and_keeps_earlier_runs(trained, split, tmp_path):
    """The disk filling up mid-save, made real with a file size limit (RLIMIT_FSIZE): the kernel then
    refuses the write of the weights exactly as a full disk would refuse it (EFBIG instead of ENOSPC)."""
    cfg, result = trained
    root = tmp_path / "models"
    earlier = save_run(result, cfg, split, models_dir=root)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get an error from write(), not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, limits[1]))
    try:
        with pytest.raises(RunError, match="Could not save the run.*size limit"):
            save_run(result, cfg, split, models_dir=root)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert [p.name for p in root.iterdir()] == [earlier.id]  # the temporary folder was removed
    assert load_run(earlier.id, models_dir=root).id == earlier.id


# ---------------------------------------------------------------------------------------------
# Refusals


def test_truncated_weights_are_refused(saved):
    weights = saved.path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    runs.clear_cache()
    with pytest.raises(RunError, match="weights.safetensors was modified or truncated after the run was saved"):
        load_run(saved.path)


def test_tampered_config_is_refused(saved):
    config = saved.path / "config.json"
    data = json.loads(config.read_text())
    data["config"]["model"]["alpha"] += 0.1
    config.write_text(json.dumps(data, indent=1))
    with pytest.raises(RunError, match="config.json was modified or truncated"):
        load_run(saved.path)


def test_config_that_does_not_validate_is_refused_even_with_a_forged_manifest(saved):
    config = saved.path / "config.json"
    config.write_text(config.read_text().replace('"model": "neumf"', '"model": "transformer"'))
    rewrite_manifest(saved.path)
    with pytest.raises(RunError, match="config.json .* does not validate: Unknown model 'transformer'"):
        load_run(saved.path)


def test_weights_that_do_not_fit_the_config_are_refused(saved):
    config = saved.path / "config.json"
    data = json.loads(config.read_text())
    data["config"]["model"]["factors"] *= 2
    config.write_text(json.dumps(data, indent=1))
    rewrite_manifest(saved.path)
    with pytest.raises(RunError, match="do not fit its configuration"):
        load_run(saved.path)


def test_pickle_in_place_of_weights_is_refused_without_unpickling(saved, tmp_path):
    import pickle

    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (saved.path / "weights.safetensors").write_bytes(pickle.dumps(Boom()))
    rewrite_manifest(saved.path)
    with pytest.raises(RunError, match="weights.safetensors .* cannot be read"):
        load_run(saved.path)
    assert not marker.exists()


def test_unknown_format_version_is_refused(saved):
    manifest = json.loads((saved.path / "manifest.json").read_text())
    manifest["version"] = 99
    (saved.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="format version 99"):
        load_run(saved.path)


def test_manifest_cannot_point_outside_the_folder(saved, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    manifest = json.loads((saved.path / "manifest.json").read_text())
    manifest["files"]["../../secret.txt"] = {"sha256": hashlib.sha256(b"not yours").hexdigest(), "size": 9}
    (saved.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="invalid entry"):
        load_run(saved.path)


def test_symlinked_file_in_a_run_is_refused(saved, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_bytes((saved.path / "metrics.json").read_bytes())
    (saved.path / "metrics.json").unlink()
    (saved.path / "metrics.json").symlink_to(outside)
    with pytest.raises(RunError, match="symbolic link"):
        load_run(saved.path)


def test_foreign_and_damaged_folders_are_listed_with_their_reason(saved):
    root = saved.path.parent
    (root / "holiday-photos").mkdir()
    (root / "holiday-photos" / "beach.jpg").write_bytes(b"\xff\xd8")
    (root / "other-tool").mkdir()
    (root / "other-tool" / "manifest.json").write_text('{"format": "something-else"}')
    (root / "README.md").write_text("files are not runs")
    broken = root / "broken-run"
    broken.mkdir()
    for p in saved.path.iterdir():
        (broken / p.name).write_bytes(p.read_bytes())
    (broken / "weights.safetensors").write_bytes(b"")

    infos = {info.id: info for info in list_runs(root)}
    assert set(infos) == {saved.id, "holiday-photos", "other-tool", "broken-run"}
    assert infos[saved.id].error is None and infos[saved.id].name == "first run"
    assert infos[saved.id].metrics and infos[saved.id].config["model"]["model"] == "neumf"
    assert "not an ncf run folder" in infos["holiday-photos"].error
    assert "not an ncf run folder" in infos["other-tool"].error
    assert "weights.safetensors was modified or truncated" in infos["broken-run"].error
    assert list_runs(root)[0].id == saved.id  # loadable runs first
    with pytest.raises(RunError, match="not an ncf run folder"):
        load_run("holiday-photos", models_dir=root)


def test_list_runs_of_a_missing_folder_is_empty(tmp_path):
    assert list_runs(tmp_path / "nowhere") == []


# ---------------------------------------------------------------------------------------------
# Ids


@pytest.mark.parametrize("bad", ["../x", "/etc", "a/b", "", "..", "a..b", ".tmp-abc", ".hidden", "x" * 101,
                                 "a\\b", "run\n", "~root", "-rf"])
def test_traversal_and_odd_ids_are_rejected(bad, saved):
    root = saved.path.parent
    with pytest.raises(RunError, match="is not a run id"):
        validate_run_id(bad)
    for action in (load_run, delete_run, zip_run):
        with pytest.raises(RunError):
            action(bad, models_dir=root)
    assert load_run(saved.id, models_dir=root)  # still there


def test_run_folder_symlinked_out_of_the_models_dir_is_refused(saved, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (saved.path.parent / "sneaky").symlink_to(elsewhere)
    with pytest.raises(RunError, match="outside the models folder"):
        load_run("sneaky", models_dir=saved.path.parent)
    infos = {i.id: i for i in list_runs(saved.path.parent)}
    assert "symbolic link" in infos["sneaky"].error


def test_new_run_ids_are_readable_and_valid():
    run_id = runs.new_run_id("neumf", "ML 1M / users 1-2999")
    assert validate_run_id(run_id) == run_id
    assert "-neumf-ml-1m-users-1-2999-" in run_id


def test_run_ref_turns_paths_into_paths():
    assert runs.run_ref("20261125-141502-neumf-synthetic-ab12") == "20261125-141502-neumf-synthetic-ab12"
    assert runs.run_ref("models/abc") == Path("models/abc")


# ---------------------------------------------------------------------------------------------
# Delete and zip


def test_delete_removes_the_run(saved):
    root = saved.path.parent
    delete_run(saved.id, models_dir=root)
    assert list_runs(root) == [] and runs.incomplete_runs(root) == []
    with pytest.raises(RunError, match="No run"):
        delete_run(saved.id, models_dir=root)


def test_zip_holds_the_whole_folder(saved):
    data = zip_run(saved.id, models_dir=saved.path.parent)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert names == {f"{saved.id}/{p.name}" for p in saved.path.iterdir()}
        assert zf.read(f"{saved.id}/weights.safetensors") == (saved.path / "weights.safetensors").read_bytes()


def test_models_dir_follows_the_environment(tmp_path):
    assert runs.models_dir() == tmp_path / "models"  # set by the autouse fixture in conftest.py


def test_timestamps_survive_the_compact_storage(saved, split):
    ds = split.dataset
    times = {(u, i): t for u, i, t in zip(ds.user.tolist(), ds.item.tolist(), ds.timestamp.tolist(), strict=True)}
    stored = [times[(u, i)] for u, i in zip(split.train_user.tolist(), split.train_item.tolist(), strict=True)]
    assert saved.train_timestamp.tolist() == stored
    assert saved.test_timestamp.tolist() == [times[(u, i)] for u, i in zip(split.test_user.tolist(),
                                                                              split.test_item.tolist(), strict=True)]


def test_duplicate_ids_in_the_vocabulary_are_refused(saved):
    vocab = json.loads((saved.path / "vocab.json").read_text())
    vocab["items"][1] = vocab["items"][0]
    (saved.path / "vocab.json").write_text(json.dumps(vocab))
    rewrite_manifest(saved.path)
    with pytest.raises(RunError, match="lists an item id twice"):
        load_run(saved.path)
