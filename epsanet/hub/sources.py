"""Where a model comes from: a zoo name (with catalogue weights or none), a hub folder, an
``hf-hub:`` id, or a checkpoint; how a trained model records its preprocessing and labels, and
what a loaded model holds (:func:`source_info`: architecture, classes, input size, preprocessing)."""
import difflib
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import timm
from timm.data import ImageNetInfo, create_transform, resolve_data_config
from torch import nn

from .._utils.errors import InvalidArgumentError, PathNotFoundError, PathPermissionError, first_line
from .._utils.paths import (
    Kind,
    PathKind,
    WrongKindError,
    looks_like_path,
    path_kind,
    require_checkpoint,
    require_existing,
)
from ..models import get_model_builder
from ..weights.catalogue import canonical_model, find_weights, weights_entries
from ..weights.checkpoint import CheckpointMismatchError, load_checkpoint, load_training_checkpoint, read_state_dict
from ..weights.download import HubError
from .pretrained import from_pretrained

__all__ = ["SourceInfo", "create_model_for_training", "load_model", "local_source", "source_info",
           "record_preprocessing"]


def _is_hub_source(source: str) -> bool:
    return source.startswith("hf-hub:") or Path(source).is_dir()


def _catalogue_model(name: str, tag: Optional[str], route: str = "cli-model", **kwargs: Any) -> nn.Module:
    """Zoo model ``name``, with the catalogue weights ``tag`` if given; ``route`` says how the
    command takes a hub folder, for the instructions of weights fetched by hand."""
    get_model_builder(name)  # a one-line error with suggestions for an unknown name
    if tag is None:
        return timm.create_model(name, **kwargs)
    entry = find_weights(name, tag)
    if entry is None and (looks_like_path(tag) or os.path.exists(tag)):
        require_existing(tag, "--pretrained", "check the path; a hub folder or training run folder is the --model")
        raise InvalidArgumentError(f"--pretrained {tag} is a path, not a catalogue tag (see `epsanet weights`): pass "
                                   f"the model it holds as --model {tag}")
    if entry is None:
        tags = ", ".join(e.tag for e in weights_entries(name)) or "none exist yet"
        raise InvalidArgumentError(f"no pretrained weights {tag!r} for {name} (available: {tags}): see `epsanet "
                                   "weights`, or pass a hub folder or hf-hub:ORG/NAME")
    if entry.by_hand:
        raise HubError(entry.fetch_instructions(route))
    return timm.create_model(f"{name}.{tag}", pretrained=True, **kwargs)


def create_model_for_training(name: str, num_classes: int, pretrained: Optional[str] = None,
                              **kwargs: Any) -> nn.Module:
    """Zoo model ``name`` with ``num_classes`` outputs, randomly initialised, or starting from
    ``pretrained``: a catalogue tag, a hub folder / ``hf-hub:`` id, or a checkpoint file. A
    classifier of another size is replaced by a new one. ``kwargs`` go to the builder; one it
    does not take, or of the wrong type, is a one-line :class:`InvalidArgumentError`."""
    try:
        return _create_model_for_training(name, num_classes, pretrained, **kwargs)
    except TypeError as e:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "num_classes") or "none"
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if unknown:
            close = difflib.get_close_matches(unknown[1], _builder_arguments(), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"see help(epsanet.{name})"
            raise InvalidArgumentError(f"{name} takes no argument {unknown[1]!r} (--model-kwargs): {hint}") from None
        raise InvalidArgumentError(f"{name} cannot be built with {given} ({first_line(e)}): check the "
                                   f"values' types, see help(epsanet.{name})") from None


def _builder_arguments() -> Sequence[str]:
    """The argument names the zoo's ResNet takes (its own and timm's ResNet's)."""
    from timm.models.resnet import ResNet as TimmResNet

    from ..models import ResNet

    names = set(inspect.signature(ResNet.__init__).parameters) | set(inspect.signature(TimmResNet.__init__).parameters)
    return sorted(names - {"self", "kwargs", "block"})


def _create_model_for_training(name: str, num_classes: int, pretrained: Optional[str], **kwargs: Any) -> nn.Module:
    kwargs["num_classes"] = num_classes
    from_hub = pretrained is not None and pretrained.startswith("hf-hub:")
    info = None if pretrained is None or from_hub else local_source(pretrained, "--pretrained")
    if info is None and not from_hub:
        return _catalogue_model(name, pretrained, "cli-pretrained", **kwargs)
    if info is not None and info.kind is Kind.TRAINING_RUN:
        best, last = info.path / "best", info.path / "last.pth"
        if not ((best / "config.json").is_file() or last.is_file()):
            raise PathNotFoundError(f"--pretrained {pretrained} is a run folder without best/ nor last.pth yet: let "
                                    "it finish an epoch")
        pretrained = str(best if (best / "config.json").is_file() else last)
        info = path_kind(pretrained)
    if from_hub or info.kind is Kind.HUB_FOLDER:
        model = from_pretrained(pretrained, **kwargs)
        architecture = model.pretrained_cfg.get("architecture")
        if canonical_model(architecture) != canonical_model(name):
            raise InvalidArgumentError(f"--pretrained {pretrained} holds a {architecture}, not a {name}: "
                                       f"pass --model {architecture}")
        return model
    if info.is_folder:
        raise WrongKindError(f"--pretrained {pretrained} is a folder without config.json (not a hub folder nor a "
                             f"training run): pass {WEIGHTS_SOURCES}")
    if not info.is_checkpoint:
        require_checkpoint(info.path, "--pretrained")
    model = _catalogue_model(name, None, **kwargs)
    classifier = model.pretrained_cfg.get("classifier", "fc")
    missing, unexpected = load_checkpoint(model, pretrained, strict=False)
    mismatched = [k for k in missing + unexpected if not k.startswith(f"{classifier}.")]
    if mismatched:
        raise CheckpointMismatchError(
            f"checkpoint {pretrained} does not fit {name} ({len(mismatched)} keys differ, e.g. "
            f"{', '.join(mismatched[:3])}): check --model"
        )
    return model


MODEL_SOURCES = ("a zoo model name (see `epsanet models`), a hub folder, a training run folder, an hf-hub:ORG/NAME "
                 "id or an `epsanet train` checkpoint")
WEIGHTS_SOURCES = ("a catalogue tag (see `epsanet weights`), a hub folder, a training run folder, an hf-hub:ORG/NAME "
                   "id or a checkpoint file")


def local_source(source: str, role: str = "--model") -> Optional[PathKind]:
    """What a model source that names a local path holds (``role`` is the option it came from);
    None for a zoo name or an ``hf-hub:`` id. A path that does not exist is a one-line error."""
    if source.startswith("hf-hub:"):
        return None
    info = path_kind(source)
    if info.kind is not Kind.MISSING:
        return info
    if looks_like_path(source):
        detail = "" if info.description == "missing" else f" ({info.description})"
        sources = WEIGHTS_SOURCES if role == "--pretrained" else MODEL_SOURCES
        raise PathNotFoundError(f"{role} {source} does not exist{detail}: pass {sources}")
    return None


def require_weights(source: str, pretrained: Optional[str], checkpoint: Optional[str], outcome: str,
                    fixes: str) -> None:
    """Refuse a zoo model name given without any weights, whose answers would be noise: a
    one-line :class:`InvalidArgumentError` saying what it would do (``outcome``, e.g. "predicts noise") and what
    to pass (``fixes``). Paths, ``hf-hub:`` ids and ``model.tag`` names carry their weights."""
    holds_weights = source.startswith("hf-hub:") or local_source(source) is not None
    if not (holds_weights or pretrained or checkpoint or "." in source):
        get_model_builder(source)  # an unknown name says so first
        raise InvalidArgumentError(f"{source} without weights {outcome}: pass {fixes}")


def _split_name_and_tag(source: str, pretrained: Optional[str]) -> Tuple[str, Optional[str]]:
    """``model.tag`` (timm's way of naming weights) as the name and the tag."""
    name, dot, tag = source.partition(".")
    if not dot:
        return source, pretrained
    get_model_builder(name)
    if pretrained not in (None, tag):
        raise InvalidArgumentError(f"--model {source} names the weights {tag!r}, but --pretrained says {pretrained!r}: "
                                   "give the tag once")
    return name, tag


def load_model(source: str, pretrained: Optional[str] = None, checkpoint: Optional[str] = None,
               num_classes: Optional[int] = None, role: str = "--model") -> nn.Module:
    """A model to evaluate, from ``source``: a zoo name (with a catalogue tag ``pretrained``, or
    the weights in ``checkpoint``: official ``.pth.tar``, state dict, safetensors), ``model.tag``,
    a hub folder, a training run folder (its best model), an ``hf-hub:`` id, or a checkpoint
    written by ``epsanet train``. What ``source`` is comes from its content; a path of another
    kind is a one-line error naming what it is.

    ``num_classes`` sizes the classifier of a zoo model without weights, or a new one for catalogue
    weights; weights with a trained classifier of another size are an error saying so."""
    if pretrained and checkpoint:
        raise InvalidArgumentError(f"--pretrained {pretrained} and --checkpoint {checkpoint} both give weights: pass "
                                   "one of them")
    if num_classes is not None and num_classes < 1:
        raise InvalidArgumentError(f"--num-classes must be at least 1, got {num_classes}")
    info = local_source(source, role)
    if (pretrained or checkpoint) and (info is not None or source.startswith("hf-hub:")):
        option = "--pretrained" if pretrained else "--checkpoint"
        raise InvalidArgumentError(f"{option} goes with a zoo model name, not with {source}, which holds its own "
                                   f"weights: leave out {option}")
    if source.startswith("hf-hub:") or info is not None:
        model = from_pretrained(source) if info is None else _model_from_path(info, role)
        if num_classes is not None and num_classes != model.num_classes:
            raise InvalidArgumentError(f"{source} holds a trained {model.num_classes}-class classifier, not "
                                       f"{num_classes}: leave out --num-classes")
        return model
    source, pretrained = _split_name_and_tag(source, pretrained)
    sized = {} if num_classes is None else {"num_classes": num_classes}
    if checkpoint is None:
        return _catalogue_model(source, pretrained, **sized)
    get_model_builder(source)
    state = read_state_dict(checkpoint)
    classifier = timm.get_pretrained_cfg(source).classifier
    trained = state[f"{classifier}.weight"].shape[0] if f"{classifier}.weight" in state else None
    if trained is not None and num_classes not in (None, trained):
        raise CheckpointMismatchError(
            f"checkpoint {checkpoint} has a {trained}-class classifier ({classifier}.weight "
            f"{tuple(state[f'{classifier}.weight'].shape)}), not {num_classes}: pass --num-classes {trained}")
    model = _catalogue_model(source, None, **({"num_classes": trained} if trained else sized))
    load_checkpoint(model, state)
    return model


def _model_from_path(info: PathKind, role: str) -> nn.Module:
    path = info.path
    if info.kind is Kind.HUB_FOLDER:
        return from_pretrained(path)
    if info.kind is Kind.TRAINING_RUN:
        if (path / "best" / "config.json").is_file():
            return from_pretrained(path / "best")
        if (path / "last.pth").is_file():
            return _model_from_training_checkpoint(path / "last.pth")
        raise PathNotFoundError(f"run folder {path} has no best/ model nor last.pth yet: let it finish an epoch, "
                                "or resume it with `epsanet train --resume`")
    if info.kind in (Kind.TORCH_ZIP, Kind.TORCH_PICKLE):
        return _model_from_training_checkpoint(path)
    if info.kind is Kind.SAFETENSORS:
        raise WrongKindError(f"{role} {path} is a weights file without its architecture: pass "
                             f"--model NAME --checkpoint {path}")
    if info.kind is Kind.UNREADABLE:
        raise PathPermissionError(f"{role} {path} is {info.description}: fix its permissions")
    what = "a folder without config.json (not a hub folder nor a training run)" if info.is_folder else info.description
    raise WrongKindError(f"{role} {path} is {what}, not a model: pass {MODEL_SOURCES}")


def _model_from_training_checkpoint(path: Path) -> nn.Module:
    try:
        state = load_training_checkpoint(path)
    except InvalidArgumentError:
        raise InvalidArgumentError(f"{path} is not an `epsanet train` checkpoint: for other checkpoints pass the "
                                   "architecture, --model NAME --checkpoint FILE") from None
    config = state["config"]
    preprocessing = state["preprocessing"]
    model = timm.create_model(config["model"], num_classes=preprocessing["num_classes"],
                              pretrained_cfg_overlay=preprocessing, **config["model_kwargs"])
    load_checkpoint(model, state["model"])
    return model


# The pretrained-cfg fields that say how to feed a model and read its output.
PREPROCESSING_KEYS = ("input_size", "crop_pct", "interpolation", "mean", "std", "num_classes", "label_names")


def record_preprocessing(model: nn.Module, img_size: int, crop_pct: float, interpolation: str,
                         class_names: Sequence[str]) -> Dict[str, Any]:
    """Make ``model.pretrained_cfg`` describe how it is trained and evaluated (input size, crop,
    interpolation, classes), so that ``timm.data.resolve_data_config(model=model)``, the exported
    hub folder and ``epsanet eval`` all use the same preprocessing. Returns those fields."""
    cfg = {k: v for k, v in model.pretrained_cfg.items()
           if k not in ("test_input_size", "test_crop_pct", "pool_size", "test_pool_size", "label_descriptions")}
    channels = cfg.get("input_size", (3,))[0]
    cfg.update(input_size=(channels, img_size, img_size), crop_pct=crop_pct, interpolation=interpolation,
               num_classes=len(class_names), label_names=tuple(class_names))
    model.pretrained_cfg = cfg
    return {k: cfg[k] for k in PREPROCESSING_KEYS}


@dataclass(frozen=True)
class SourceInfo:
    """What a model holds beyond its weights: its ``architecture``, its classes (``class_names``,
    by index) and the preprocessing its weights were trained and evaluated with (timm's data
    config: ``input_size`` (channels, height, width), ``interpolation``, ``mean``, ``std``,
    ``crop_pct``, ``crop_mode``)."""

    architecture: str
    num_classes: int
    class_names: Tuple[str, ...]
    input_size: Tuple[int, int, int]
    interpolation: str
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    crop_pct: float
    crop_mode: str

    @property
    def data_config(self) -> Dict[str, Any]:
        """timm's data config (``timm.data.create_transform(**data_config)``)."""
        return {"input_size": self.input_size, "interpolation": self.interpolation, "mean": self.mean,
                "std": self.std, "crop_pct": self.crop_pct, "crop_mode": self.crop_mode}

    def transform(self) -> Callable:
        """The evaluation transform: resize, centre crop to ``input_size``, tensor, normalise."""
        return create_transform(**self.data_config, is_training=False)


def _is_imagenet_1k(cfg: Dict[str, Any]) -> bool:
    tag = cfg.get("tag") or ""
    return cfg.get("num_classes") == 1000 and (tag == "in1k" or tag.endswith(("_in1k", "_in22k_ft_in1k")))


def source_info(model: nn.Module) -> SourceInfo:
    """What ``model`` holds, from its pretrained cfg (a hub folder's config.json, a training run's
    recorded preprocessing, a catalogue entry, or timm's defaults for a model without weights).

    The class names are the weights' own: the ``label_names`` a training run records, ImageNet-1k's
    names for ImageNet-1k weights (from timm's ``ImageNetInfo``, shipped with timm), else
    ``class <index>``: a name is never guessed from the number of classes alone."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    num_classes = model.num_classes
    names = cfg.get("label_descriptions") or cfg.get("label_names")
    if not (names and len(names) == num_classes):
        names = (ImageNetInfo("imagenet-1k").label_descriptions() if _is_imagenet_1k(cfg)
                 else [f"class {i}" for i in range(num_classes)])
    data = resolve_data_config(model=model)
    return SourceInfo(
        architecture=cfg.get("architecture") or type(model).__name__, num_classes=num_classes,
        class_names=tuple(str(name) for name in names), input_size=tuple(data["input_size"]),
        interpolation=data["interpolation"], mean=tuple(data["mean"]), std=tuple(data["std"]),
        crop_pct=data["crop_pct"], crop_mode=data["crop_mode"])
