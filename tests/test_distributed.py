"""One job on many processes: real `torchrun --nproc_per_node 2 -m ncf train` jobs on gloo, on this CPU."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ncf import distributed
from tests.test_cli import ROOT

# HR@10 of the synthetic default moves by about this much between seeds of one process.
HR_NOISE = 0.05


def torchrun(n: int, *args: str) -> list[str]:
    """The command for an `n`-process job on loopback, on a port free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [shutil.which("torchrun")] if shutil.which("torchrun") else [sys.executable, "-m", "torch.distributed.run"]
    return [*launcher, "--nproc_per_node", str(n), "--master_addr", "127.0.0.1", "--master_port", str(port),
            "-m", "ncf", *args]


def run_folders(models) -> list[str]:
    return sorted(os.listdir(models)) if os.path.isdir(models) else []


def test_two_gloo_processes_reach_one_process_quality_with_identical_weights(tmp_path):
    from ncf.config import RunConfig
    from ncf.data import leave_one_out, synthetic
    from ncf.evaluate import evaluate
    from ncf.runs import load_run
    from ncf.train import train

    split = leave_one_out(synthetic())
    one = train(RunConfig(), split)  # the CLI's default: neumf on the synthetic data
    models = tmp_path / "models"
    p = subprocess.run(torchrun(2, "train", "--data", "synthetic", "--json", "--out", str(models)), cwd=ROOT,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2
    assert abs(summary["hr@10"] - one.metrics["hr@10"]) <= HR_NOISE, (summary["hr@10"], one.metrics["hr@10"])
    # Every rank ends with the same weights, and only rank 0 saved.
    digests = dict(re.findall(r"rank (\d) of 2: final weights (\w+)", p.stdout))
    assert set(digests) == {"0", "1"} and len(set(digests.values())) == 1, p.stdout
    assert run_folders(models) == [summary["run_id"]]
    # Rank 0's evaluation is the one a single process computes for the same weights.
    run = load_run(Path(summary["run"]))
    again = evaluate(run.model, split, k=10, full=True)
    for key in ("hr@10", "ndcg@10", "full_recall@10"):
        assert again[key] == pytest.approx(summary[key], abs=1e-9), key


def signal_a_rank_while_training(rank: int, sig: int, *flags: str):
    """A 2-process job of 200 epochs on the synthetic data; once epoch 1 is under way (both ranks train),
    `sig` goes to rank `rank` alone. (the finished torchrun, everything it printed, that rank's pid)."""
    proc = subprocess.Popen(torchrun(2, "train", "--data", "synthetic", "--epochs", "200", *flags),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, pid = [], None
    try:
        for line in proc.stdout:
            lines.append(line)
            if m := re.match(rf"rank {rank} of 2 \(pid (\d+)\)", line):
                pid = int(m.group(1))
            if pid and line.startswith("epoch 1/"):
                os.kill(pid, sig)
                break
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, "".join(lines) + rest, pid


def test_a_killed_rank_ends_the_job_with_a_clear_message_and_saves_nothing(tmp_path):
    models = tmp_path / "models"
    proc, out, victim = signal_a_rank_while_training(1, signal.SIGKILL, "--out", str(models))
    assert victim is not None, out
    assert proc.returncode != 0, out
    # torchrun names the rank that died and how; rank 0 says why it stopped, if it lived to say it.
    assert re.search(r"rank\s*:\s*1", out) and "SIGKILL" in out, out[-3000:]
    assert "saved run" not in out
    if "error: rank 0 of 2" in out:  # rank 0 said why in one line, unless torchrun's SIGTERM came first
        assert "another process of this job stopped" in out
    assert run_folders(models) == [], run_folders(models)  # no run, and no half-written one


def test_each_rank_takes_an_equal_share_and_together_all(monkeypatch):
    n, world = 11, 3
    shares = []
    for rank in range(world):
        monkeypatch.setattr(distributed, "current", lambda rank=rank: distributed.Context(rank, world, rank))
        shares.append(distributed.shard(n, torch.Generator().manual_seed(5), torch.device("cpu")))
        assert distributed.local_count(n) == 4
    assert [len(s) for s in shares] == [4, 4, 4]  # padded from 11 to 12: the same steps on every rank
    assert set(torch.cat(shares).tolist()) == set(range(n))


def test_a_plain_process_is_a_world_of_one():
    ctx = distributed.from_env({})
    assert (ctx.rank, ctx.world_size, ctx.active, ctx.is_main) == (0, 1, False, True)
    assert distributed.from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).active


def test_no_rank_waits_when_there_is_one():
    start = time.perf_counter()
    distributed.barrier()
    assert distributed.total(3.0, torch.device("cpu")) == 3.0
    assert time.perf_counter() - start < 1


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step_and_saves(tmp_path):
    """Ctrl-C reaching rank 0 alone: the ranks agree on the flag, stop together (no rank left waiting
    at an all-reduce) and rank 0 saves what was trained."""
    models = tmp_path / "models"
    proc, out, _ = signal_a_rank_while_training(0, signal.SIGINT, "--json", "--out", str(models))
    assert proc.returncode == 0, out[-3000:]
    summary = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert summary["stopped"] and summary["epochs"] < 200
    digests = dict(re.findall(r"rank (\d) of 2: final weights (\w+)", out))
    assert set(digests) == {"0", "1"} and len(set(digests.values())) == 1, out
    assert run_folders(models) == [summary["run_id"]]


@pytest.mark.slow  # two jobs: about 37 s on the shared 2-core box
def test_the_same_seed_gives_the_same_job(tmp_path):
    """Each rank's negatives and batches come from its own seeded generator: a second job with the
    same seed and number of processes ends with the same weights, bit for bit."""
    digests = []
    for i in range(2):
        p = subprocess.run(torchrun(2, "train", "--data", "synthetic", "--model", "gmf", "--epochs", "2",
                                    "--seed", "3", "--out", str(tmp_path / f"models{i}")),
                           cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        digests += re.findall(r"rank \d of 2: final weights (\w+)", p.stdout)
    assert len(digests) == 4 and len(set(digests)) == 1, digests


def test_a_lost_peer_is_one_clear_line_and_other_errors_keep_their_traceback():
    ctx = distributed.Context(0, 2, 0)
    gloo = ("[/__w/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:8112: "
            "Connection reset by peer. This is typically caused by a remote worker hanging")
    with pytest.raises(distributed.PeerFailed) as err, distributed.guard(ctx):
        raise RuntimeError(gloo)
    assert str(err.value) == ("rank 0 of 2: another process of this job stopped, so this one stops too and saves "
                              "nothing (Read error [127.0.0.1]:8112: Connection reset by peer).")
    with pytest.raises(RuntimeError, match="a bug"), distributed.guard(ctx):
        raise RuntimeError("a bug")
