"""``epsanet explain``: Grad-CAM overlays of images for one or more models side by side, and the
kernel sizes EPSANet's PSA modules choose (``--psa-scales``)."""
import argparse

from .._utils.errors import InvalidArgumentError
from ..tools.explain import DISPLAY_SIZE, METHODS


class _ModelAction(argparse.Action):
    """``--model`` starts a model; ``--weights`` and ``--pretrained`` apply to the last one."""

    def __call__(self, parser, namespace, value, option_string=None):
        from ..tools.explain import ModelSpec

        models = getattr(namespace, "models", None) or []
        if option_string == "--model":
            models.append(ModelSpec(value))
        elif not models:
            parser.error(f"{option_string} applies to the --model before it: give --model first")
        else:
            spec = models[-1]
            field = option_string.lstrip("-")
            if getattr(spec, field) is not None:
                parser.error(f"--model {spec.source} has {option_string} twice")
            setattr(spec, field, value)
        namespace.models = models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                        help="image files (any size; RGB, grayscale or with alpha) or folders of images")
    parser.add_argument("--model", action=_ModelAction, required=True,
                        help="a zoo model name, a hub folder, an hf-hub:org/name id or an `epsanet train` checkpoint; "
                             "repeat to compare models side by side")
    parser.add_argument("--weights", action=_ModelAction, metavar="W",
                        help="weights of the --model before it: a hub folder, an hf-hub: id or a checkpoint file")
    parser.add_argument("--pretrained", action=_ModelAction, metavar="TAG",
                        help="catalogue weights of the --model before it (see `epsanet weights`)")
    parser.add_argument("--method", default="gradcam", choices=list(METHODS),
                        help="CAM method of the grad-cam package (default: gradcam)")
    parser.add_argument("--layer", metavar="L",
                        help="module whose activations the CAM uses, e.g. layer3 or layer4.2.conv2 "
                             "(default: each model's last stage)")
    parser.add_argument("--target", metavar="CLASS",
                        help="class index or name to explain (default: each image's top-1 prediction)")
    parser.add_argument("--psa-scales", action="store_true",
                        help="also write the mean PSA branch weight per kernel size, per stage and block "
                             "(psa_scales.json, psa_scales.png); EPSANets only")
    parser.add_argument("--size", type=int, default=DISPLAY_SIZE,
                        help=f"overlay size in pixels (short side; default: {DISPLAY_SIZE})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def run(args: argparse.Namespace) -> int:
    from .._utils.device import resolve_device
    from ..tools.explain import explain_files

    if args.size < 16:
        raise InvalidArgumentError(f"--size must be at least 16 pixels, got {args.size}")
    summary = explain_files(args.inputs, args.models, args.out, method=args.method, layer=args.layer,
                            target=args.target, psa_scales=args.psa_scales, display_size=args.size,
                            device=resolve_device(args.device))
    images = len(next(iter(summary["models"].values()))["images"])
    print(f"{images} image(s) x {len(summary['models'])} model(s): overlays in {args.out}/<model>/, "
          f"comparison in {summary['grid']}")
    for label, stages in summary.get("psa_scales", {}).items():
        print(f"PSA scale weights of {label} (kernels 3/5/7/9 per stage):")
        for entry in stages:
            print(f"  {entry['stage']:8s} " + "  ".join(f"{w:.3f}" for w in entry["weights"]))
    if "psa_scales" in summary:
        print(f"chart in {args.out}/psa_scales.png, numbers in {args.out}/psa_scales.json")
    return 0
