"""``epsanet models``: the zoo's models with their size and cost, measured by the code."""
import argparse
import json
from typing import Optional

from .._utils.errors import InvalidArgumentError
from ..models import create_model, list_models
from ..tools.stats import count_macs, count_params
from ..weights.catalogue import model_info, weights_entries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name filter (default: all)")
    parser.add_argument("--img-size", type=int, default=224, help="input size for GMACs (default: 224)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.img_size < 32:
        raise InvalidArgumentError(f"--img-size must be at least 32 (the models downsample 32x), got {args.img_size}")
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
            "license": info.get("license"),
            "weights": [e.name for e in weights_entries(name)],
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"| model | params | GMACs @{args.img_size} | paper top-1 | official code | licence | pretrained weights |")
    print("|---|---:|---:|---:|---|---|---|")
    for r in rows:
        top1 = f"{r['paper_top1']:.2f}" if r["paper_top1"] is not None else "-"
        print(f"| {r['model']} | {r['params']:,} | {r['gmacs']:.2f} | {top1} | {_repository(r['origin_url'])} "
              f"| {_licence(r['license'], r['origin_url'])} | {', '.join(r['weights']) or 'none yet'} |")
    return 0


def _repository(url: Optional[str]) -> str:
    if not url:
        return "no official code"
    return f"[{url.split('://', 1)[-1].removeprefix('github.com/')}]({url})"


def _licence(licence: Optional[str], url: Optional[str]) -> str:
    if licence != "unknown":
        return {"mit": "MIT", "apache-2.0": "Apache-2.0"}.get(licence or "", licence or "-")
    # The catalogue says "unknown" both for code without a licence file and for papers without code.
    return "no licence file" if (url or "").startswith("https://github.com/") else "-"
