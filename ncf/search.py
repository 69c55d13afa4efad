"""Hyper-parameter search with Optuna, chosen on the validation hold-out only.

Every trial trains on a leave-one-out split with a validation hold-out (each user's second-latest
interaction) and reports `val_hr@10` to the study; the test items are never read to choose. The
chosen trial's test figures are reported once, at the end, labelled as such.

    python -m ncf search --data ml-100k --model neumf --trials 20 --param factors=8:64:log --param lr=0.001:0.05:log
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ncf.errors import ConfigError

OBJECTIVE = "val_hr@10"


@dataclass(frozen=True)
class Range:
    """One searched setting: a train flag's name and its range ('factors=8:64:log', 'lr=1e-3:1e-1:log',
    'neg=2:8', 'model=gmf|mlp|neumf')."""

    flag: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Range:
        name, sep, spec = text.partition("=")
        name = name.strip().lstrip("-")
        if not sep or not name or not spec:
            raise ConfigError(f"A searched setting reads name=low:high[:log] or name=a|b|c (such as "
                              f"factors=8:64:log or model=gmf|neumf); got {text!r}.")
        if "|" in spec:
            return cls(flag=name, choices=tuple(c.strip() for c in spec.split("|") if c.strip()))
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ConfigError(f"{name}: a range reads low:high or low:high:log, got {spec!r}.")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ConfigError(f"{name}: the bounds of {spec!r} are not numbers.") from None
        log = len(parts) == 3
        if not low < high or (log and low <= 0):
            raise ConfigError(f"{name}: need low < high{' and low > 0 on a log scale' if log else ''}, got {spec!r}.")
        integer = parts[0].lstrip("-").isdigit() and parts[1].lstrip("-").isdigit()
        return cls(flag=name, low=low, high=high, log=log, integer=integer)

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.flag, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.flag, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.flag, self.low, self.high, log=self.log)


@dataclass
class Trial:
    number: int
    values: dict
    val_hr: float
    run: str
    test_metrics: dict = field(repr=False, default_factory=dict)  # read only for the chosen trial


@dataclass
class SearchResult:
    trials: list[Trial]
    best: Trial | None

    def summary(self) -> dict:
        """The chosen trial's settings and validation figure, then its test figures, labelled."""
        if self.best is None:
            return {"trials": len(self.trials), "best": None}
        return {"trials": len(self.trials), "chosen_on": OBJECTIVE, "best_trial": self.best.number,
                "best_values": self.best.values, "best_val_hr@10": self.best.val_hr,
                "best_test_metrics_read_once": self.best.test_metrics, "run": self.best.run,
                "all": [{"trial": t.number, **t.values, OBJECTIVE: t.val_hr} for t in self.trials]}


def run_search(ranges: list[Range], trials: int, make_config: Callable[[dict], object], *,
               load_split: Callable, save: Callable, seed: int = 0, on_trial: Callable | None = None,
               stop=None) -> SearchResult:
    """`trials` Optuna (TPE, seeded) trials over `ranges`; `make_config(values)` builds each trial's
    RunConfig, which must have a validation hold-out. Trials are saved as runs like any other."""
    import optuna

    from ncf.train import train

    if trials < 1:
        raise ConfigError(f"A search needs at least one trial, got {trials}.")
    if not ranges:
        raise ConfigError("Name at least one setting to search, such as --param factors=8:64:log.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    splits: dict[str, object] = {}
    done: list[Trial] = []
    for number in range(trials):
        if stop is not None and stop.is_set():
            break
        trial = study.ask()
        values = {r.flag: r.suggest(trial) for r in ranges}
        cfg = make_config(values)
        if not cfg.data.validation or cfg.data.split != "leave_one_out":
            raise ConfigError("A search chooses on the validation hold-out, which needs the leave-one-out split "
                              "with --validation.")
        key = f"{cfg.data.to_dict()}|{cfg.model.resolved_objective}"
        if key not in splits:
            splits[key] = load_split(cfg.data, cfg.model.resolved_objective)
        result = train(cfg, splits[key], stop=stop)
        score = result.metrics.get(OBJECTIVE)
        if score is None or not math.isfinite(score):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        study.tell(trial, score)
        run = save(result, cfg, splits[key])
        kept = Trial(number, values, score, str(run.path),
                     {k: v for k, v in result.metrics.items() if not k.startswith("val_")})
        done.append(kept)
        if on_trial is not None:
            on_trial(kept)
    best = max(done, key=lambda t: t.val_hr) if done else None
    return SearchResult(done, best)
