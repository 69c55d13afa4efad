"""The CLI's progress where stderr is not a terminal: a plain line every few seconds."""

from __future__ import annotations

import io

from ncf.cli.progress import ProgressPrinter


def test_non_terminal_stderr_gets_a_plain_progress_line_per_interval(monkeypatch):
    err = io.StringIO()  # not a terminal
    clock = iter([0.0, 3.0, 11.0, 12.0, 22.5])
    monkeypatch.setattr("ncf.cli.progress.time.monotonic", lambda: next(clock))
    progress = ProgressPrinter("neumf", stream=err)
    assert not progress.bar
    progress({"event": "start", "epochs": 8, "stage": "neumf"})
    for step in (1, 2, 3, 4):
        progress({"event": "batch", "epoch": 2, "step": step, "steps": 592, "samples_per_second": 123456.0,
                  "eta": 321.0, "stage": "neumf", "loss": 0.3})
    lines = err.getvalue().splitlines()
    assert lines == ["progress: stage neumf epoch 2/8 step 2/592 123,456 samples/s eta 321s",
                     "progress: stage neumf epoch 2/8 step 4/592 123,456 samples/s eta 321s"]
    assert "\r" not in err.getvalue()
