"""Fine-tune a detector on a zoo backbone with COCO-format data: ``epsanet detect train``.

    python train/train_detection.py --train-images DIR --train-ann FILE --val-images DIR --val-ann FILE
    torchrun --nproc_per_node=8 train/train_detection.py ... --amp
    python train/train_detection.py ... --output-dir runs/detection --resume    # continue the run there

Run with ``--help`` for every option.
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["detect", "train", *sys.argv[1:]]))
