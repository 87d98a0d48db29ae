"""The configuration of a detection fine-tune (:class:`DetectionConfig`) and the options of
``epsanet detect train`` and ``epsanet detect eval`` that build it."""
import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .._utils.errors import InvalidArgumentError
from ..training.data import default_workers
from ..training.run import RUN_OPTIONS
from .models import DETECTORS

__all__ = ["DetectionConfig", "add_train_arguments", "add_eval_arguments", "config_from_arguments"]


@dataclass
class DetectionConfig:
    """Everything a detection fine-tune depends on (torchvision's ``references/detection`` recipe
    by default: SGD with momentum, 26 epochs, learning-rate steps at 16 and 22). ``batch_size`` and
    ``workers`` are per process; ``lr`` defaults to 0.02 per 16 images of the global batch."""

    # data (COCO format: an image folder and a JSON annotation file per split)
    train_images: str
    train_ann: str
    val_images: str
    val_ann: str
    # model
    model: str = "fasterrcnn_fpn"
    backbone: str = "epsanet50_small"
    weights_backbone: Optional[str] = None
    trainable_backbone_layers: Optional[int] = None
    num_classes: Optional[int] = None
    min_size: List[int] = field(default_factory=lambda: [800])
    max_size: int = 1333
    detector_kwargs: Dict[str, Any] = field(default_factory=dict)
    # schedule
    epochs: int = 26
    batch_size: int = 2
    lr: Optional[float] = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_steps: List[int] = field(default_factory=lambda: [16, 22])
    lr_gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    hflip_prob: float = 0.5
    # run
    output_dir: str = "runs/detection"
    resume: Optional[str] = None
    overwrite: bool = False
    eval_every: int = 1
    sync_bn: bool = False
    seed: int = 0
    device: str = "auto"
    amp: Optional[str] = None
    workers: Optional[int] = None  # None: default_workers(), what the machine has
    log_interval: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        if self.model not in DETECTORS:
            raise InvalidArgumentError(f"unknown detector {self.model!r}: choose {', '.join(sorted(DETECTORS))}")
        if self.workers is None:
            self.workers = default_workers()
        for name in ("epochs", "batch_size", "max_size", "eval_every", "log_interval"):
            if getattr(self, name) <= 0:
                raise InvalidArgumentError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not self.min_size or min(self.min_size) <= 0:
            raise InvalidArgumentError(f"--min-size must be positive sizes, got {self.min_size}")
        if self.lr is not None and not self.lr > 0:
            raise InvalidArgumentError(f"--lr must be positive, got {self.lr:g}")
        if self.warmup_iters < 0 or self.workers < 0:
            raise InvalidArgumentError(f"--warmup-iters and --workers must be 0 or more, got {self.warmup_iters} and "
                                       f"{self.workers}")

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict (JSON- and ``torch.load(weights_only=True)``-safe)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def config_from_arguments(args: argparse.Namespace) -> DetectionConfig:
    """The configuration the parsed options of :func:`add_train_arguments` describe."""
    return DetectionConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DetectionConfig)})


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``epsanet detect train``, one per field of :class:`DetectionConfig`."""
    defaults = {f.name: f.default for f in dataclasses.fields(DetectionConfig)}
    data = parser.add_argument_group("data (COCO format: a JSON annotation file and an image folder per split)")
    data.add_argument("--train-images", required=True, help="training image folder")
    data.add_argument("--train-ann", required=True, help="training annotation file (COCO JSON)")
    data.add_argument("--val-images", required=True, help="validation image folder")
    data.add_argument("--val-ann", required=True, help="validation annotation file (COCO JSON)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=defaults["model"], choices=sorted(DETECTORS),
                       help="detector (default: %(default)s)")
    model.add_argument("--backbone", default=defaults["backbone"], help="zoo model name (default: %(default)s)")
    model.add_argument("--weights-backbone", help="backbone weights: a weights name (e.g. IMAGENET1K_A1), a checkpoint "
                                                  "file or a save_pretrained folder (default: none, from scratch)")
    model.add_argument("--trainable-backbone-layers", type=int,
                       help="backbone stages to train, 0-5 (default: 3 with weights, 5 without)")
    model.add_argument("--num-classes", type=int,
                       help="classes including background (default: largest category id + 1)")
    model.add_argument("--min-size", type=int, nargs="+", default=[800],
                       help="shorter image side; with several, training picks one at random per batch and evaluation "
                            "uses the last (default: 800)")
    model.add_argument("--max-size", type=int, default=defaults["max_size"],
                       help="longest image side (default: %(default)s)")
    model.add_argument("--detector-kwargs", type=_json_object, default={},
                       help='more torchvision detector arguments as JSON, e.g. \'{"box_batch_size_per_image": 128}\'')
    optim = parser.add_argument_group("schedule (torchvision references: 26 epochs, steps at 16 and 22)")
    optim.add_argument("--epochs", type=int, default=defaults["epochs"], help="default: %(default)s")
    optim.add_argument("--batch-size", type=int, default=defaults["batch_size"],
                       help="images per process (default: %(default)s)")
    optim.add_argument("--lr", type=float,
                       help="learning rate (default: 0.02 x total batch / 16, the references' 0.02 for 16 images)")
    optim.add_argument("--momentum", type=float, default=defaults["momentum"], help="default: %(default)s")
    optim.add_argument("--weight-decay", type=float, default=defaults["weight_decay"], help="default: %(default)s")
    optim.add_argument("--lr-steps", type=int, nargs="*", default=[16, 22],
                       help="epochs at which the learning rate drops (default: 16 22)")
    optim.add_argument("--lr-gamma", type=float, default=defaults["lr_gamma"],
                       help="drop factor (default: %(default)s)")
    optim.add_argument("--warmup-iters", type=int, default=defaults["warmup_iters"],
                       help="linear warmup iterations (default: %(default)s)")
    optim.add_argument("--warmup-factor", type=float, default=defaults["warmup_factor"],
                       help="warmup start factor (default: %(default)s)")
    optim.add_argument("--hflip-prob", type=float, default=defaults["hflip_prob"],
                       help="horizontal flip probability (default: %(default)s)")
    run = parser.add_argument_group("run")
    run.add_argument("--output-dir", default=defaults["output_dir"],
                     help="run folder: checkpoint (last.pth), log and metrics (default: %(default)s)")
    for flag in ("--resume", "--overwrite"):
        run.add_argument(flag, **RUN_OPTIONS[flag])
    run.add_argument("--eval-every", type=int, default=defaults["eval_every"],
                     help="evaluate every N epochs, and always after the last (default: %(default)s)")
    run.add_argument("--sync-bn", action="store_true", help="synchronise BatchNorm statistics across processes")
    run.add_argument("--seed", type=int, default=defaults["seed"],
                     help="random seed: the data order and augmentation depend only on it and the epoch "
                          "(default: %(default)s)")
    run.add_argument("--log-interval", type=int, default=defaults["log_interval"],
                     help="steps between progress updates and loss checks (default: %(default)s)")
    _add_runtime_arguments(run)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``epsanet detect eval``."""
    parser.add_argument("checkpoint", help="a checkpoint written by `epsanet detect train` (RUN/last.pth)")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument("--ann", required=True, help="annotation file (COCO JSON)")
    parser.add_argument("--output", help="also write the metrics to this JSON file")
    parser.add_argument("--batch-size", type=int, default=2, help="images per process (default: %(default)s)")
    _add_runtime_arguments(parser)


def _add_runtime_arguments(parser: Any) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: auto = cuda when "
                                                         "available; torchrun: one GPU per process)")
    parser.add_argument("--amp", **RUN_OPTIONS["--amp"])
    parser.add_argument("--workers", type=int,
                        help="data loading processes per process (default: the CPUs this process may use, shared "
                             "by the processes on the machine, at most 8)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of keyword arguments, got {text!r}")
    return value
