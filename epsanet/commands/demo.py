"""``epsanet demo``: the main job: train EPSANet-50 on the built-in digits to >= 95% top-1, export
it and check it through ``epsanet eval``, ``torch.hub.load`` and ``timm.create_model``."""
import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="runs/demo",
                        help="run folder; an existing finished run is evaluated again, not retrained "
                             "(default: runs/demo)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")


def run(args: argparse.Namespace) -> int:
    from ..training.demo import run_demo

    run_demo(args.output_dir, device=args.device)
    return 0
