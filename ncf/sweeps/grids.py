"""What a sweep varies: the settings it can sweep, the values typed for them, and the grid of run
configurations (models x settings x seeds), validated and capped before anything is queued."""

from __future__ import annotations

from dataclasses import dataclass

from ncf import registry
from ncf.config import RunConfig
from ncf.errors import ConfigError
from ncf.experiments import max_runs


@dataclass(frozen=True)
class Setting:
    """A setting a sweep can vary: where it lives in a RunConfig, its type and a sensible default grid."""

    section: str  # "model" or "train"
    kind: type
    label: str
    default: str


# The settings the page offers; the keys are RunConfig field names (and the CLI's flags without "--").
SWEEPABLE: dict[str, Setting] = {
    "factors": Setting("model", int, "predictive factors", "8,16,32,64"),
    "n_negatives": Setting("train", int, "negatives per positive", "1,2,4,8"),
    "epochs": Setting("train", int, "epochs", "2,4,8"),
    "lr": Setting("train", float, "learning rate", "0.001,0.005,0.01"),
    "batch_size": Setting("train", int, "batch size", "256,1024,4096"),
    "weight_decay": Setting("train", float, "weight decay", "0,0.01,0.1"),
    "dropout": Setting("model", float, "dropout", "0,0.2,0.5"),
}


def variants() -> list[str]:
    """The models a sweep can compare: the ranking (implicit-feedback) ones, whose metrics share a chart."""
    return [m for m in registry.names() if registry.get(m).default_objective == "implicit"]


def parse_values(name: str, text: str) -> list:
    """'8, 16,32' -> [8, 16, 32] for a sweepable setting; a specific error otherwise."""
    if name not in SWEEPABLE:
        raise ConfigError(f"{name!r} cannot be swept here; choose one of {', '.join(SWEEPABLE)}.")
    kind = SWEEPABLE[name].kind
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"Give at least one value for {SWEEPABLE[name].label}, such as {SWEEPABLE[name].default}.")
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise ConfigError(f"Values of {SWEEPABLE[name].label} are {what} separated by commas, got {text!r}.") from None
    return list(dict.fromkeys(values))  # a repeated value would only repeat runs


@dataclass(frozen=True)
class Point:
    values: dict  # {"model": "gmf", "factors": 8, "seed": 0}
    config: RunConfig


def grid(base: RunConfig, models: list[str], params: dict[str, list], seeds: list[int]) -> list[Point]:
    """Every configuration, models slowest, then the settings in the order given, seeds fastest.
    Each is validated; a grid past the session cap is refused with a message that names the cap."""
    if not models:
        raise ConfigError("Choose at least one model to sweep.")
    if not seeds:
        raise ConfigError("Give at least one seed, such as 0.")
    for name in params:
        if name not in SWEEPABLE:
            raise ConfigError(f"{name!r} cannot be swept here; choose one of {', '.join(SWEEPABLE)}.")
    n = len(models) * len(seeds)
    for values in params.values():
        n *= len(values)
    cap = max_runs()
    if n > cap:
        raise ConfigError(f"This sweep has {n} runs; a session's sweep is capped at {cap} runs on this server "
                          "(NCF_MAX_SWEEP_RUNS). Sweep fewer values, models or seeds.")
    points = []
    for model in models:
        combos: list[dict] = [{}]
        for name, values in params.items():
            combos = [{**c, name: v} for c in combos for v in values]
        for combo in combos:
            for seed in seeds:
                m, t = base.model.replace(model=model, pretrain=base.model.pretrain and model == "neumf"), base.train
                for name, value in combo.items():
                    if SWEEPABLE[name].section == "model":
                        m = m.replace(**{name: value})
                    else:
                        t = t.replace(**{name: value})
                t = t.replace(seed=int(seed))
                if "factors" in combo and base.model.layers is not None:
                    m = m.replace(layers=None)  # the tower follows the predictive factors (He et al.'s towers)
                m.validate()
                t.validate()
                values = {"model": model, **combo, "seed": int(seed)}
                points.append(Point(values, base.replace(model=m, train=t)))
    return points


def point_label(values: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())

def parse_seeds(text: str) -> list[int]:
    """'0, 1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(p) for p in str(text).replace(" ", "").split(",") if p]
    except ValueError:
        raise ConfigError(f"Seeds are whole numbers separated by commas, such as 0,1,2; got {text!r}.") from None
    if not seeds:
        raise ConfigError("Give at least one seed, such as 0.")
    return list(dict.fromkeys(seeds))
