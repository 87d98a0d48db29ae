"""``epsanet models``: the zoo's models with their size and cost, measured by the code.

The default table fits the terminal (80 columns when output is not one); ``--format markdown``
prints the wide table of docs/models.md (with the official code's links), ``--format json`` every
field."""
import argparse
import json
from typing import Optional

from .._utils.errors import InvalidArgumentError
from .._utils.sizes import require_image_size
from .._utils.table import plain_table
from ..models import create_model, list_models
from ..tools.stats import count_macs, count_params
from ..weights.catalogue import licence, model_info, weights_entries

FORMATS = ("table", "markdown", "json")


def add_format_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format table|markdown|json`` and ``--json`` (the same as ``--format json``)."""
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table: plain, fits the terminal (default); markdown: wide, with links; json: all fields")
    parser.add_argument("--json", dest="format", action="store_const", const="json", help="the same as --format json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name filter (default: all)")
    parser.add_argument("--img-size", type=int, default=224, help="input size for GMACs (default: 224)")
    add_format_arguments(parser)


def run(args: argparse.Namespace) -> int:
    require_image_size(args.img_size)
    names = list_models(args.pattern)
    if not names:
        raise InvalidArgumentError(f"no model matches {args.pattern!r}: see `epsanet models`")
    rows = []
    for name in names:
        model = create_model(name, device="meta")  # shapes only: counting needs no real weights
        info = model_info(name)
        rows.append({
            "model": name,
            "params": count_params(model),
            "gmacs": round(count_macs(model, (3, args.img_size, args.img_size)) / 1e9, 2),
            "paper_top1": info.get("paper_top1"),
            "origin_url": info.get("origin_url"),
            "license": licence(info),
            "weights": [e.name for e in weights_entries(name)],
        })
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "markdown":
        print(f"| model | params | GMACs @{args.img_size} | paper top-1 | official code | licence | pretrained "
              "weights |\n|---|---:|---:|---:|---|---|---|")
        for r in rows:
            print(f"| {r['model']} | {r['params']:,} | {r['gmacs']:.2f} | {_top1(r)} | {_repository(r['origin_url'])} "
                  f"| {r['license']} | {', '.join(r['weights']) or 'none yet'} |")
    else:
        print(plain_table(
            ["model", "params", f"GMACs@{args.img_size}", "paper top-1", "licence", "weights"],
            [[r["model"], f"{r['params'] / 1e6:.1f}M", f"{r['gmacs']:.2f}", _top1(r), r["license"],
              str(len(r["weights"])) if r["weights"] else "-"] for r in rows],
            right=(1, 2, 3, 5)))
    return 0


def _top1(row: dict) -> str:
    return f"{row['paper_top1']:.2f}" if row["paper_top1"] is not None else "-"


def _repository(url: Optional[str]) -> str:
    if not url:
        return "no official code"
    return f"[{url.split('://', 1)[-1].removeprefix('github.com/')}]({url})"
