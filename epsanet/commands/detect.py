"""``epsanet detect``: fine-tune and evaluate detectors on COCO-format data, make the demo set.

    epsanet detect shapes data/shapes
    epsanet detect train --train-images data/shapes/train --train-ann data/shapes/annotations/instances_train.json \
        --val-images data/shapes/val --val-ann data/shapes/annotations/instances_val.json --output-dir runs/shapes
    epsanet detect eval runs/shapes/checkpoint.pth --images ... --ann ... --output metrics.json

Under torchrun (``torchrun --nproc_per_node=N -m epsanet detect train ...``) training and
evaluation run on N processes with DDP.
"""
import argparse

import torch.distributed as dist

try:
    from ..detection.engine import add_eval_arguments, add_train_arguments, evaluate_checkpoint, train
    from ..detection.shapes import make_shapes_dataset
except ImportError as e:  # pycocotools comes with the `detection` extra; the other commands work without it
    MISSING = e
else:
    MISSING = None


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
    add_train_arguments(sub.add_parser("train", help="fine-tune a detector on COCO-format data",
                                       description="Fine-tune a detector on COCO-format data (torchvision "
                                                   "references recipe); evaluates on the validation split."))
    add_eval_arguments(sub.add_parser("eval", help="COCO metrics of a fine-tuned checkpoint",
                                      description="Print the 12 COCO AP/AR metrics of a checkpoint (boxes, "
                                                  "and masks for Mask R-CNN), optionally saved as JSON."))


def run(args: argparse.Namespace) -> int:
    if MISSING is not None:
        raise RuntimeError(f"epsanet detect needs the detection extra ({MISSING}): pip install 'epsanet[detection]'")
    if args.detect_command == "shapes":
        splits = make_shapes_dataset(args.root, train_images=args.train_images, val_images=args.val_images,
                                     image_size=tuple(args.image_size), seed=args.seed, overwrite=args.overwrite)
        for split, paths in splits.items():
            print(f"{split}: {paths['images']} {paths['annotations']}")
        return 0
    try:
        (train if args.detect_command == "train" else evaluate_checkpoint)(args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0
