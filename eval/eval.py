"""Evaluate a model: the same options as ``epsanet eval`` (see ``--help``).

    python eval/eval.py --model runs/digits-epsanet50_small/best
    torchrun --nproc_per_node 8 eval/eval.py --model se_resnet50 --pretrained a1_in1k --data /data/imagenet
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
