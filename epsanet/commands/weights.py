"""``epsanet weights``: the catalogue of pretrained weights."""
import argparse
import fnmatch
import json

from .._utils.errors import InvalidArgumentError
from ..weights.catalogue import weights_entries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter on model.tag (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _size(cfg: dict) -> str:
    size = cfg.get("test_input_size", cfg["input_size"])
    return f"{size[1]}" if size[1] == size[2] else f"{size[1]}x{size[2]}"


def run(args: argparse.Namespace) -> int:
    entries = [e for e in weights_entries() if fnmatch.fnmatch(e.name, args.pattern)]
    if not entries:
        raise InvalidArgumentError(f"no catalogued weights match {args.pattern!r}: see `epsanet weights`")
    rows = [{
        "weights": e.name, "top1": e.top1, "top5": e.top5, "eval_size": _size(e.cfg),
        "crop_pct": e.cfg.get("test_crop_pct", e.cfg["crop_pct"]), "source": e.source,
        "fetch": "by hand" if e.by_hand else "automatic", "fetch_code": e.extra.get("fetch_code"),
        "license": e.cfg.get("license"), "sha256": e.sha256,
    } for e in entries]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| weights | top-1 | top-5 | eval size (crop) | source | licence |")
    print("|---|---:|---:|---:|---|---|")
    for r in rows:
        code = f" (extraction code {r['fetch_code']})" if r["fetch_code"] else ""
        source = f"by hand: {r['source']}{code}" if r["fetch"] == "by hand" else f"`{r['source']}`"
        print(f"| {r['weights']} | {r['top1']:g} | {r['top5']:g} | {r['eval_size']} ({r['crop_pct']}) | {source} "
              f"| {r['license']} |")
    return 0
