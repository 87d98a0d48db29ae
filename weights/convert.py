"""Convert a checkpoint of another code base into a hub folder: the same options as
``epsanet convert`` (see ``--help``).

    python weights/convert.py eca_resnet50_k3557.pth.tar --model eca_resnet50 --tag k3557_in1k --out eca50
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
