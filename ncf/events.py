"""The events a fit emits, typed, and the one progress summary every reader shows.

A fit (ncf.train) calls `on_event` with one of these frozen dataclasses: `Start` (a stage begins:
a model, or one stage of NeuMF pre-training), `Batch` (every few batches: the live loss),
`Epoch` (an epoch's loss and metrics), `Done` (the run's outcome). The job pool adds `Job` (its
own word before training starts, such as which data it is loading).

On disk (a run's history.jsonl, a job's events.jsonl) and in `TrainResult.history` they are plain
JSON objects: `to_dict()` writes one, `parse()` reads one back, tolerating the fields an older
file lacks. `Progress` is the summary the CLI's progress line, the Train page and the job pool
all show: stage, epoch, step, fraction done, samples/s and the time left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace


class _Event:
    kind = ""

    def to_dict(self) -> dict:
        return to_dict(self)


@dataclass(frozen=True)
class Start(_Event):
    """A stage begins. The gradient loop fills the optimiser's fields; a model with its own fit
    (ncf.classical) leaves them unset, and then `steps_per_epoch` is 1 and `epochs` its steps."""

    device: str = ""
    n_train: int = 0
    steps_per_epoch: int = 0
    epochs: int = 0
    stage: str = ""
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    sparse_embeddings: bool | None = None
    row_wise_embeddings: bool | None = None
    start_metrics: dict | None = None  # with a validation hold-out, when the untrained start competes

    kind = "start"


@dataclass(frozen=True)
class Batch(_Event):
    """Every few batches (at least ncf.train.stages.BATCH_EVENTS_PER_EPOCH an epoch): the live loss curve."""

    epoch: int = 0
    step: int = 0  # batches done in this epoch
    steps: int = 0  # batches in an epoch
    epochs: int = 0  # of this stage (so that one event tells how far it is)
    loss: float = float("nan")
    samples_per_second: float = 0.0
    elapsed: float = 0.0  # seconds since the fit began
    eta: float | None = None  # seconds left in this stage
    stage: str = ""

    kind = "batch"


@dataclass(frozen=True)
class Epoch(_Event):
    """An epoch ended (for a model with its own fit: one of its steps, described in `info`)."""

    epoch: int = 0
    epochs: int = 0  # of this stage
    train_loss: float | None = None  # None: a model with its own fit reports no loss
    metrics: dict = field(default_factory=dict)
    elapsed: float = 0.0
    eta: float | None = None
    samples_per_second: float = 0.0
    stage: str = ""
    info: dict | None = None

    kind = "epoch"


@dataclass(frozen=True)
class Done(_Event):
    """The run's outcome: the metrics of the model kept, and whether it was stopped."""

    metrics: dict = field(default_factory=dict)
    stopped: bool = False
    epochs: int = 0
    best_epoch: int | None = None
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    elapsed: float = 0.0

    kind = "done"


@dataclass(frozen=True)
class Job(_Event):
    """The job pool's word before (or around) training: "Loading ml-1m: parsing", for example."""

    message: str = ""

    kind = "job"


TrainEvent = Start | Batch | Epoch | Done | Job
KINDS: dict[str, type] = {cls.kind: cls for cls in (Start, Batch, Epoch, Done, Job)}
# Fields written only when set: the JSON a run saves keeps the shape it has always had.
_OPTIONAL = {"batch_size", "lr", "optimizer", "sparse_embeddings", "row_wise_embeddings", "start_metrics",
             "train_loss", "info"}


def to_dict(event: _Event) -> dict:
    """The event as one JSON object, `{"event": kind, ...fields}`."""
    body = {k: v for k, v in asdict(event).items() if not (k in _OPTIONAL and v is None)}
    return {"event": event.kind, **body}


def parse(obj: Mapping) -> TrainEvent | None:
    """An event read back from JSON; None for a line of a kind this version does not know.
    Missing fields take their defaults and unknown ones are ignored, so older files still read."""
    cls = KINDS.get(obj.get("event")) if isinstance(obj, Mapping) else None
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in obj.items() if k in names})


def parse_all(objs: Iterable[TrainEvent | Mapping]) -> list[TrainEvent]:
    """Events typed: JSON objects parsed (those of unknown kinds dropped), typed ones kept as they are."""
    return [e for e in (o if isinstance(o, _Event) else parse(o) for o in objs) if e is not None]


@dataclass(frozen=True)
class StageRun:
    """One stage of a fit (a pre-trained NeuMF runs three) as its events tell it: how it started and
    how many epochs it completed (fewer than planned when stopped)."""

    start: Start
    epochs_run: int


def stages(events: Iterable[TrainEvent | Mapping]) -> list[StageRun]:
    typed = parse_all(events)
    return [StageRun(s, sum(1 for e in typed if isinstance(e, Epoch) and e.stage == s.stage))
            for s in typed if isinstance(s, Start)]


def eta_seconds(samples_left: float, samples_per_second: float, evaluations_left: float = 0.0,
                seconds_per_evaluation: float = 0.0) -> float:
    """Time left in a stage: the samples still to train at the rate so far, plus the evaluations
    still due at the duration of the last one."""
    return samples_left / max(samples_per_second, 1e-9) + evaluations_left * seconds_per_evaluation


@dataclass(frozen=True)
class Progress:
    """Where a fit stands, from its events: what the CLI's progress line, the Train page's bar and
    the job pool show. `fraction` and `eta` are of the current stage (pre-training's GMF, MLP and
    NeuMF stages each start at 0: a stage's length is known only once it starts)."""

    stage: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    fraction: float = 0.0  # of this stage, 0 to 1
    samples_per_second: float = 0.0
    eta: float | None = None  # seconds left in this stage; None before the first estimate
    elapsed: float = 0.0
    device: str = ""
    message: str = ""  # the job pool's last word ("Loading ml-1m"), until training starts
    training: bool = False  # a batch or an epoch has been seen
    finished: bool = False

    def after(self, event: TrainEvent) -> Progress:
        """This summary updated by one more event."""
        if isinstance(event, Job):
            return replace(self, message=event.message)
        if isinstance(event, Start):
            return replace(self, stage=event.stage, epoch=0, epochs=event.epochs, step=0,
                           steps=event.steps_per_epoch, fraction=0.0, eta=None, device=event.device)
        if isinstance(event, Batch):
            steps, epochs = max(1, event.steps), event.epochs or self.epochs
            return replace(self, epochs=epochs, stage=event.stage or self.stage, epoch=event.epoch, step=event.step, steps=steps,
                           fraction=_fraction(event.epoch - 1 + event.step / steps, epochs),
                           samples_per_second=event.samples_per_second, eta=event.eta, elapsed=event.elapsed,
                           training=True)
        if isinstance(event, Epoch):
            epochs = event.epochs or self.epochs
            return replace(self, stage=event.stage or self.stage, epoch=event.epoch, epochs=epochs, step=self.steps,
                           fraction=_fraction(event.epoch, epochs),
                           samples_per_second=event.samples_per_second, eta=event.eta, elapsed=event.elapsed,
                           training=True)
        if isinstance(event, Done):  # the rate and time stay the last batch's: what training ran at
            return replace(self, fraction=self.fraction if event.stopped else 1.0, eta=0.0, finished=True)
        return self


def _fraction(epochs_done: float, epochs: int) -> float:
    return min(1.0, max(0.0, epochs_done / epochs)) if epochs > 0 else 0.0


def progress(events: Iterable[TrainEvent | Mapping]) -> Progress:
    """The summary after `events` (typed, or JSON objects as a job's or a run's file holds them)."""
    summary = Progress()
    for event in parse_all(events):
        summary = summary.after(event)
    return summary
