"""What a long command prints while it works: a download's bar, a line before a large file is
parsed, and the trainer's events as a bar on a terminal or a plain line every few seconds in a log
(the summary itself is ncf.events.Progress)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from ncf.cli.common import fmt
from ncf.events import Batch, Epoch, Progress, Start, TrainEvent


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
    is written every LOG_EVERY_SECONDS: stage, epoch, step, samples/s, ETA. Both read the one
    summary of the events (ncf.events.Progress) that the Train page shows."""

    def __init__(self, model: str = "", stream=None, bar: bool | None = None, log_every: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.model = model  # stages are named only when they differ from it (pre-training)
        self.err = stream or sys.stderr
        self.bar = self.err.isatty() if bar is None else bar
        self.log_every = LOG_EVERY_SECONDS if log_every is None else log_every
        self.clock = clock
        self.summary = Progress()
        self._drawn = 0.0
        self._logged = clock()
        self._dirty = False

    def __call__(self, event: TrainEvent) -> None:
        self.summary = self.summary.after(event)
        if isinstance(event, Start):
            print(f"training {event.stage} on {event.device or '?'}: {event.n_train:,} training pairs, "
                  f"{event.steps_per_epoch} steps per epoch".replace("  ", " "), flush=True)
        elif isinstance(event, Batch) and self.bar:
            now = self.clock()
            if now - self._drawn >= 0.1:
                self._drawn = now
                self._draw(self.summary, event.loss)
        elif isinstance(event, Batch):
            now = self.clock()
            if now - self._logged >= self.log_every:
                self._logged = now
                print(self.log_line(self.summary), file=self.err, flush=True)
        elif isinstance(event, Epoch):
            self._clear()
            print(self.epoch_line(event), flush=True)

    def _stage_prefix(self, stage: str) -> str:
        return f"[{stage}] " if stage not in ("", self.model) else ""

    def _draw(self, p: Progress, loss: float) -> None:
        steps = max(1, p.steps)
        width = 24
        filled = int(width * p.step / steps)
        line = (f"\r{self._stage_prefix(p.stage)}epoch {p.epoch}/{p.epochs} "
                f"[{'#' * filled}{'.' * (width - filled)}] {p.step}/{steps} loss {loss:.4f} "
                f"{p.samples_per_second:,.0f}/s eta {p.eta or 0:.0f}s")
        self.err.write(line.ljust(100)[:120])
        self.err.flush()
        self._dirty = True

    def log_line(self, p: Progress) -> str:
        """The plain line a log gets: `progress: stage neumf epoch 2/8 step 120/592 123,456 samples/s eta 321s`."""
        return (f"progress: stage {p.stage or self.model} epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} "
                f"{p.samples_per_second:,.0f} samples/s eta {p.eta or 0:.0f}s")

    def _clear(self) -> None:
        if self._dirty:
            self.err.write("\r" + " " * 120 + "\r")
            self.err.flush()
            self._dirty = False

    def epoch_line(self, e: Epoch) -> str:
        parts = [f"{self._stage_prefix(e.stage)}epoch {e.epoch}/{e.epochs or self.summary.epochs}"]
        if e.train_loss is not None:  # models with their own fit report no loss
            parts.append(f"loss {e.train_loss:.4f}")
        parts += [f"{k} {fmt(v)}" for k, v in {**(e.info or {}), **e.metrics}.items()]
        parts.append(f"{e.elapsed:.1f}s")
        if e.samples_per_second:
            parts.append(f"{e.samples_per_second:,.0f} samples/s")
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


class LoadingLog:
    """The stages of loading (reading the cache; or parsing and writing the cache; splitting) as lines
    on stdout, with the seconds since loading began: every stage of a large file, and otherwise each
    stage that follows one that took over SLOW_STAGE_SECONDS, so a quick cached load adds no lines."""

    SLOW_STAGE_SECONDS = 1.0

    def __init__(self, source: str, clock: Callable[[], float] = time.monotonic, out=None):
        path = Path(str(source)).expanduser()
        self.always = (path.stat().st_size if path.is_file() else 0) >= LOADING_LINE_BYTES
        self.clock = clock
        self.out = out
        self._start = self._last = clock()

    def __call__(self, stage: str) -> None:
        now = self.clock()
        if self.always or now - self._last >= self.SLOW_STAGE_SECONDS:
            print(f"loading: {stage} ({now - self._start:.1f}s)", file=self.out or sys.stdout, flush=True)
        self._last = now
