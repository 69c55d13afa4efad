"""What a long command prints while it works: a download's bar, a line before a large file is
parsed, and the trainer's events as a bar on a terminal or a plain line every few seconds in a log
(the summary itself is ncf.events.Progress)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ncf.cli.common import fmt


def download_bar(done: int, total: int | None) -> None:
    """A download's progress on stderr, one redrawn line (only where stderr is a terminal)."""
    if not sys.stderr.isatty():
        return
    mib = done / 2**20
    text = f"downloading {mib:,.1f} MiB" + (f" of {total / 2**20:,.1f} MiB ({done / total:.0%})" if total else "")
    sys.stderr.write("\r" + text + ("\n" if total and done >= total else ""))
    sys.stderr.flush()


# Where stderr is a log (not a terminal), a plain progress line this often: a long run shows life.
LOG_EVERY_SECONDS = 10.0


class ProgressPrinter:
    """Turns trainer events into a progress line on stderr and one line per epoch on stdout. On a
    terminal the bar redraws at most 10 times a second; elsewhere (a log file, a pipe) a plain line
    is written every LOG_EVERY_SECONDS: stage, epoch, step, samples/s, ETA."""

    def __init__(self, model: str = "", stream=None, bar: bool | None = None, log_every: float = LOG_EVERY_SECONDS):
        self.model = model  # stages are named only when they differ from it (pre-training)
        self.err = stream or sys.stderr
        self.bar = self.err.isatty() if bar is None else bar
        self.log_every = log_every
        self.epochs = 0
        self._drawn = 0.0
        self._logged = time.monotonic()
        self._dirty = False

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self.epochs = event.get("epochs", self.epochs)
            stage = event.get("stage")
            print(f"training {stage or ''} on {event.get('device', '?')}: {event.get('n_train', 0):,} training "
                  f"pairs, {event.get('steps_per_epoch', '?')} steps per epoch".replace("  ", " "), flush=True)
        elif kind == "batch" and self.bar:
            now = time.monotonic()
            if now - self._drawn >= 0.1:
                self._drawn = now
                self._draw(event)
        elif kind == "batch":
            now = time.monotonic()
            if now - self._logged >= self.log_every:
                self._logged = now
                print(self.log_line(event), file=self.err, flush=True)
        elif kind == "epoch":
            self._clear()
            print(self.epoch_line(event), flush=True)

    def _draw(self, e: dict) -> None:
        steps, step = max(1, int(e.get("steps", 1))), int(e.get("step", 0))
        width = 24
        filled = int(width * step / steps)
        stage = f"[{e['stage']}] " if e.get("stage") not in (None, "", self.model) else ""
        line = (f"\r{stage}epoch {e.get('epoch', '?')}/{self.epochs} "
                f"[{'#' * filled}{'.' * (width - filled)}] {step}/{steps} loss {e.get('loss', float('nan')):.4f} "
                f"{e.get('samples_per_second', 0):,.0f}/s eta {e.get('eta', 0):.0f}s")
        self.err.write(line.ljust(100)[:120])
        self.err.flush()
        self._dirty = True

    def log_line(self, e: dict) -> str:
        return (f"progress: stage {e.get('stage') or self.model} epoch {e.get('epoch', '?')}/{self.epochs} "
                f"step {e.get('step', 0)}/{e.get('steps', '?')} {e.get('samples_per_second', 0):,.0f} samples/s "
                f"eta {e.get('eta', 0):.0f}s")

    def _clear(self) -> None:
        if self._dirty:
            self.err.write("\r" + " " * 120 + "\r")
            self.err.flush()
            self._dirty = False

    def epoch_line(self, e: dict) -> str:
        stage = f"[{e['stage']}] " if e.get("stage") not in (None, "", self.model) else ""
        parts = [f"{stage}epoch {e.get('epoch', '?')}/{self.epochs}"]
        if "train_loss" in e:  # models with their own fit report no loss
            parts.append(f"loss {e['train_loss']:.4f}")
        parts += [f"{k} {fmt(v)}" for k, v in {**(e.get("info") or {}), **(e.get("metrics") or {})}.items()]
        parts.append(f"{e.get('elapsed', 0):.1f}s")
        if e.get("samples_per_second"):
            parts.append(f"{e['samples_per_second']:,.0f} samples/s")
        return "  ".join(parts)

    def close(self) -> None:
        self._clear()


# A source file this large gets a line before it is read: a parse of 25M rows takes ~20 s.
LOADING_LINE_BYTES = 50 << 20


def say_loading(source: str) -> None:
    """A 'loading' line (stdout: stderr carries an error alone, in one line) before a large file."""
    path = Path(str(source)).expanduser()
    size = path.stat().st_size if path.is_file() else 0
    if size >= LOADING_LINE_BYTES:
        print(f"loading {path.name} ({size / 2**20:,.0f} MiB; parsed once, then read from the cache) ...",
              flush=True)
