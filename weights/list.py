"""List the catalogue of pretrained weights: the same options as ``epsanet weights`` (see ``--help``).

    python weights/list.py                     # every entry, as a Markdown table
    python weights/list.py 'se_resnet50.*' --json
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["weights", *sys.argv[1:]]))
