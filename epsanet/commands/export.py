"""``epsanet export``: a zoo model as ONNX (checked with onnxruntime) or TorchScript, for inference."""
import argparse

import torch

from .._optional import require
from ..checkpoint import load_checkpoint
from ..export import check_onnx, export_onnx, export_torchscript, fuse_batchnorm
from ..models import create_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo model name, e.g. epsanet50_small")
    parser.add_argument("output", help="destination: .onnx for ONNX, .pt for TorchScript")
    parser.add_argument("--checkpoint", help="weights to load first (official .pth.tar, state dict or safetensors)")
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier width (default: 1000)")
    parser.add_argument("--img-size", type=int, default=224, help="input size of the ONNX graph (default: 224)")
    parser.add_argument("--no-fuse-bn", action="store_true",
                        help="keep BatchNorms instead of folding them into convolutions")


def run(args: argparse.Namespace) -> int:
    if not args.output.endswith((".onnx", ".pt")):
        raise ValueError(f"cannot tell the format of {args.output}: name it *.onnx (ONNX) or *.pt (TorchScript)")
    if args.output.endswith(".onnx"):
        require("onnxruntime", "export", "checking an ONNX export")
    model = create_model(args.model, num_classes=args.num_classes).eval()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    if not args.no_fuse_bn:
        model = fuse_batchnorm(model)
    if args.output.endswith(".pt"):
        export_torchscript(model, args.output)
        print(f"wrote {args.output} (TorchScript)")
        return 0
    export_onnx(model, args.output, img_size=args.img_size)
    error = check_onnx(model, args.output, torch.randn(2, 3, args.img_size, args.img_size))
    print(f"wrote {args.output} (ONNX; onnxruntime matches the model to {error:.1e} relative error)")
    return 0
