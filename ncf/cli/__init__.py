"""`python -m ncf {data,train,sweep,search,evaluate,recommend,similar,runs,bench}`.

Each command is a small function from parsed arguments to an exit code. Errors a user can cause
(`NCFError`) print one line, `error: <message>`, and exit with 2; anything else keeps its
traceback, because it is a bug. Heavy modules (torch) are imported inside the commands, after
the cheap checks, so a bad file or flag fails in a fraction of a second.

One module per command group (data, train, experiments: sweep and search, explore: evaluate,
recommend and similar, runs, bench), each with its `cmd_*` functions and `add_parser`; `common`
holds the helpers they share and `progress` what a long command prints while it works.
"""

from __future__ import annotations

import argparse
import sys

from ncf.cli import bench, data, experiments, explore, runs, train
from ncf.cli.train import config_from_args
from ncf.errors import NCFError

__all__ = ["build_parser", "config_from_args", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ncf", description="NCF Lab: Neural Collaborative Filtering "
                                "from the command line (data, training, evaluation, recommendations).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, train, experiments, explore, runs, bench):  # the order `--help` lists them in
        group.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] in (["sweep"], ["search"]):  # the train flags after these are parsed per run
        args, args.flags = parser.parse_known_args(argv)
    else:
        args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NCFError as exc:
        sys.stdout.flush()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `python -m ncf runs | head`
        sys.stderr.close()
        return 0
