"""The CLI's progress where stderr is not a terminal: a plain line every few seconds."""

from __future__ import annotations

import io
import re

from ncf.cli.progress import ProgressPrinter
from ncf.events import Batch, Start


def test_non_terminal_stderr_gets_a_plain_progress_line_per_interval():
    err = io.StringIO()  # not a terminal
    clock = iter([0.0, 3.0, 11.0, 12.0, 22.5])
    progress = ProgressPrinter("neumf", stream=err, clock=lambda: next(clock))
    assert not progress.bar
    progress(Start(epochs=8, stage="neumf"))
    for step in (1, 2, 3, 4):
        progress(Batch(epoch=2, step=step, steps=592, samples_per_second=123456.0, eta=321.0, stage="neumf",
                       loss=0.3))
    lines = err.getvalue().splitlines()
    assert lines == ["progress: stage neumf epoch 2/8 step 2/592 123,456 samples/s eta 321s",
                     "progress: stage neumf epoch 2/8 step 4/592 123,456 samples/s eta 321s"]
    assert "\r" not in err.getvalue()


def test_a_headless_train_logs_stage_epoch_step_rate_and_eta(monkeypatch, capsys):
    from ncf.cli import main, progress

    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)  # every batch event, instead of every 10 s
    assert main(["train", "--data", "synthetic", "--epochs", "1", "--batch-size", "1024"]) == 0
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.startswith("progress: ")]
    assert lines, out.err
    assert re.fullmatch(r"progress: stage neumf epoch 1/1 step \d+/\d+ [\d,]+ samples/s eta \d+s", lines[-1])
    assert "\r" not in out.err and "progress:" not in out.out  # stdout keeps the results alone


def test_loading_says_each_slow_stage_and_every_stage_of_a_large_file(monkeypatch, tmp_path):
    from ncf.cli import progress

    out = io.StringIO()
    clock = iter([0.0, 0.1, 0.2, 3.2, 3.4])
    log = progress.LoadingLog(str(tmp_path / "ratings.csv"), clock=lambda: next(clock), out=out)
    for stage in ("reading the cache", "parsing", "writing the cache", "splitting"):
        log(stage)
    assert out.getvalue().splitlines() == ["loading: writing the cache (3.2s)"]  # after the 3 s parse

    big = tmp_path / "big.csv"
    big.write_bytes(b"u,i\n" * 10)
    monkeypatch.setattr(progress, "LOADING_LINE_BYTES", 10)
    out = io.StringIO()
    clock = iter([0.0, 0.0, 0.5])
    log = progress.LoadingLog(str(big), clock=lambda: next(clock), out=out)
    log("reading the cache")
    log("parsing")
    assert out.getvalue().splitlines() == ["loading: reading the cache (0.0s)", "loading: parsing (0.5s)"]


def test_the_data_layer_names_its_loading_stages(tmp_path):
    from ncf.data import load

    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating\n" + "".join(f"{u},{i},4\n" for u in range(5) for i in range(4)))
    first, second = [], []
    load(str(csv), on_stage=first.append)
    load(str(csv), on_stage=second.append)
    assert [s.split(" ")[0] for s in first] == ["reading", "parsing", "writing"]
    assert second == ["reading the cache"]
