"""``epsanet convert``: a checkpoint of another code base into a hub folder."""
import argparse

from ..hub.convert import convert_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source",
                        help="checkpoint file (official .pth.tar, state_dict, safetensors) or hf-hub:ORG/NAME[@REV]")
    parser.add_argument("--model", required=True, help="zoo model the weights are for, e.g. eca_resnet50")
    parser.add_argument("--out", required=True, help="hub folder to write (config.json, model.safetensors, README.md)")
    parser.add_argument("--tag", help="catalogue entry the file is, e.g. k3557_in1k (see `epsanet weights`)")
    parser.add_argument("--warm-start", action="store_true",
                        help="initialise the model from a plain ResNet (epsanet.transplant) instead of an exact fit")
    parser.add_argument("--force", action="store_true", help="replace the output folder if it exists")


def run(args: argparse.Namespace) -> int:
    conversion = convert_checkpoint(args.source, args.model, args.out, tag=args.tag, warm_start=args.warm_start,
                                    overwrite=args.force)
    print(conversion)
    return 0
