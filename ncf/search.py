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


# ---------------------------------------------------------------------------------------------
# A search through the shared job pool (the app's Search page)
#
# A search is a sweep (ncf.sweeps) whose points are not known in advance: the sweep file carries a
# "search" entry (the model, the ranges, the budget of runs, the sampler's seed), and when its last
# trial has finished the sweep driver asks `next_point` for the next one. So trials go through the job
# pool one at a time like a sweep's runs, taking turns with other sessions, stop as a whole, and
# survive a server restart; the study is rebuilt from the finished trials' validation figures each
# time (TPE seeded by the search's seed and the number of trials told), so it needs no state of its own.


def _distribution(r: Range):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if r.choices:
        return CategoricalDistribution(list(r.choices))
    if r.integer:
        return IntDistribution(int(r.low), int(r.high), log=r.log)
    return FloatDistribution(r.low, r.high, log=r.log)


def ask(ranges: list[Range], told: list[tuple[dict, float | None]], seed: int = 0) -> dict:
    """The next trial's values given the trials told so far ((values, val_hr@10 or None when failed))."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {r.flag: _distribution(r) for r in ranges}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed + len(told)))
    for values, score in told:
        params = {k: values[k] for k in dists}
        if score is None or not math.isfinite(score):
            study.add_trial(create_trial(params=params, distributions=dists, state=TrialState.FAIL))
        else:
            study.add_trial(create_trial(params=params, distributions=dists, value=score))
    return dict(study.ask(dists).params)


def trial_config(base, model: str, values: dict):
    """The RunConfig of one trial: `base` with the model and the values (as a sweep's point) and the
    validation hold-out on, which is what the trial is judged on."""
    from ncf import sweeps

    data = base.data.replace(validation=True, split="leave_one_out")
    values = dict(values)
    model = values.pop("model", model)
    return sweeps.grid(base.replace(data=data), [model], {k: [v] for k, v in values.items()},
                       [base.train.seed])[0].config


def start_search(runner, base, model: str, ranges: list[Range], budget: int, owner: str, name: str = "",
                 seed: int = 0):
    """Validates the ranges and the first trial's configuration, writes the search (a sweep with a
    "search" entry) and queues its first trial. Returns the `ncf.sweeps.Sweep`."""
    from ncf import sweeps
    from ncf.experiments import max_runs

    if budget < 1:
        raise ConfigError(f"A search needs a budget of at least one run, got {budget}.")
    if budget > max_runs():
        raise ConfigError(f"A budget of {budget} runs is past this server's cap of {max_runs()} runs a session "
                          "(NCF_MAX_SWEEP_RUNS); choose fewer.")
    if not ranges:
        raise ConfigError("Choose at least one setting to search, with its range.")
    for r in ranges:
        if r.flag != "model" and r.flag not in sweeps.SWEEPABLE:
            raise ConfigError(f"{r.flag!r} cannot be searched here; choose from {', '.join(sweeps.SWEEPABLE)}.")
    first = {r.flag: (r.choices[0] if r.choices else (int(r.low) if r.integer else r.low)) for r in ranges}
    trial_config(base, model, first)  # a bad range fails here, before anything is queued
    search = {"model": model, "ranges": [_range_dict(r) for r in ranges], "budget": int(budget), "seed": int(seed)}
    name = name.strip() or f"search {model}: {', '.join(r.flag for r in ranges)}"
    return sweeps.start_sweep(runner, base.replace(data=base.data.replace(validation=True)), [], {}, [], owner,
                              name=name, search=search)


def _range_dict(r: Range) -> dict:
    return {"flag": r.flag, "low": r.low, "high": r.high, "log": r.log, "integer": r.integer,
            "choices": list(r.choices)}


def _ranges(search: dict) -> list[Range]:
    return [Range(**{**r, "choices": tuple(r.get("choices") or ())}) for r in search["ranges"]]


def _run_metrics(models_dir, run_ids: set[str]) -> dict[str, dict]:
    from ncf.runs import list_runs

    if not run_ids:
        return {}
    return {r.id: r.metrics for r in list_runs(models_dir) if r.id in run_ids and r.error is None}


def next_point(info: dict, models_dir) -> dict | None:
    """The sweep driver's hook: the next trial of the search `info` (a sweep file's content) as a sweep
    point, or None when its budget is spent. Only the finished trials' validation figures are read."""
    from ncf.config import RunConfig
    from ncf.sweeps import point_label

    search = info["search"]
    if len(info["points"]) >= search["budget"]:
        return None
    metrics = _run_metrics(models_dir, {p["run_id"] for p in info["points"] if p.get("run_id")})
    names = [r["flag"] for r in search["ranges"]]
    told = []
    for p in info["points"]:
        score = (metrics.get(p.get("run_id")) or {}).get(OBJECTIVE) if p["state"] == "done" else None
        told.append(({k: p["values"][k] for k in names}, score))
    values = ask(_ranges(search), told, seed=search["seed"])
    cfg = trial_config(RunConfig.from_dict(info["base"]), search["model"], values)
    label = f"{info['name']} · trial {len(info['points'])}: {point_label(values)}"
    return {"values": {"model": cfg.model.model, **{k: v for k, v in values.items() if k != "model"}},
            "config": cfg.replace(name=label[:120]).to_dict(), "job": None, "state": "pending", "run_id": None,
            "error": None}


def trial_rows(sweep, models_dir) -> list[dict]:
    """The search's trials as they stand: number, values, state and the validation figure it is judged on.
    No test figure: those are read once, for the chosen trial, by `outcome`."""
    metrics = _run_metrics(models_dir, {p["run_id"] for p in sweep.points if p.get("run_id")})
    return [{"trial": i, **p["values"], "state": p["state"],
             OBJECTIVE: (metrics.get(p["run_id"]) or {}).get(OBJECTIVE) if p.get("run_id") else None,
             "run": p.get("run_id") or ""} for i, p in enumerate(sweep.points)]


def outcome(sweep, models_dir) -> dict | None:
    """When the search has ended: the trial with the best validation figure, and that trial's test
    figures, read now and only for it. None while it runs or when no trial finished."""
    if sweep.active:
        return None
    done = [(i, p) for i, p in enumerate(sweep.points) if p["state"] == "done" and p.get("run_id")]
    metrics = _run_metrics(models_dir, {p["run_id"] for _, p in done})
    scored = [(metrics[p["run_id"]][OBJECTIVE], i, p) for i, p in done
              if OBJECTIVE in metrics.get(p["run_id"], {}) and math.isfinite(metrics[p["run_id"]][OBJECTIVE])]
    if not scored:
        return None
    score, number, point = max(scored, key=lambda s: (s[0], -s[1]))
    test = {k: v for k, v in metrics[point["run_id"]].items() if not k.startswith("val_")}
    return {"trial": number, "values": point["values"], OBJECTIVE: score, "test_metrics_read_once": test,
            "run": point["run_id"]}


# The ranges the page starts from, one per setting it can search (ncf.sweeps.SWEEPABLE's names).
DEFAULT_RANGES: dict[str, tuple[float, float, bool]] = {
    "factors": (8, 64, True), "n_negatives": (1, 8, False), "epochs": (2, 16, False), "lr": (0.001, 0.05, True),
    "batch_size": (256, 4096, True), "weight_decay": (0.0, 0.2, False), "dropout": (0.0, 0.5, False),
}


def setting_range(name: str, low, high, log: bool = False) -> Range:
    """A range of one searchable setting from the page's fields, whole numbers where the setting is one."""
    from ncf import sweeps

    if name not in sweeps.SWEEPABLE:
        raise ConfigError(f"{name!r} cannot be searched here; choose from {', '.join(sweeps.SWEEPABLE)}.")
    label = sweeps.SWEEPABLE[name].label
    integer = sweeps.SWEEPABLE[name].kind is int
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        raise ConfigError(f"The range of {label} needs two numbers, got {low!r} and {high!r}.") from None
    if integer and not (lo.is_integer() and hi.is_integer()):
        raise ConfigError(f"{label.capitalize()} is a whole number; give whole bounds, got {low} and {high}.")
    if not lo < hi or (log and lo <= 0):
        raise ConfigError(f"The range of {label} needs from < to{' and from > 0 on a log scale' if log else ''}, "
                          f"got {low} to {high}.")
    return Range(flag=name, low=lo, high=hi, log=log, integer=integer)
