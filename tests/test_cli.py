"""`python -m ncf` as a user runs it: real subprocesses, real files, the environment's
NCF_MODELS_DIR / NCF_CACHE_DIR pointing at this test's temporary folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN_KEYS = {"hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10", "epochs", "train_seconds",
              "samples_per_second", "run"}


def ncf(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ncf", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> dict:
    """One small GMF run shared by the commands that read a saved run."""
    models = tmp_path_factory.mktemp("cli-runs")
    p = ncf("train", "--data", "synthetic", "--model", "gmf", "--epochs", "1", "--json", "--name", "cli test",
            "--out", str(models))
    assert p.returncode == 0, p.stderr
    return {"result": last_json(p.stdout), "stdout": p.stdout, "models": models}


def test_data_synthetic_prints_its_counts():
    p = ncf("data", "synthetic")
    assert p.returncode == 0, p.stderr
    assert "600" in p.stdout and "400" in p.stdout and "27,350" in p.stdout.replace("27350", "27,350")


def test_a_bad_file_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_bytes(b"\x00\x01\x02 this is not a ratings file \xff\xfe")
    for args in (("data", str(bad)), ("data", str(tmp_path / "missing.csv")),
                 ("train", "--data", str(tmp_path / "missing.csv"), "--model", "gmf")):
        p = ncf(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
        assert "Traceback" not in p.stderr


def test_an_impossible_configuration_fails_before_any_data_is_read():
    p = ncf("train", "--data", "/no/such/file.csv", "--model", "mlp", "--layers", "63,32")
    assert p.returncode == 2
    assert p.stderr.strip() == ("error: The first MLP layer is the user and item embeddings concatenated, "
                                "so it must be even; got 63.")


def test_train_json_last_line_has_the_final_figures(trained_run):
    result = trained_run["result"]
    assert result.keys() >= TRAIN_KEYS
    assert result["epochs"] == 1 and 0 <= result["hr@10"] <= 1
    assert Path(result["run"]).is_dir() and Path(result["run"]).parent == trained_run["models"]
    epoch_lines = [ln for ln in trained_run["stdout"].splitlines() if ln.startswith("epoch 1/1")]
    assert len(epoch_lines) == 1 and "hr@10" in epoch_lines[0]


def test_explicit_training_reports_rmse_on_a_ratio_split(tmp_path):
    p = ncf("train", "--model", "embnn", "--epochs", "1", "--json", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    result = last_json(p.stdout)
    assert "rmse" in result and "hr@10" not in result
    assert "Random split" in p.stdout


def test_evaluate_recomputes_the_saved_metrics(trained_run):
    p = ncf("evaluate", trained_run["result"]["run"], "--json")
    assert p.returncode == 0, p.stderr
    again = last_json(p.stdout)
    for key in ("hr@10", "ndcg@10", "full_recall@10", "full_ndcg@10"):
        assert again[key] == pytest.approx(trained_run["result"][key], abs=1e-6), key


def test_recommend_lists_k_titled_items(trained_run):
    p = ncf("recommend", trained_run["result"]["run"], "--user", "1", "-k", "5", "--json")
    assert p.returncode == 0, p.stderr
    rows = last_json(p.stdout)
    assert len(rows) == 5 and all(r["title"] for r in rows)
    assert rows == sorted(rows, key=lambda r: -r["score"])


def test_recommend_for_an_unknown_user_names_the_id(trained_run):
    p = ncf("recommend", trained_run["result"]["run"], "--user", "no-such-user")
    assert p.returncode == 2
    assert "no-such-user" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_similar_prints_a_table_of_other_items(trained_run, monkeypatch):
    run_id = Path(trained_run["result"]["run"]).name  # an id alone is looked up in --out / NCF_MODELS_DIR
    monkeypatch.setenv("NCF_MODELS_DIR", str(trained_run["models"]))
    p = ncf("similar", run_id, "--item", "3", "-k", "4")
    assert p.returncode == 0, p.stderr
    header, *rows = p.stdout.strip().splitlines()[1:]
    assert header.split() == ["#", "item", "title", "genres", "similarity"]
    assert len(rows) == 4 and all(row.split()[1] != "3" for row in rows)


def test_runs_lists_saved_runs_and_refused_folders(trained_run):
    models = trained_run["models"]
    foreign = models / "not-a-run"
    foreign.mkdir(exist_ok=True)
    (foreign / "config.json").write_text("{ this is not json")
    p = ncf("runs", "--out", str(models))
    assert p.returncode == 0, p.stderr
    run_id = Path(trained_run["result"]["run"]).name
    assert run_id in p.stdout and "cli test" in p.stdout
    refused = [ln for ln in p.stdout.splitlines() if "not-a-run" in ln]
    assert refused and "REFUSED" in refused[0]


def test_evaluate_refuses_a_missing_run_with_one_line(tmp_path):
    p = ncf("evaluate", str(tmp_path / "nothing-here"))
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr


def test_ctrl_c_stops_training_cleanly_and_still_saves_the_run(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "ncf", "train", "--model", "gmf", "--epochs", "10000", "--json",
                             "--out", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    try:
        for line in proc.stdout:  # wait until training has really begun
            if line.startswith("epoch 1/"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopping" in err
    result = last_json(out)
    assert result["stopped"] is True and 1 <= result["epochs"] < 10000
    assert Path(result["run"]).is_dir()
    listed = ncf("runs", "--out", str(tmp_path), "--json")
    assert [r["id"] for r in last_json(listed.stdout)] == [result["run_id"]]


def test_bench_quick_json_holds_samples_per_second():
    p = ncf("bench", "--quick", "--model", "gmf", "--json")
    assert p.returncode == 0, p.stderr
    result = last_json(p.stdout)
    assert result["model"] == "gmf" and result["samples_per_second"] > 0


def test_columns_override_names_the_roles(tmp_path):
    data = tmp_path / "likes.csv"
    data.write_text("who,what,stars\n" + "".join(f"u{u},i{(u * 7 + k) % 13},{1 + k % 5}\n"
                                                for u in range(20) for k in range(6)))
    p = ncf("data", str(data), "--columns", "user=who,item=what,rating=stars", "--json")
    assert p.returncode == 0, p.stderr
    summary = last_json(p.stdout)
    assert (summary["users"], summary["items"], summary["interactions"]) == (20, 13, 120)


def test_bad_input_fails_without_importing_torch(tmp_path):
    """The cheap checks come first: a bad file or flag is reported before torch is even loaded."""
    bad = tmp_path / "ratings.csv"
    bad.write_text("just one column\nno ratings here\n")
    code = textwrap.dedent(f"""
        import sys
        from ncf.cli import main
        codes = [main(["data", {str(bad)!r}]), main(["train", "--data", {str(bad)!r}]),
                 main(["train", "--model", "mlp", "--layers", "7"])]
        print(codes, "torch" in sys.modules)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.stdout.split("\n")[0] == "[2, 2, 2] False", p.stdout + p.stderr
    assert len(p.stderr.strip().splitlines()) == 3 and "Traceback" not in p.stderr


def test_resume_continues_a_saved_run_into_a_new_one(trained_run):
    p = ncf("train", "--resume", trained_run["result"]["run"], "--epochs", "1", "--json",
            "--out", str(trained_run["models"]))
    assert p.returncode == 0, p.stderr
    result = last_json(p.stdout)
    assert result["run_id"] != trained_run["result"]["run_id"] and result["model"] == "gmf"
    assert "continuing run" in p.stdout


def test_resuming_a_validation_run_holds_its_validation_pairs_out_again(tmp_path):
    """A run folder keeps the validation pairs among the known interactions; a resumed run must not train
    on them, so it draws the hold-out again and still chooses its epoch. A source that is gone: a note."""
    p = ncf("train", "--model", "gmf", "--epochs", "1", "--validation", "--json", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    first = last_json(p.stdout)
    p = ncf("train", "--resume", first["run"], "--epochs", "2", "--json", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    resumed = last_json(p.stdout)
    assert resumed["best_epoch"] in (1, 2) and 0 <= resumed["val_hr@10"] <= 1, resumed
    assert "note:" not in p.stderr

    data = tmp_path / "ratings.csv"
    data.write_text("user,item,rating,timestamp\n" + "".join(
        f"{u},{i},{1 + (u * i) % 5},{u * 100 + i}\n" for u in range(30) for i in range(u % 7, u % 7 + 12)))
    p = ncf("train", "--data", str(data), "--model", "gmf", "--epochs", "1", "--validation", "--json",
            "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    on_file = last_json(p.stdout)
    data.unlink()
    p = ncf("train", "--resume", on_file["run"], "--epochs", "1", "--json", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert "could not give it again" in p.stderr and "val_hr@10" not in last_json(p.stdout)


def test_validation_keeps_the_best_epoch_and_the_run_evaluates_the_same(tmp_path):
    p = ncf("train", "--model", "gmf", "--epochs", "3", "--validation", "--json", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    result = last_json(p.stdout)
    assert result["best_epoch"] in (1, 2, 3) and 0 <= result["val_hr@10"] <= 1
    assert "second-latest" in p.stdout
    again = ncf("evaluate", result["run"], "--json")
    assert again.returncode == 0, again.stderr
    recomputed = last_json(again.stdout)
    for key in ("hr@10", "full_recall@10"):  # the validation pairs stay known interactions in the saved run
        assert recomputed[key] == pytest.approx(result[key]), key
    p = ncf("train", "--split", "ratio", "--validation", "--model", "gmf", "--out", str(tmp_path))
    assert p.returncode == 2 and "leave-one-out" in p.stderr


def test_the_operator_deletes_any_run_from_the_command_line(tmp_path):
    p = ncf("train", "--data", "synthetic", "--model", "pop", "--json", "--name", "to clean", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    run_id = Path(last_json(p.stdout)["run"]).name
    p = ncf("runs", "--out", str(tmp_path), "--delete", run_id)
    assert p.returncode == 0, p.stderr
    assert f"deleted run {run_id}" in p.stdout
    assert run_id not in ncf("runs", "--out", str(tmp_path)).stdout
    p = ncf("runs", "--out", str(tmp_path), "--delete", run_id)
    assert p.returncode != 0 and run_id in p.stderr  # an unknown run is named, not a traceback
