"""``epsanet export``: a model as ONNX (checked with onnxruntime) or TorchScript, for inference:
a zoo model (with catalogue weights or a checkpoint), a hub folder, a training run or an hf-hub id."""
import argparse

import torch

from .._utils.errors import InvalidArgumentError, PathNotFoundError
from .._utils.optional import require
from .._utils.paths import WrongKindError, path_kind
from .._utils.sizes import require_image_size
from ..tools.export import check_onnx, export_onnx, export_torchscript, fuse_batchnorm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo model name (e.g. epsanet50_small), hub folder, training run folder "
                                      "(its best model), hf-hub:ORG/NAME id or `epsanet train` checkpoint")
    parser.add_argument("output", help="destination: .onnx for ONNX, .pt for TorchScript")
    parser.add_argument("--pretrained", metavar="TAG", help="catalogue weights of the zoo model, e.g. a1_in1k")
    parser.add_argument("--checkpoint", help="weights for the zoo model (official .pth.tar, state dict or safetensors)")
    parser.add_argument("--num-classes", type=int,
                        help="classifier width of a zoo model without weights (default: 1000, or the weights' own)")
    parser.add_argument("--img-size", type=int,
                        help="input size of the ONNX graph (default: the model's own, e.g. the size a run trained at)")
    parser.add_argument("--no-fuse-bn", action="store_true",
                        help="keep BatchNorms instead of folding them into convolutions")


def run(args: argparse.Namespace) -> int:
    from ..hub.sources import load_model, source_info

    if not args.output.endswith((".onnx", ".pt")):
        raise InvalidArgumentError(f"cannot tell the format of {args.output}: name it *.onnx (ONNX) or *.pt "
                                   "(TorchScript)")
    output = path_kind(args.output)
    if output.is_folder:
        raise WrongKindError(f"output {args.output} is {output.description}: name a file inside it, e.g. "
                             f"{args.output.rstrip('/')}/model{'.onnx' if args.output.endswith('.onnx') else '.pt'}")
    if not output.path.parent.is_dir():
        raise PathNotFoundError(f"the directory of {args.output} does not exist: create it first")
    if args.output.endswith(".onnx"):
        require("onnxruntime", "export", "checking an ONNX export")
    if args.img_size is not None:
        require_image_size(args.img_size)
    model = load_model(args.model, args.pretrained, args.checkpoint, num_classes=args.num_classes).eval()
    _, height, width = source_info(model).input_size
    if args.img_size is not None:
        height = width = args.img_size
    if not args.no_fuse_bn:
        model = fuse_batchnorm(model)
    if args.output.endswith(".pt"):
        export_torchscript(model, args.output)
        print(f"wrote {args.output} (TorchScript)")
        return 0
    export_onnx(model, args.output, img_size=(height, width))
    error = check_onnx(model, args.output, torch.randn(2, 3, height, width))
    print(f"wrote {args.output} (ONNX, input N x 3 x {height} x {width}; onnxruntime matches the model to "
          f"{error:.1e} relative error)")
    return 0
