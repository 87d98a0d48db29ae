"""``epsanet weights``: the catalogue of pretrained weights, and a file checked against its entry.

The default table fits the terminal (80 columns when output is not one); ``--format markdown``
adds where each checkpoint comes from (the Hub id, or the page to fetch it from by hand),
``--format json`` every field."""
import argparse
import fnmatch
import json

from .._utils.errors import InvalidArgumentError
from .._utils.table import plain_table
from ..weights.catalogue import licence, weights_entries
from ..weights.download import verify_catalogue_file
from .models import add_format_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter on model.tag (default: all)")
    add_format_arguments(parser)
    parser.add_argument("--verify", metavar="FILE",
                        help="check FILE against the sha256 of the entry named by the pattern (model.tag)")


def _size(cfg: dict) -> str:
    size = cfg.get("test_input_size", cfg["input_size"])
    return f"{size[1]}" if size[1] == size[2] else f"{size[1]}x{size[2]}"


def run(args: argparse.Namespace) -> int:
    if args.verify:
        digest = verify_catalogue_file(args.pattern, args.verify)
        print(f"{args.verify} is {args.pattern}: sha256 {digest}")
        return 0
    entries = [e for e in weights_entries() if fnmatch.fnmatch(e.name, args.pattern)]
    if not entries:
        raise InvalidArgumentError(f"no catalogued weights match {args.pattern!r}: see `epsanet weights`")
    rows = [{
        "weights": e.name, "top1": e.top1, "top5": e.top5, "eval_size": _size(e.cfg),
        "crop_pct": e.cfg.get("test_crop_pct", e.cfg["crop_pct"]), "source": e.source,
        "fetch": "by hand" if e.by_hand else "automatic", "fetch_code": e.extra.get("fetch_code"),
        "license": licence(e.cfg), "sha256": e.sha256,
    } for e in entries]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "markdown":
        print("| weights | top-1 | top-5 | eval size (crop) | source | licence |\n|---|---:|---:|---:|---|---|")
        for r in rows:
            code = f" (extraction code {r['fetch_code']})" if r["fetch_code"] else ""
            source = f"by hand: {r['source']}{code}" if r["fetch"] == "by hand" else f"`{r['source']}`"
            print(f"| {r['weights']} | {r['top1']:g} | {r['top5']:g} | {r['eval_size']} ({r['crop_pct']}) | "
                  f"{source} | {r['license']} |")
    else:
        print(plain_table(
            ["weights", "top-1", "top-5", "size/crop", "fetch", "licence"],
            [[r["weights"], f"{r['top1']:g}", f"{r['top5']:g}", f"{r['eval_size']}/{r['crop_pct']}",
              "by hand" if r["fetch"] == "by hand" else "auto", r["license"]] for r in rows],
            right=(1, 2)))
        if any(r["fetch"] == "by hand" for r in rows):
            print("weights fetched by hand: `epsanet weights --format markdown` says where from")
    return 0
