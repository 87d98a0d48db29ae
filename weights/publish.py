"""Upload a hub folder to the Hugging Face Hub: the same options as ``epsanet publish`` (see ``--help``).

    python weights/publish.py eca50 --repo-id ORG/eca_resnet50.k3557_in1k --tag v1.0
"""
import sys

from epsanet.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish", *sys.argv[1:]]))
