"""COCO metrics of a fine-tuned detector: ``epsanet detect eval``.

    python eval/eval_detection.py runs/detection/last.pth --images DIR --ann FILE --output metrics.json

Run with ``--help`` for every option.
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["detect", "eval", *sys.argv[1:]]))
