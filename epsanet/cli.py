"""The ``epsanet`` command: ``epsanet <command> --help`` describes each command.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``.
Errors a user can fix (an :class:`~epsanet._utils.errors.EpsanetError`) are printed as one line
(``epsanet CMD: error: ...``, exit status 2), never a traceback; any other exception is a bug in
epsanet and shows its traceback, then how to report it (exit status 1).
"""
import argparse
import importlib
import platform
import sys
import traceback
from typing import List, NoReturn, Optional

import huggingface_hub.utils
import timm
import torch
import torchvision

from . import __version__
from ._utils.errors import EpsanetError

# command name -> (module, one-line help)
COMMANDS = {
    "models": ("epsanet.commands.models", "list the zoo's models with parameters and GMACs"),
    "weights": ("epsanet.commands.weights", "list the catalogue of pretrained weights"),
    "convert": ("epsanet.commands.convert", "convert a checkpoint (official, timm, torchvision) into a hub folder"),
    "publish": ("epsanet.commands.publish", "upload a hub folder to the Hugging Face Hub"),
    "bench": ("epsanet.commands.bench", "time models side by side against torchvision's resnet50"),
    "export": ("epsanet.commands.export", "export a model as ONNX (checked with onnxruntime) or TorchScript"),
    "detect": ("epsanet.commands.detect", "detection: fine-tune and evaluate on COCO-format data, demo set"),
    "yolo": ("epsanet.commands.yolo", "the zoo's attention modules in Ultralytics YOLO: train offline, demo"),
    "train": ("epsanet.commands.train", "train a model (no arguments: EPSANet-50 on the built-in digits)"),
    "eval": ("epsanet.commands.eval", "evaluate a model: top-1/top-5, per class, confusion matrix, images/s"),
    "predict": ("epsanet.commands.predict", "classify images: top-k classes with the weights' preprocessing and names"),
    "explain": ("epsanet.commands.explain", "Grad-CAM overlays of images for zoo models, and PSA scale weights"),
    "demo": ("epsanet.commands.demo", "the main job: train on the built-in digits, export, reload, check"),
}

ISSUES = "https://github.com/epsanet/epsanet/issues"


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the fix (``--help``), without the usage
    text, which for ``epsanet train`` runs to dozens of lines; the exit status stays 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def versions() -> str:
    """The line ``epsanet --version`` prints: epsanet's version and those of what it runs on."""
    return (f"epsanet {__version__} (torch {torch.__version__}, torchvision {torchvision.__version__}, "
            f"timm {timm.__version__}, Python {platform.python_version()})")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="epsanet", description=__doc__.splitlines()[0].replace("``", "`"),
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # --version on one line
    parser.add_argument("--version", action="version", version=versions())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module)
        importlib.import_module(module).add_arguments(command)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # huggingface_hub logs each retry of an unreachable Hub; the command reports the outcome in one line.
    huggingface_hub.utils.logging.set_verbosity_error()
    try:
        return importlib.import_module(args.module).run(args) or 0
    except EpsanetError as e:
        print(f"epsanet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"epsanet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"epsanet {args.command}: this is a bug in epsanet, not a problem with your input: please report it "
              f"at {ISSUES} with the command, the traceback above and this line: {versions()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
