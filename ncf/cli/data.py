"""`python -m ncf data SOURCE`: read a ratings source and summarise it."""

from __future__ import annotations

from ncf.cli.common import parse_columns, print_json, table
from ncf.cli.progress import download_bar


def load_dataset(source: str, columns: dict | None = None):
    from ncf.data import load

    return load(source, columns=columns, progress=download_bar)


def cmd_data(args) -> int:
    ds = load_dataset(args.source, parse_columns(args.columns))
    from ncf.data import format_summary
    from ncf.data.features import describe_available

    features = describe_available(ds)
    if args.json:
        print_json({**ds.summary(), "features": features})
    else:
        print(format_summary(ds))
    if not args.json:
        if features:
            print("side features (train --features all, or a comma list of these):")
            print(table(features, ["feature", "side", "kind", "categories", "description"]))
        else:
            print("side features: none (the source has no user or item attributes)")
    return 0


def add_parser(sub) -> None:
    d = sub.add_parser("data", help="read a ratings source and summarise it")
    d.add_argument("source", help="synthetic, a MovieLens name (ml-100k, ml-1m, ...) or a path")
    d.add_argument("--columns", help="role=column pairs overriding detection, e.g. user=userId,item=movieId")
    d.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    d.set_defaults(func=cmd_data)
