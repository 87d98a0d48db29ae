"""``epsanet bench``: zoo models against the torchvision ResNet they replace and the official PSA
formulation, measured interleaved in one run (see :mod:`epsanet.tools.benchmark`)."""
import argparse
import os
import sys

import torch

from .._utils.errors import InvalidArgumentError, PathNotFoundError
from .._utils.files import write_json
from .._utils.optional import require
from .._utils.sizes import require_image_size
from ..runtimes import get_runtime
from ..tools.benchmark import (
    as_json,
    candidates,
    default_settings,
    describe_machine,
    format_table,
    machine_info,
    run_benchmark,
    save_chart,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", default=["epsanet50_small"], help="zoo models (default: epsanet50_small)")
    parser.add_argument("--baseline", default="auto",
                        help="torchvision model of the ratios; 'auto' for the ResNet of each model's depth "
                             "(resnet50, resnet101); 'none' for none (default: auto)")
    parser.add_argument("--no-reference", action="store_true", help="leave out the official PSA formulation")
    parser.add_argument("--untuned", action="store_true",
                        help="also run the fast PSA with the rule's plans instead of measured ones (before/after)")
    parser.add_argument("--deploy", action="store_true",
                        help="also run epsanet.deploy's inference form (BatchNorms folded; inference only)")
    parser.add_argument("--compile", action="store_true", help="also run every model under torch.compile")
    parser.add_argument("--openvino", action="store_true",
                        help="also run every model exported to OpenVINO as epsanet export does (fp32 and bf16 "
                             "inference; needs the openvino extra)")
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also run every model exported to ONNX Runtime as epsanet export does (fp32 inference; "
                             "needs the export extra)")
    parser.add_argument("--int8", action="store_true",
                        help="also run the runtimes' int8 graphs (calibrated on random inputs: speed only)")
    parser.add_argument("--img-size", type=int, default=224, help="input size (default: 224)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16],
                        help="inference batch sizes (default: 1 16)")
    parser.add_argument("--train-batch-size", type=int, default=8,
                        help="training batch size; 0 skips training (default: 8)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per setting (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per model and setting (default: 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--json", metavar="PATH", help="also write the results, with the machine, as JSON")
    parser.add_argument("--chart", metavar="PATH", help="also write a PNG bar chart of the ratios")


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1 or args.warmup < 0:
        raise InvalidArgumentError(f"--repeats must be at least 1 and --warmup at least 0, got {args.repeats} and "
                                   f"{args.warmup}")
    require_image_size(args.img_size)
    if args.threads is not None:
        if args.threads < 1:
            raise InvalidArgumentError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    for path in (args.json, args.chart):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise PathNotFoundError(f"the directory of {path} does not exist: create it first")
    if args.chart:
        require("matplotlib", "bench", "the benchmark chart")
    runtimes = ["eager"] + (["compile"] if args.compile else [])
    for runtime in ("openvino", "onnxruntime"):
        if getattr(args, runtime):
            get_runtime(runtime).require_support()
            if args.device != "cpu":
                raise InvalidArgumentError(f"--{runtime} runs on the CPU: use it with --device cpu")
            runtimes.append(runtime)
    if args.int8 and not (args.openvino or args.onnxruntime):
        raise InvalidArgumentError("--int8 times the runtimes' int8 graphs: add --openvino or --onnxruntime")
    baseline = None if args.baseline.lower() == "none" else args.baseline
    cands = candidates(args.models, baseline, reference=not args.no_reference, untuned=args.untuned,
                       deploy=args.deploy, runtimes=runtimes)
    settings = default_settings(args.batch_sizes, args.train_batch_size, int8=args.int8)
    info = machine_info(args.device)
    print(f"# {describe_machine(info)}", file=sys.stderr)
    results = run_benchmark(cands, settings, args.img_size, args.repeats, args.warmup, args.device,
                            log=lambda message: print(message, file=sys.stderr, flush=True))
    info = machine_info(args.device)  # the load average over the run
    print(format_table(cands, settings, results, info))
    if args.json:
        write_json(args.json, as_json(cands, settings, results, args.img_size, args.device))
    if args.chart:
        save_chart(cands, settings, results, args.chart)
    return 0
