"""Check a weights file against the sha256 its catalogue entry records: ``epsanet weights NAME --verify FILE``.

    python weights/verify.py se_resnet50.a1_in1k model.safetensors

Exit status 0 when the file is the entry's; one line and exit status 2 when it is not, or when the
entry records no sha256 yet (the line gives the file's, to add).
"""
import argparse
import sys

from epsanet.cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="weights/verify.py", description=__doc__.splitlines()[0].replace("``", "`"))
    parser.add_argument("name", help="catalogue entry, model.tag (see weights/list.py)")
    parser.add_argument("file", help="the weights file: a hub folder's model.safetensors, or the file fetched by hand")
    args = parser.parse_args()
    sys.exit(main(["weights", args.name, "--verify", args.file]))
