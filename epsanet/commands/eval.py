"""``epsanet eval``: top-1/top-5, per-class accuracy, confusion matrix and images/s of a model,
with the preprocessing of its pretrained configuration."""
import argparse
import json

from ..training.run import RUN_OPTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="a zoo model name, a hub folder (e.g. runs/<run>/best), an hf-hub:org/name id, "
                             "or a checkpoint written by `epsanet train` (runs/<run>/last.pth)")
    parser.add_argument("--pretrained", metavar="TAG", help="catalogue weights of the zoo model, e.g. a1_in1k")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="weights for the zoo model: official .pth.tar, state dict or .safetensors")
    parser.add_argument("--data", default="digits",
                        help="'digits' or an image folder: ROOT/<split>/<class>/* or ROOT/<class>/* (default: digits)")
    parser.add_argument("--split", default="val", help="subfolder of --data to evaluate (default: val)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per process per step (default: 64)")
    parser.add_argument("--workers", type=int,
                        help="data loading processes (default: the CPUs this process may use, at most 8)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    parser.add_argument("--amp", **RUN_OPTIONS["--amp"])
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--skip-corrupt", action="store_true",
                        help="skip unreadable images and count them instead of stopping with an error")
    parser.add_argument("--output-dir", default="runs/eval",
                        help="where results.json and confusion_matrix.png go (default: runs/eval)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    from ..training import evaluate_model

    report = evaluate_model(
        args.model, args.data, pretrained=args.pretrained, checkpoint=args.checkpoint, split=args.split,
        batch_size=args.batch_size, workers=args.workers, device=args.device, amp=args.amp,
        channels_last=args.channels_last, skip_corrupt=args.skip_corrupt, output_dir=args.output_dir,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        skipped = f", {report['skipped_images']} unreadable skipped" if report["skipped_images"] else ""
        print(f"{args.model} on {args.data} ({args.split}): top-1 {report['top1']:.2f}%  top-5 {report['top5']:.2f}%  "
              f"loss {report['loss']:.4f}  {report['images']} images{skipped}  "
              f"{report['images_per_second']:.1f} img/s; results in {args.output_dir}/results.json")
    return 0
