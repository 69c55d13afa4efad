"""What every command shares: parsing comma lists and column roles, plain tables, JSON output,
naming a saved run, and Ctrl-C asking a run to stop."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading

from ncf.errors import ConfigError

SPLITS = {"loo": "leave_one_out", "leave_one_out": "leave_one_out", "ratio": "ratio", "published": "published",
          "cold-users": "cold_users", "cold-items": "cold_items"}


def int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{what} are whole numbers separated by commas such as 64,32,16,8; got {text!r}.") from None
    if not values:
        raise ConfigError(f"{what} need at least one number, got {text!r}.")
    return values


def float_list(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{what} are numbers separated by commas such as 0.9,0.999; got {text!r}.") from None


def parse_columns(text: str | None) -> dict[str, str | int] | None:
    """'user=userId,item=movieId,rating=2' -> {"user": "userId", "item": "movieId", "rating": 2}."""
    if not text:
        return None
    roles = ("user", "item", "rating", "timestamp")
    out: dict[str, str | int] = {}
    for part in text.split(","):
        role, sep, column = part.partition("=")
        role, column = role.strip(), column.strip()
        if not sep or role not in roles or not column:
            raise ConfigError(f"--columns takes role=column pairs with roles {', '.join(roles)} "
                              f"(for example user=userId,item=movieId); got {part!r}.")
        out[role] = int(column) if column.isdigit() else column
    return out


def optional_path(text: str | None):
    from pathlib import Path

    return None if text is None else Path(text)


def fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain fixed-width table (no dependency, readable in any terminal or log)."""
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def print_json(obj) -> None:
    print(json.dumps(obj, default=_json_default))


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def load_run_arg(text: str):
    """A run named on the command line: an id in the models folder, or a folder path."""
    from ncf.runs import load_run, run_ref

    return load_run(run_ref(text))


def print_breakdown(model, split, k: int, as_json: bool) -> None:
    from ncf.evaluate import by_activity

    rows = by_activity(model, split, k)
    if as_json:
        print_json({"by_activity": rows})
        return
    columns = ["group", "bucket", "n_test", *[c for c in (f"hr@{k}", f"ndcg@{k}", "mse", "mae") if rows and c in rows[0]]]
    print("by training interactions of the test case's user (users) and item (items):")
    print(table(rows, columns))


class stop_on_interrupt:
    """The first Ctrl-C asks the trainer to stop (the run is still saved); a second one aborts."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.previous = None

    def _handler(self, signum, frame):
        self.stop.set()
        print("\nstopping at the end of this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, self.previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
