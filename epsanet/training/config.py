"""Training configuration: the recipes and the one argument parser of ``epsanet train`` and
``torchrun train/train.py``.

A run's configuration is resolved in three layers: :class:`TrainConfig`'s defaults, the recipe's
values (:data:`RECIPES`), then every option given on the command line. The resolved
configuration is saved with the run (``run_config.json``) and in every checkpoint.
"""
import argparse
import ast
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from .._utils.errors import InvalidArgumentError
from .data import DIGITS, default_workers
from .run import RUN_OPTIONS

__all__ = ["TrainConfig", "RECIPES", "add_train_arguments", "resolve_config", "scaled_lr", "lr_for"]


@dataclass
class TrainConfig:
    """Everything a training run depends on. Per-process values (``batch_size``, ``workers``)
    are per process; ``lr`` is the peak learning rate for the whole (global) batch."""

    # data and model
    data: str = DIGITS
    model: str = "epsanet50_small"
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    pretrained: Optional[str] = None
    recipe: str = "digits"
    # preprocessing and augmentation
    img_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    scale: Tuple[float, float] = (0.08, 1.0)
    hflip: float = 0.5
    color_jitter: Optional[float] = None
    auto_augment: Optional[str] = None
    reprob: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    smoothing: float = 0.1
    drop_path: float = 0.0
    # optimisation
    epochs: int = 120
    batch_size: int = 32
    grad_accum_steps: int = 1
    opt: str = "momentum"
    lr: Optional[float] = None
    lr_base: float = 0.1
    lr_base_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = True
    clip_grad: Optional[float] = None
    sched: str = "step"
    sched_on_updates: bool = False
    decay_epochs: float = 30
    decay_rate: float = 0.1
    warmup_epochs: int = 0
    warmup_lr: float = 1e-5
    min_lr: float = 0.0
    model_ema: bool = False
    model_ema_decay: float = 0.9998
    # runtime
    device: str = "auto"
    amp: Optional[str] = None
    channels_last: bool = False
    compile: bool = False
    grad_checkpointing: bool = False
    sync_bn: bool = False
    workers: Optional[int] = None  # None: default_workers(), what the machine has
    seed: int = 0
    skip_corrupt: bool = False
    output_dir: Optional[str] = None
    resume: Optional[str] = None
    overwrite: bool = False
    log_interval: int = 10
    explain_every: int = 0
    # filled in by resolve_config
    world_size: int = 1
    global_batch_size: int = 32

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict (JSON- and ``torch.load(weights_only=True)``-safe)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


# The official EPSANet recipe (murufeng/EPSANet main.py): SGD with classical momentum 0.9, lr 0.1
# for a batch of 256, weight decay 1e-4 on every parameter, 120 epochs with lr x0.1 every 30,
# label smoothing 0.1, RandomResizedCrop 224 + horizontal flip; evaluation resize 256 / crop 224.
# 32 images per process gives the paper's batch of 256 on 8 GPUs.
PAPER = dict(
    epochs=120, batch_size=32, opt="momentum", lr_base=0.1, lr_base_size=256, momentum=0.9, weight_decay=1e-4,
    decay_norm_and_bias=True, sched="step", sched_on_updates=False, decay_epochs=30, decay_rate=0.1,
    warmup_epochs=0, smoothing=0.1, img_size=224, crop_pct=0.875, interpolation="bilinear", scale=(0.08, 1.0),
    hflip=0.5, color_jitter=None, auto_augment=None, reprob=0.0, mixup=0.0, cutmix=0.0, drop_path=0.0,
    model_ema=False,
)

# Today's ingredients (torchvision's ResNet "new recipe" and timm's): per-step cosine schedule with
# 5 warmup epochs, Mixup 0.2 / CutMix 1.0, RandAugment, random erasing, EMA of the weights,
# stochastic depth, no weight decay on norm and bias; same evaluation as the paper (256 / 224).
MODERN = dict(
    PAPER, epochs=300, batch_size=128, lr_base=0.5, lr_base_size=1024, weight_decay=2e-5, decay_norm_and_bias=False,
    sched="cosine", sched_on_updates=True, warmup_epochs=5, warmup_lr=1e-5, min_lr=0.0, mixup=0.2, cutmix=1.0,
    auto_augment="rand-m9-mstd0.5-inc1", reprob=0.1, drop_path=0.05, model_ema=True, model_ema_decay=0.9998,
)

# The embedded default: EPSANet-50 from scratch on scikit-learn's digits at 32 px on a CPU.
# AdamW with a one-cycle-like schedule (1 warmup epoch, then per-step cosine); no flips (digits
# are not mirror-symmetric), mild crops; evaluated on the whole 32 px image.
DIGITS_RECIPE = dict(
    epochs=8, batch_size=64, opt="adamw", lr_base=2e-3, lr_base_size=64, weight_decay=0.05,
    decay_norm_and_bias=False, sched="cosine", sched_on_updates=True, warmup_epochs=1, warmup_lr=1e-4,
    min_lr=1e-5, smoothing=0.1, img_size=32, crop_pct=1.0, interpolation="bilinear", scale=(0.6, 1.0), hflip=0.0,
    color_jitter=None, auto_augment=None, reprob=0.0, mixup=0.0, cutmix=0.0, drop_path=0.0, model_ema=False,
    workers=0,
)

RECIPES: Dict[str, Dict[str, Any]] = {"paper": PAPER, "modern": MODERN, "digits": DIGITS_RECIPE}
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


class ParseModelKwargs(argparse.Action):
    """``KEY=VALUE`` pairs into a dict, values read as Python literals, as timm's ``ParseKwargs``;
    a value that is no literal stays a string (``act_layer=silu``), unless it starts like one
    (a bracket or a quote), and a pair without ``=`` is an argparse error, never a traceback."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        kwargs = {}
        for item in values:
            key, sep, text = item.partition("=")
            if not sep or not key.isidentifier():
                parser.error(f"argument {option_string}: {item!r} is not KEY=VALUE with a Python name as KEY "
                             "(e.g. drop_rate=0.2)")
            try:
                kwargs[key] = ast.literal_eval(text)
            except (ValueError, SyntaxError) as e:
                if text.lstrip()[:1] in ("(", "[", "{", "'", '"'):
                    reason = e.msg if isinstance(e, SyntaxError) else str(e)
                    parser.error(f"argument {option_string}: {key}={text} is not a valid Python literal ({reason}): "
                                 "quote the whole pair for the shell, e.g. 'layers=(2,2,2,2)'")
                kwargs[key] = text
        setattr(namespace, self.dest, kwargs)


def _recipe_note(name: str) -> str:
    values = [f"{recipe}: {_show(RECIPES[recipe][name])}" for recipe in RECIPES if name in RECIPES[recipe]]
    return f" (recipe defaults: {', '.join(values)})" if values else ""


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options, shared by ``epsanet train`` and ``train/train.py``.

    Options left out keep the recipe's value: they are absent from the parsed namespace.
    """
    def add(group: argparse._ArgumentGroup, flag: str, help: str, **kwargs: Any) -> None:
        dest = flag.lstrip("-").replace("-", "_")
        group.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=help + _recipe_note(dest), **kwargs)

    g = parser.add_argument_group("data and model")
    add(g, "--data", "'digits' (scikit-learn's handwritten digits, built in) or an ImageNet-layout folder "
        "ROOT/train/<class>/*, ROOT/val/<class>/* (default: digits)", metavar="DIGITS|ROOT")
    add(g, "--model", "zoo model name, see `epsanet models` (default: epsanet50_small)")
    add(g, "--model-kwargs", "extra builder arguments, e.g. drop_rate=0.2 layers=(2,2,2,2); a value that is no "
        "Python literal is a string (act_layer=silu)", nargs="*", action=ParseModelKwargs, metavar="KEY=VALUE")
    add(g, "--pretrained", "start from weights: a catalogue tag of --model (`epsanet.list_pretrained()`), "
        "a hub folder or an hf-hub: id; a different number of classes gets a new classifier")
    add(g, "--recipe", "recipe whose values the other options override: paper (official EPSANet), modern "
        "(cosine, Mixup/CutMix, RandAugment, EMA) or digits (default: digits for --data digits, else paper)",
        choices=sorted(RECIPES))
    add(g, "--skip-corrupt", "skip unreadable images and count them instead of stopping with an error",
        action="store_true")

    g = parser.add_argument_group("preprocessing and augmentation")
    add(g, "--img-size", "training and evaluation input size in pixels", type=int)
    add(g, "--crop-pct", "evaluation centre-crop fraction (0.875: resize 256, crop 224)", type=float)
    add(g, "--interpolation", "resize interpolation", choices=["bilinear", "bicubic"])
    add(g, "--scale", "RandomResizedCrop area range", type=float, nargs=2, metavar=("MIN", "MAX"))
    add(g, "--hflip", "horizontal flip probability", type=float)
    add(g, "--color-jitter", "colour jitter strength (off when not given)", type=float)
    add(g, "--auto-augment", "timm auto-augment spec, e.g. rand-m9-mstd0.5-inc1 (RandAugment)")
    add(g, "--reprob", "random erasing probability", type=float)
    add(g, "--mixup", "Mixup alpha (0: off)", type=float)
    add(g, "--cutmix", "CutMix alpha (0: off)", type=float)
    add(g, "--smoothing", "label smoothing", type=float)
    add(g, "--drop-path", "stochastic depth rate", type=float)

    g = parser.add_argument_group("optimisation")
    add(g, "--epochs", "training epochs", type=int)
    add(g, "--batch-size", "images per process per step", type=int)
    add(g, "--grad-accum-steps", "micro-batches accumulated per optimizer step (default: 1)", type=int)
    add(g, "--opt", "timm optimizer name: momentum (SGD), sgd (SGD + Nesterov), adamw, lamb, ...")
    add(g, "--lr", "peak learning rate (default: --lr-base scaled by global batch / --lr-base-size, "
        "linearly for SGD, by the square root for adaptive optimizers)", type=float)
    add(g, "--lr-base", "learning rate for a global batch of --lr-base-size", type=float)
    add(g, "--lr-base-size", "global batch size that --lr-base is meant for", type=int)
    add(g, "--momentum", "optimizer momentum", type=float)
    add(g, "--weight-decay", "weight decay", type=float)
    add(g, "--decay-norm-and-bias", "apply weight decay to norm and bias parameters too",
        action=argparse.BooleanOptionalAction)
    add(g, "--clip-grad", "clip the gradient norm to this value (default: off)", type=float)
    add(g, "--sched", "timm scheduler: step, cosine, multistep, poly, ...")
    add(g, "--sched-on-updates", "update the schedule every optimizer step instead of every epoch",
        action=argparse.BooleanOptionalAction)
    add(g, "--decay-epochs", "epochs between step decays", type=float)
    add(g, "--decay-rate", "step decay factor", type=float)
    add(g, "--warmup-epochs", "linear warmup epochs", type=int)
    add(g, "--warmup-lr", "learning rate at the start of warmup", type=float)
    add(g, "--min-lr", "lowest learning rate of the cosine schedule", type=float)
    add(g, "--model-ema", "keep an exponential moving average of the weights (timm ModelEmaV3); it is "
        "evaluated, and exported when best", action=argparse.BooleanOptionalAction)
    add(g, "--model-ema-decay", "EMA decay per optimizer step", type=float)

    g = parser.add_argument_group("runtime")
    add(g, "--device", "cpu, cuda or auto (default: auto = cuda when available); under torchrun each "
        "process takes cuda:LOCAL_RANK")
    add(g, "--amp", **RUN_OPTIONS["--amp"])
    add(g, "--channels-last", "channels_last memory format", action=argparse.BooleanOptionalAction)
    add(g, "--compile", "torch.compile the model", action=argparse.BooleanOptionalAction)
    add(g, "--grad-checkpointing", "recompute activations in the backward pass to save memory",
        action=argparse.BooleanOptionalAction)
    add(g, "--sync-bn", "synchronise BatchNorm statistics across processes (CUDA)",
        action=argparse.BooleanOptionalAction)
    add(g, "--workers", "data loading processes per training process (0: load in the training process; "
        "default: the CPUs this process may use, shared by the processes on the machine, at most 8)", type=int)
    add(g, "--seed", "random seed: the data order and augmentation depend only on it and the epoch "
        "(default: 0)", type=int)
    add(g, "--output-dir", "run folder: config, checkpoints, metrics, best model (default: runs/<data>-<model>)")
    add(g, "--resume", **RUN_OPTIONS["--resume"])
    add(g, "--overwrite", **RUN_OPTIONS["--overwrite"])
    add(g, "--log-interval", "steps between progress updates and loss checks (default: 10)", type=int)
    add(g, "--explain-every", "every N epochs, save the Grad-CAM grid of a fixed set of validation images as "
        "explain/epoch_<N>.png in the run folder (needs `pip install 'epsanet[explain]'`; default: 0 = off)",
        type=int, metavar="N")


def default_recipe(data: str) -> str:
    return "digits" if data == DIGITS else "paper"


def scaled_lr(lr_base: float, lr_base_size: int, global_batch_size: int, opt: str) -> float:
    """timm's learning-rate scaling: linear in the batch size for SGD-like optimizers, square
    root for adaptive ones (Adam*, LAMB, Ada*)."""
    ratio = global_batch_size / lr_base_size
    adaptive = any(name in opt.lower() for name in ("ada", "lamb"))
    return lr_base * (math.sqrt(ratio) if adaptive else ratio)


def resolve_config(options: Mapping[str, Any], world_size: int = 1) -> TrainConfig:
    """The run's configuration: defaults, then the recipe, then ``options`` (e.g.
    ``vars(parser.parse_args())``, which holds only the options given on the command line).
    ``world_size`` is the number of processes, for the global batch and the learning rate."""
    options = {k: v for k, v in options.items() if k in _FIELDS}
    data = options.get("data", TrainConfig.data)
    recipe = options.get("recipe") or default_recipe(data)
    config = TrainConfig(**{**RECIPES[recipe], **options, "recipe": recipe})
    config.scale = tuple(config.scale)
    if config.workers is None:
        config.workers = default_workers()
    _validate(config)
    config.world_size = world_size
    config.global_batch_size = config.batch_size * world_size * config.grad_accum_steps
    if config.output_dir is None:
        config.output_dir = str(Path("runs") / f"{_data_name(config.data)}-{config.model}")
    return config


def lr_for(config: TrainConfig) -> float:
    """The peak learning rate: ``--lr`` if given, else the recipe's base rate scaled to the global batch."""
    if config.lr is not None:
        return config.lr
    return scaled_lr(config.lr_base, config.lr_base_size, config.global_batch_size, config.opt)


def _data_name(data: str) -> str:
    return data if data == DIGITS else Path(data).resolve().name


# Options whose value must lie in a range: name -> (low, high, low included, high included).
_RANGES = {
    "lr": (0, math.inf, False, False), "lr_base": (0, math.inf, False, False),
    "weight_decay": (0, math.inf, True, False), "momentum": (0, 1, True, False),
    "smoothing": (0, 1, True, False), "hflip": (0, 1, True, True), "reprob": (0, 1, True, True),
    "mixup": (0, math.inf, True, False), "cutmix": (0, math.inf, True, False), "drop_path": (0, 1, True, False),
    "color_jitter": (0, math.inf, True, False), "clip_grad": (0, math.inf, False, False),
    "decay_epochs": (0, math.inf, False, False), "decay_rate": (0, math.inf, False, False),
    "warmup_epochs": (0, math.inf, True, False), "warmup_lr": (0, math.inf, True, False),
    "min_lr": (0, math.inf, True, False), "model_ema_decay": (0, 1, False, False),
}


def _check_range(name: str, value: Optional[float], low: float, high: float, with_low: bool, with_high: bool) -> None:
    if value is None:
        return
    above = value >= low if with_low else value > low
    below = value <= high if with_high else value < high
    if not (above and below) or math.isnan(value):
        if math.isinf(high):
            wanted = "0 or more" if with_low else "positive"
        else:
            wanted = f"in {'[' if with_low else '('}{low:g}, {high:g}{']' if with_high else ')'}"
        raise InvalidArgumentError(f"--{name.replace('_', '-')} must be {wanted}, got {value:g}")


def _validate(config: TrainConfig) -> None:
    positive = ("epochs", "batch_size", "grad_accum_steps", "img_size", "lr_base_size", "log_interval")
    for name in positive:
        if getattr(config, name) <= 0:
            raise InvalidArgumentError(f"--{name.replace('_', '-')} must be positive, got {getattr(config, name)}")
    if config.explain_every < 0:
        raise InvalidArgumentError(f"--explain-every must be 0 (off) or a number of epochs, got {config.explain_every}")
    if config.workers < 0:
        raise InvalidArgumentError(f"--workers must be 0 or more, got {config.workers}")
    for name, bounds in _RANGES.items():
        _check_range(name, getattr(config, name), *bounds)
    low, high = config.scale
    if not 0 < low <= high:
        raise InvalidArgumentError(f"--scale MIN MAX must satisfy 0 < MIN <= MAX, got {low:g} {high:g}")
    if (config.mixup > 0 or config.cutmix > 0) and config.batch_size % 2:
        raise InvalidArgumentError("Mixup/CutMix mix pairs of images: --batch-size must be even, got "
                                   f"{config.batch_size}")
    if not 0 < config.crop_pct <= 1:
        raise InvalidArgumentError(f"--crop-pct must be in (0, 1], got {config.crop_pct}")
    _check_names(config)


def _check_names(config: TrainConfig) -> None:
    """Names that timm or torch resolve only when the run has started: checked at once."""
    import difflib

    import timm.optim
    import torch
    from timm.data import create_transform
    from timm.scheduler import create_scheduler_v2

    from .._utils.device import resolve_device

    resolve_device(config.device)
    optimizers = timm.optim.list_optimizers()
    if config.opt.lower() not in optimizers:
        close = difflib.get_close_matches(config.opt.lower(), optimizers, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.optim.list_optimizers()"
        raise InvalidArgumentError(f"--opt {config.opt} is not a timm optimizer: {hint}")
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    try:
        create_scheduler_v2(probe, sched=config.sched, num_epochs=2, decay_epochs=1)
    except (ValueError, AssertionError, KeyError) as e:
        raise InvalidArgumentError(f"--sched {config.sched} is not a timm scheduler ({e}): use cosine, step, "
                                   "multistep, poly, plateau, tanh, constant, wsd, rsqrt or none") from None
    if config.auto_augment:
        try:
            create_transform(32, is_training=True, auto_augment=config.auto_augment)
        except (AssertionError, ValueError, KeyError) as e:
            raise InvalidArgumentError(f"--auto-augment {config.auto_augment} is not a timm auto-augment spec ({e}): "
                                       "e.g. rand-m9-mstd0.5-inc1 (RandAugment), augmix-m5-w4-d2, original or "
                                       "v0") from None
