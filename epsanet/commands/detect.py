"""``epsanet detect``: fine-tune and evaluate detectors on COCO-format data, make the demo set.

    epsanet detect demo runs/detection-demo      # the demo set, then the demo fine-tune on it
    epsanet detect shapes data/shapes
    epsanet detect shapes data/shapes-yolo --format yolo   # Ultralytics' layout: images/, labels/, data.yaml
    epsanet detect train --train-images data/shapes/train --train-ann data/shapes/annotations/instances_train.json \
        --val-images data/shapes/val --val-ann data/shapes/annotations/instances_val.json --output-dir runs/shapes
    epsanet detect train ... --output-dir runs/shapes --resume               # continue the run in runs/shapes
    epsanet detect eval runs/shapes/last.pth --images ... --ann ... --output metrics.json

Under torchrun (``torchrun --nproc_per_node=N -m epsanet detect train ...``) training and
evaluation run on N processes with DDP.
"""
import argparse
from pathlib import Path

from .._utils.optional import MissingDependencyError
from .._utils.paths import require_output_folder

try:
    from ..detection.config import DetectionConfig, add_eval_arguments, add_train_arguments, config_from_arguments
    from ..detection.engine import evaluate_checkpoint, train
    from ..detection.shapes import LAYOUTS, make_shapes_dataset, shapes_splits
except MissingDependencyError as e:  # pycocotools comes with the `detection` extra; other commands work without it
    MISSING = e
else:
    MISSING = None

# The demo: Faster R-CNN on epsanet50_small from scratch, small images and 128 RoIs per image
# (a few shapes per image need no more), so that it learns in minutes on a CPU. The demo continues the
# run already in OUTPUT_DIR/run (a finished one is not trained again), unless --overwrite is given.
DEMO_RECIPE = (
    "--model", "fasterrcnn_fpn", "--backbone", "epsanet50_small", "--min-size", "128", "--max-size", "192",
    "--batch-size", "4", "--lr", "0.02", "--warmup-iters", "50", "--epochs", "4", "--lr-steps", "3",
    "--eval-every", "2", "--amp", "auto", "--detector-kwargs", '{"box_batch_size_per_image": 128}',
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    if MISSING is not None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    sub = parser.add_subparsers(dest="detect_command", metavar="SUBCOMMAND", required=True)
    shapes = sub.add_parser("shapes", help="write the generated COCO-format demo set (coloured shapes)",
                            description="Write the generated COCO-format demo set: coloured shapes on textured "
                                        "backgrounds, with boxes and masks, the same for a given seed.")
    shapes.add_argument("root", help="folder to create")
    shapes.add_argument("--train-images", type=int, default=300, help="default: %(default)s")
    shapes.add_argument("--val-images", type=int, default=100, help="default: %(default)s")
    shapes.add_argument("--image-size", type=int, nargs=2, default=(160, 224), metavar=("MIN", "MAX"),
                        help="range of image sides (default: 160 224)")
    shapes.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    shapes.add_argument("--overwrite", action="store_true", help="replace ROOT if it exists")
    shapes.add_argument("--format", choices=LAYOUTS, default="coco",
                        help="coco (default: annotations/*.json) or yolo (Ultralytics: images/, labels/, data.yaml)")
    demo = sub.add_parser("demo", help="write the shapes set and fine-tune Faster R-CNN on epsanet50_small on it",
                          description="The detection demo: writes the shapes set to OUTPUT_DIR/shapes (unless it is "
                                      "there) and fine-tunes Faster R-CNN on epsanet50_small from scratch into "
                                      f"OUTPUT_DIR/run with `detect train {' '.join(DEMO_RECIPE)}`, continuing the "
                                      "run already there unless --overwrite is given.")
    demo.add_argument("output_dir", nargs="?", default="runs/detection-demo", help="default: %(default)s")
    demo.add_argument("train_options", nargs=argparse.REMAINDER,
                      help="after OUTPUT_DIR, `detect train` options that replace the demo's (e.g. --epochs 2)")
    add_train_arguments(sub.add_parser("train", help="fine-tune a detector on COCO-format data",
                                       description="Fine-tune a detector on COCO-format data (torchvision "
                                                   "references recipe); evaluates on the validation split."))
    add_eval_arguments(sub.add_parser("eval", help="COCO metrics of a fine-tuned checkpoint",
                                      description="Print the 12 COCO AP/AR metrics of a checkpoint (boxes, "
                                                  "and masks for Mask R-CNN), optionally saved as JSON."))


def run(args: argparse.Namespace) -> int:
    if MISSING is not None:
        raise MISSING
    if args.detect_command == "shapes":
        splits = make_shapes_dataset(args.root, train_images=args.train_images, val_images=args.val_images,
                                     image_size=tuple(args.image_size), seed=args.seed, overwrite=args.overwrite,
                                     layout=args.format)
        for split, paths in splits.items():
            print(f"{split}: {paths['images']} {paths.get('labels', paths['annotations'])}")
        if args.format == "yolo":
            print(f"data: {splits['train']['data_yaml']}")
        return 0
    if args.detect_command == "eval":
        evaluate_checkpoint(args.checkpoint, args.images, args.ann, batch_size=args.batch_size, workers=args.workers,
                            device=args.device, amp=args.amp, progress=args.progress, output=args.output)
    elif args.detect_command == "demo":
        require_output_folder(args.output_dir, "output folder")
        train(demo_config(args))
    else:
        train(config_from_arguments(args))
    return 0


def demo_config(args: argparse.Namespace) -> "DetectionConfig":
    """The `detect train` configuration of the demo, on the shapes set (written first if missing)."""
    root = Path(args.output_dir)
    splits = shapes_splits(root / "shapes") if (root / "shapes").exists() else make_shapes_dataset(root / "shapes")
    parser = argparse.ArgumentParser(prog="epsanet detect demo")
    add_train_arguments(parser)
    options = parser.parse_args([
        "--train-images", str(splits["train"]["images"]), "--train-ann", str(splits["train"]["annotations"]),
        "--val-images", str(splits["val"]["images"]), "--val-ann", str(splits["val"]["annotations"]),
        *DEMO_RECIPE, "--output-dir", str(root / "run"), *args.train_options,
    ])
    if options.resume is None and not options.overwrite:
        options.resume = "auto"
    return config_from_arguments(options)
