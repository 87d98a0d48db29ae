"""Train a model: the same options as ``epsanet train`` (see ``--help``).

    python train/train.py                                    # EPSANet-50 on the built-in digits
    torchrun --nproc_per_node 8 train/train.py --data /data/imagenet --recipe paper --amp
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
