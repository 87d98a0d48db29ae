"""``epsanet yolo``: the zoo's attention modules inside Ultralytics YOLO, trained offline.

    epsanet yolo demo runs/yolo-demo                    # YOLO11n with/without EMA, CBAM, EPSA on the shapes set
    epsanet yolo train yolo11n-ema data/shapes-yolo/data.yaml epochs=30 imgsz=160 device=cpu

Both run with ``YOLO_OFFLINE=1`` (unless it is set) and Ultralytics' fonts served locally, so that
nothing is downloaded. Needs the ``yolo`` extra (Ultralytics, AGPL-3.0): ``pip install 'epsanet[yolo]'``.
"""
import argparse
import ast
import difflib
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from .._utils.errors import InvalidArgumentError, PathNotFoundError, first_line
from .._utils.paths import Kind, WrongKindError, looks_like_path, path_kind, require_existing, require_output_folder

DEMO_MODELS = ("yolo11n", "yolo11n-ema", "yolo11n-cbam", "yolo11n-epsa")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="yolo_command", metavar="SUBCOMMAND", required=True)
    demo = sub.add_parser(
        "demo", help="train YOLO11n with and without EMA, CBAM and EPSA on the shapes set; table of results",
        description="Write the shapes set in YOLO layout to OUTPUT_DIR/shapes-yolo (unless it is there), train "
                    "each model from scratch on CPU with one recipe and seed into OUTPUT_DIR/runs, and write "
                    "OUTPUT_DIR/results.json and results.md (params, GFLOPs, mAP50, mAP50-95, train time).")
    demo.add_argument("output_dir", nargs="?", default="runs/yolo-demo", help="default: %(default)s")
    demo.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=DEMO_MODELS, metavar="MODEL",
                      help=f"models to train (default: all of {', '.join(DEMO_MODELS)})")
    demo.add_argument("--epochs", type=int, help="default: 30")
    demo.add_argument("--imgsz", type=int, help="default: 160")
    demo.add_argument("--batch", type=int, help="default: 16")
    demo.add_argument("--seed", type=int, help="default: 0")
    demo.add_argument("--train-images", type=int, default=300, help="default: %(default)s")
    demo.add_argument("--val-images", type=int, default=100, help="default: %(default)s")
    train = sub.add_parser(
        "train", help="train a YOLO model whose YAML uses the zoo's layers, offline",
        description="ultralytics.YOLO(MODEL).train(data=DATA, KEY=VALUE...) with the zoo's YAML layers registered "
                    "and no download. MODEL: a shipped YAML (yolo11n-ema, yolo11s-cbam, yolo11n-epsa, "
                    "yolo11n-epsanet50_small; any scale letter), a YAML file, or a .pt checkpoint.")
    train.add_argument("model", help="shipped YAML name, YAML file or checkpoint")
    train.add_argument("data", help="dataset YAML (e.g. from `epsanet detect shapes DIR --format yolo`)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="Ultralytics train arguments, e.g. epochs=30 imgsz=160 device=cpu")


def run(args: argparse.Namespace) -> int:
    # Every input is checked before Ultralytics starts: it prints its settings and makes run folders first.
    if args.yolo_command == "demo":
        require_output_folder(args.output_dir, "output folder")
    else:
        overrides = _parse_overrides(args.overrides)
        model_path = _yolo_model_file(args.model)
        _check_dataset_yaml(args.data)
    os.environ.setdefault("YOLO_OFFLINE", "1")  # read when Ultralytics is imported: no online checks
    import epsanet.integrations.ultralytics as integration  # without Ultralytics: a one-line error naming the extra

    if args.yolo_command == "demo":
        from epsanet.integrations.ultralytics.demo import results_table, run_demo

        options = (("epochs", args.epochs), ("imgsz", args.imgsz), ("batch", args.batch), ("seed", args.seed))
        demo_overrides = {k: v for k, v in options if v is not None}
        rows = run_demo(Path(args.output_dir), models=args.models, train_images=args.train_images,
                        val_images=args.val_images, overrides=demo_overrides)
        print(results_table(rows))
        print(f"saved: {Path(args.output_dir) / 'results.json'} {Path(args.output_dir) / 'results.md'}")
        return 0
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT

    for key in overrides:
        if key in ("model", "data"):
            raise InvalidArgumentError(f"{key}= repeats the {key.upper()} argument: leave it out")
        if key not in DEFAULT_CFG_DICT:
            close = difflib.get_close_matches(key, list(DEFAULT_CFG_DICT), n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else "`yolo cfg` lists them"
            raise InvalidArgumentError(f"{key}= is not an Ultralytics train argument: {hint}")
    model = model_path if model_path is not None else integration.model_yaml(args.model)
    integration.use_local_fonts()
    YOLO(model).train(data=args.data, **overrides)
    return 0


_WRITE_DATASET = "write one with `epsanet detect shapes DIR --format yolo`, or pass the path to yours"


def _yolo_model_file(model: str) -> Optional[str]:
    """``model`` as a YAML or checkpoint file, None for a shipped YAML's name; a path of another
    kind, or a missing one, is a one-line error."""
    info = path_kind(model)
    if info.kind is Kind.MISSING:
        if looks_like_path(model) or model.endswith(".yml"):
            raise PathNotFoundError(f"model {model} does not exist: pass a shipped YAML name (yolo11n-ema, "
                                    "yolo11s-cbam, yolo11n-epsa, ...), a model YAML file or a .pt checkpoint")
        return None
    if info.kind is Kind.TEXT or info.kind is Kind.TORCH_ZIP or info.kind is Kind.TORCH_PICKLE:
        return model
    raise WrongKindError(f"model {model} is {info.description}, not a model YAML nor a .pt checkpoint: pass a "
                         "shipped YAML name (yolo11n-ema, ...), a model YAML file or a .pt checkpoint")


def _check_dataset_yaml(data: str) -> None:
    """A one-line error unless ``data`` is a YAML file naming train and val images and class names."""
    info = require_existing(data, "dataset YAML", _WRITE_DATASET)
    if info.is_folder:
        inside = info.path / "data.yaml"
        fix = f"pass {inside}" if inside.is_file() else _WRITE_DATASET
        raise WrongKindError(f"dataset YAML {data} is a folder, not a YAML file: {fix}")
    if info.kind is not Kind.TEXT:
        raise WrongKindError(f"dataset YAML {data} is {info.description}, not a YAML file: {_WRITE_DATASET}")
    try:
        content = yaml.safe_load(info.path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(f"dataset YAML {data} is not valid YAML ({first_line(e)}): "
                                   f"{_WRITE_DATASET}") from None
    # Ultralytics' check_det_dataset takes "validation" for "val", and "nc" for "names".
    required = (("train",), ("val", "validation"), ("names", "nc"))
    missing = [keys[0] for keys in required if not isinstance(content, dict) or not any(k in content for k in keys)]
    if missing:
        raise InvalidArgumentError(f"dataset YAML {data} has no {', '.join(missing)}: an Ultralytics dataset YAML "
                                   f"names its train and val images and its class names; {_WRITE_DATASET}")


def _parse_overrides(items: List[str]) -> Dict[str, Any]:
    """``["epochs=3", "device=cpu"]`` -> ``{"epochs": 3, "device": "cpu"}`` (values as Python literals
    where they parse as one, else strings)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"train arguments are KEY=VALUE, got {item!r}: e.g. epochs=30")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides
