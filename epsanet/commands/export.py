"""``epsanet export``: a model for inference outside PyTorch: OpenVINO IR, ONNX (for ONNX Runtime)
or TorchScript, from a zoo model (with catalogue weights or a checkpoint), a hub folder, a
training run or an hf-hub id.

    epsanet export epsanet50_small model.xml                        # OpenVINO, fp32
    epsanet export runs/digits model.xml --precision int8 --calibration digits
    epsanet export se_resnet50 --pretrained a1_in1k model.onnx      # ONNX Runtime

OpenVINO and ONNX exports compute each PSA branch the way measured fastest in their runtime on
this machine, are checked against the model, and carry their classes and preprocessing in
``<file>.json`` beside the graph (see :mod:`epsanet.runtimes`)."""
import argparse
import sys

from .._utils.errors import InvalidArgumentError, PathNotFoundError
from .._utils.paths import WrongKindError, path_kind
from .._utils.sizes import require_image_size

FORMATS = {".xml": "openvino", ".onnx": "onnx", ".pt": "torchscript"}
SUFFIXES = {output_format: suffix for suffix, output_format in FORMATS.items()}
RUNTIME_OF_FORMAT = {"openvino": "openvino", "onnx": "onnxruntime"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo model name (e.g. epsanet50_small), hub folder, training run folder "
                                      "(its best model), hf-hub:ORG/NAME id or `epsanet train` checkpoint")
    parser.add_argument("output", help="destination: .xml for OpenVINO (its .bin is written beside it), .onnx for "
                                       "ONNX Runtime, .pt for TorchScript")
    parser.add_argument("--format", choices=sorted(FORMATS.values()),
                        help="the output's format (default: from its suffix, which must agree)")
    parser.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                        help="what the runtime computes in: fp32, bf16 (OpenVINO, on CPUs with avx512_bf16 or AMX) or "
                             "int8 (needs --calibration) (default: fp32)")
    parser.add_argument("--plans", choices=["measure", "rule"], default="measure",
                        help="how each PSA branch is computed: measured fastest in the target runtime on this machine "
                             "(cached), or the eager rule (default: measure)")
    parser.add_argument("--calibration", metavar="DATA",
                        help="int8: images to calibrate on and measure top-1 before/after on: digits, or an image "
                             "folder (ROOT/<class>/*, or ROOT/train/ to calibrate and ROOT/val/ to measure)")
    parser.add_argument("--calibration-images", type=int, default=300, metavar="N",
                        help="int8: images the ranges are calibrated on (default: 300)")
    parser.add_argument("--max-accuracy-drop", type=float, default=1.0, metavar="POINTS",
                        help="int8: refuse the export when top-1 drops by more points than this (default: 1.0)")
    parser.add_argument("--pretrained", metavar="TAG", help="catalogue weights of the zoo model, e.g. a1_in1k")
    parser.add_argument("--checkpoint", help="weights for the zoo model (official .pth.tar, state dict or safetensors)")
    parser.add_argument("--num-classes", type=int,
                        help="classifier width of a zoo model without weights (default: 1000, or the weights' own)")
    parser.add_argument("--img-size", type=int,
                        help="input size of the graph (default: the model's own, e.g. the size a run trained at)")
    parser.add_argument("--no-fuse-bn", action="store_true",
                        help="TorchScript: keep BatchNorms instead of folding them into convolutions")


def _output_format(args: argparse.Namespace) -> str:
    suffix = next((s for s in FORMATS if args.output.endswith(s)), None)
    if suffix is None:
        if args.format is None:
            raise InvalidArgumentError(f"cannot tell the format of {args.output}: name it *.xml (OpenVINO), *.onnx "
                                       "(ONNX Runtime) or *.pt (TorchScript)")
        raise InvalidArgumentError(f"{args.format} exports are *{SUFFIXES[args.format]} files: name the output "
                                   f"{args.output.rstrip('/')}{SUFFIXES[args.format]}")
    if args.format is not None and args.format != FORMATS[suffix]:
        raise InvalidArgumentError(f"--format {args.format} but {args.output} is named as {FORMATS[suffix]}: name it "
                                   f"*{SUFFIXES[args.format]}")
    return FORMATS[suffix]


def _calibration_data(data: str):
    """The datasets to calibrate on and to measure on (None: the rest of the first)."""
    from ..training.data import DIGITS, build_dataset

    if data == DIGITS:
        return build_dataset(data, "train"), build_dataset(data, "val")
    calibration = build_dataset(data, "train", require_split=False)
    held_out = build_dataset(data, "val") if path_kind(f"{data}/val").is_folder else None
    return calibration, held_out


def run(args: argparse.Namespace) -> int:
    from ..hub.sources import load_model
    from ..runtimes import get_runtime
    from ..runtimes.exported import export_for_runtime
    from ..tools.export import export_torchscript, fuse_batchnorm

    output_format = _output_format(args)
    output = path_kind(args.output)
    if output.is_folder:
        raise WrongKindError(f"output {args.output} is {output.description}: name a file inside it, e.g. "
                             f"{args.output.rstrip('/')}/model{SUFFIXES[output_format]}")
    if not output.path.parent.is_dir():
        raise PathNotFoundError(f"the directory of {args.output} does not exist: create it first")
    if args.img_size is not None:
        require_image_size(args.img_size)
    if output_format == "torchscript":
        if args.precision != "fp32" or args.calibration:
            raise InvalidArgumentError("TorchScript exports are fp32: use .xml (OpenVINO) or .onnx for "
                                       f"--precision {args.precision}")
        model = load_model(args.model, args.pretrained, args.checkpoint, num_classes=args.num_classes).eval()
        export_torchscript(model if args.no_fuse_bn else fuse_batchnorm(model), args.output)
        print(f"wrote {args.output} (TorchScript)")
        return 0
    if args.no_fuse_bn:
        raise InvalidArgumentError("--no-fuse-bn applies to TorchScript: OpenVINO and ONNX exports are the inference "
                                   "form (BatchNorms folded)")
    runtime = get_runtime(RUNTIME_OF_FORMAT[output_format])
    runtime.require_support(args.precision)  # before the model loads
    if args.precision == "int8":
        if args.calibration is None:
            raise InvalidArgumentError("--precision int8 needs --calibration DATA: digits, or an image folder of the "
                                       "model's classes")
        if args.calibration_images < 1:
            raise InvalidArgumentError(f"--calibration-images must be at least 1, got {args.calibration_images}")
        calibration, held_out = _calibration_data(args.calibration)
    elif args.calibration:
        raise InvalidArgumentError(f"--calibration is for --precision int8, not {args.precision}")
    else:
        calibration = held_out = None
    model = load_model(args.model, args.pretrained, args.checkpoint, num_classes=args.num_classes).eval()
    report = export_for_runtime(
        model, args.output, runtime.NAME, args.precision, img_size=args.img_size, plans=args.plans,
        calibration=calibration, held_out=held_out, calibration_images=args.calibration_images,
        max_accuracy_drop=args.max_accuracy_drop, log=lambda message: print(message, file=sys.stderr, flush=True))
    print(report.summary())
    return 0
