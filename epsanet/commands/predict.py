"""``epsanet predict``: the top-k classes of images, with the weights' preprocessing and class names.

    epsanet predict cat.jpg photos/ --model se_resnet50 --pretrained a1_in1k
    epsanet predict digits/ --model runs/digits-epsanet50_small          # a training run's best model
    epsanet predict x.png --model eca_resnet50 --weights converted/ --json
    epsanet predict photos/ --model model.xml                        # an OpenVINO export (epsanet export)
    epsanet predict photos/ --model runs/digits --runtime openvino    # compiled for OpenVINO in memory

The readable images are predicted even when others cannot be read; each unreadable one is named
on stderr, and the command ends with one line counting them (exit status 2).
"""
import argparse
import json
import sys

from .._utils.errors import InvalidArgumentError
from .._utils.paths import Kind, path_kind

EXPORT_SUFFIXES = (".xml", ".onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders of them")
    parser.add_argument("--model", required=True,
                        help="zoo model name with one of --weights/--pretrained/--checkpoint, or a model that has "
                             "its weights: a hub folder, a training run folder, an hf-hub:ORG/NAME id, an "
                             "`epsanet train` checkpoint")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", metavar="W", help="weights for --model: a hub folder, training run folder or "
                                                        "hf-hub:ORG/NAME id holding that architecture")
    weights.add_argument("--pretrained", metavar="TAG", help="catalogue weights of --model, e.g. a1_in1k")
    weights.add_argument("--checkpoint", metavar="C",
                         help="a checkpoint of --model (.pth.tar, state dict, safetensors)")
    parser.add_argument("--runtime", choices=["openvino", "onnxruntime"],
                        help="serve the model from this runtime, compiled in memory as epsanet export would write it "
                             "(default: PyTorch; an export given as --model runs in its own runtime)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="with --runtime: what the runtime computes in (default: fp32)")
    parser.add_argument("--top-k", type=int,
                        help="classes to show per image (default: 5, or all of a model with fewer)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: 32)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _exported_model(args: argparse.Namespace):
    """The export named by --model, served by its runtime."""
    from ..runtimes import RUNTIMES
    from ..runtimes.exported import load_export

    for option in ("weights", "pretrained", "checkpoint"):
        if getattr(args, option) is not None:
            raise InvalidArgumentError(f"--model {args.model} is an export, which holds its weights: drop --{option}")
    runtime = next(name for name, module in RUNTIMES.items() if args.model.endswith(module.SUFFIX))
    if args.runtime not in (None, runtime):
        raise InvalidArgumentError(f"--model {args.model} is an {runtime} export: drop --runtime {args.runtime}, or "
                                   f"export the model for {args.runtime}")
    if args.precision != "fp32":
        raise InvalidArgumentError(f"--model {args.model} is an export, which computes in the precision it was "
                                   "exported in: drop --precision")
    return load_export(args.model)


def run(args: argparse.Namespace) -> int:
    from .._utils.device import resolve_device
    from ..hub.sources import load_model, local_source, require_weights, source_info
    from ..models import get_model_builder
    from ..tools.predict import find_images, predict
    from ..weights.catalogue import canonical_model

    images = find_images(args.images)  # before the model: a wrong path is found in an instant
    device = resolve_device(args.device)
    if args.top_k is not None and args.top_k < 1:
        raise InvalidArgumentError(f"--top-k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.model.endswith(EXPORT_SUFFIXES) and path_kind(args.model).kind is not Kind.MISSING:
        model = _exported_model(args)
    elif args.weights is not None:
        get_model_builder(args.model)
        if not (args.weights.startswith("hf-hub:") or local_source(args.weights, "--weights") is not None):
            raise InvalidArgumentError(f"--weights {args.weights} is not a path nor an hf-hub:ORG/NAME id: pass a hub "
                                       "folder, a training run folder or an hf-hub id (catalogue weights: --pretrained "
                                       "TAG)")
        model = load_model(args.weights, role="--weights")
        architecture = source_info(model).architecture
        if canonical_model(architecture) != canonical_model(args.model):
            raise InvalidArgumentError(f"--weights {args.weights} holds {architecture} weights, not {args.model}: pass "
                                       f"--model {architecture}")
    else:
        require_weights(args.model, args.pretrained, args.checkpoint, "predicts noise",
                        "--pretrained TAG (see `epsanet weights`), --weights DIR or --checkpoint FILE")
        model = load_model(args.model, args.pretrained, args.checkpoint)
    if args.runtime is not None and not args.model.endswith(EXPORT_SUFFIXES):
        from ..runtimes.exported import serve

        model = serve(model, args.runtime, args.precision, log=lambda message: print(message, file=sys.stderr))
    result = predict(model, args.images, top_k=args.top_k, batch_size=args.batch_size, device=device)
    if args.json:
        print(json.dumps([p.to_dict() for p in result.predictions], indent=2))
    elif result.predictions:
        print("| image | rank | class | probability |")
        print("|---|---:|---|---:|")
        for prediction in result.predictions:
            for rank, (index, name, probability) in enumerate(prediction.top_k, 1):
                image = prediction.image if rank == 1 else ""
                print(f"| {image} | {rank} | {name} ({index}) | {100 * probability:.2f}% |")
    if result.unreadable:
        for reason in result.unreadable.values():
            print(f"epsanet predict: {reason}", file=sys.stderr)
        named = list(result.unreadable)[:3] + ([f"... ({len(result.unreadable) - 3} more)"]
                                               if len(result.unreadable) > 3 else [])
        raise InvalidArgumentError(f"{len(result.unreadable)} of {len(images)} images could not be read: "
                                   f"{', '.join(named)}")
    return 0
