"""Where a model comes from: a zoo name (with catalogue weights or none), a hub folder, an
``hf-hub:`` id, or a checkpoint; and how a trained model records its preprocessing and labels."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import timm
from torch import nn

from ..catalogue import list_pretrained
from ..checkpoint import CheckpointMismatchError, load_checkpoint, read_state_dict
from ..hub import from_pretrained
from ..models import get_model_builder

__all__ = ["create_model_for_training", "load_model", "record_preprocessing"]


def _is_hub_source(source: str) -> bool:
    return source.startswith("hf-hub:") or Path(source).is_dir()


def _catalogue_model(name: str, tag: Optional[str], **kwargs: Any) -> nn.Module:
    get_model_builder(name)  # a one-line error with suggestions for an unknown name
    if tag is None:
        return timm.create_model(name, **kwargs)
    if f"{name}.{tag}" not in list_pretrained(f"{name}.*"):
        tags = ", ".join(n.split(".", 1)[1] for n in list_pretrained(f"{name}.*")) or "none exist yet"
        raise ValueError(f"no pretrained weights {tag!r} for {name} (available: {tags}): see `epsanet models`")
    return timm.create_model(f"{name}.{tag}", pretrained=True, **kwargs)


def create_model_for_training(name: str, num_classes: int, pretrained: Optional[str] = None,
                              **kwargs: Any) -> nn.Module:
    """Zoo model ``name`` with ``num_classes`` outputs, randomly initialised, or starting from
    ``pretrained``: a catalogue tag, a hub folder / ``hf-hub:`` id, or a checkpoint file. A
    classifier of another size is replaced by a new one. ``kwargs`` go to the builder."""
    kwargs["num_classes"] = num_classes
    if pretrained is None or not (_is_hub_source(pretrained) or Path(pretrained).is_file()):
        return _catalogue_model(name, pretrained, **kwargs)
    if _is_hub_source(pretrained):
        model = from_pretrained(pretrained, **kwargs)
        architecture = model.pretrained_cfg.get("architecture")
        if architecture != name:
            raise ValueError(f"--pretrained {pretrained} holds a {architecture}, not a {name}: "
                             f"pass --model {architecture}")
        return model
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


def load_model(source: str, pretrained: Optional[str] = None, checkpoint: Optional[str] = None) -> nn.Module:
    """A model to evaluate, from ``source``: a zoo name (with a catalogue tag ``pretrained``, or
    the weights in ``checkpoint``: official ``.pth.tar``, state dict, safetensors), a hub folder,
    an ``hf-hub:`` id, or a checkpoint written by ``epsanet train``."""
    if (pretrained or checkpoint) and (_is_hub_source(source) or Path(source).is_file()):
        raise ValueError(f"--pretrained and --checkpoint go with a zoo model name, not with {source}")
    if _is_hub_source(source):
        return from_pretrained(source)
    if Path(source).is_file():
        return _model_from_training_checkpoint(Path(source))
    if checkpoint is None:
        return _catalogue_model(source, pretrained)
    get_model_builder(source)
    state = read_state_dict(checkpoint)
    classifier = timm.get_pretrained_cfg(source).classifier
    num_classes = state[f"{classifier}.weight"].shape[0] if f"{classifier}.weight" in state else None
    model = _catalogue_model(source, None, **({"num_classes": num_classes} if num_classes else {}))
    load_checkpoint(model, state)
    return model


def _model_from_training_checkpoint(path: Path) -> nn.Module:
    from .state import load_training_checkpoint

    try:
        state = load_training_checkpoint(path)
    except ValueError:
        raise ValueError(f"{path} is not an `epsanet train` checkpoint: for other checkpoints pass the "
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
