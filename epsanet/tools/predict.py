"""Classifying images with a model: its own preprocessing, its own class names, top-k.

The preprocessing and the class names are those the weights hold (see
:func:`epsanet.hub.sources.source_info`): the preprocessing the weights were trained and evaluated
with (timm's ``resolve_data_config`` + ``create_transform``, as timm's ``inference.py`` and
torchvision's ``weights.transforms()``), and the weights' own class names, never guessed.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from .._utils.errors import InvalidArgumentError, PathNotFoundError, first_line
from .._utils.paths import IMAGE_SUFFIXES, Kind, WrongKindError, require_existing
from ..hub.sources import source_info

__all__ = ["Prediction", "Predictions", "find_images", "load_image", "predict"]

PathLike = Union[str, os.PathLike]


@dataclass
class Prediction:
    """The top-k classes of one image: ``(index, name, probability)`` triples, most likely first."""

    image: str
    top_k: List[tuple]

    def to_dict(self) -> dict:
        return {"image": self.image, "top_k": [{"index": i, "label": name, "probability": round(p, 6)}
                                               for i, name, p in self.top_k]}


@dataclass
class Predictions:
    """What :func:`predict` found: a :class:`Prediction` per readable image, in input order, and
    the images that could not be read (``unreadable``: path -> the one-line reason)."""

    predictions: List[Prediction] = field(default_factory=list)
    unreadable: Dict[str, str] = field(default_factory=dict)


def find_images(inputs: Sequence[PathLike]) -> List[Path]:
    """The image files named by ``inputs``: image files, and the image files (by suffix) under
    folders, in sorted order. A missing path, a file that is not an image or a folder without
    images is a one-line error naming it."""
    images: List[Path] = []
    for item in inputs:
        info = require_existing(item, "image")
        if info.is_folder:
            found = sorted(p for p in info.path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise PathNotFoundError(f"folder {item} holds no images ({', '.join(IMAGE_SUFFIXES[:5])}, ...): "
                                        "pass image files or a folder of them")
            images += found
        elif info.kind is Kind.IMAGE:
            images.append(info.path)
        else:
            raise WrongKindError(f"{item} is {info.description}, not an image: pass image files or folders of them")
    return images


def load_image(path: PathLike) -> Image.Image:
    """An image file as RGB: EXIF rotation applied, transparency composited onto white,
    grayscale and palette images expanded. An unreadable file raises a one-line
    :class:`InvalidArgumentError`."""
    path = Path(path)
    if not path.is_file():
        raise PathNotFoundError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InvalidArgumentError(f"cannot read image {path} ({first_line(e)}): replace or delete the file") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _batches(paths: Sequence[Path], transform, batch_size: int, unreadable: Dict[str, str]) -> Iterator[tuple]:
    """Batches of the readable images of ``paths``; each unreadable one is added to ``unreadable``."""
    chunk, tensors = [], []
    for path in paths:
        try:
            tensors.append(transform(load_image(path)))
        except InvalidArgumentError as e:
            unreadable[str(path)] = str(e)
            continue
        chunk.append(path)
        if len(chunk) == batch_size:
            yield chunk, torch.stack(tensors)
            chunk, tensors = [], []
    if chunk:
        yield chunk, torch.stack(tensors)


@torch.inference_mode()
def predict(model: nn.Module, images: Sequence[PathLike], top_k: Optional[int] = None, batch_size: int = 32,
            device: Optional[Union[str, torch.device]] = None) -> Predictions:
    """The ``top_k`` classes (default: 5, or all of a model with fewer) of every image (files, or
    folders of them), with the preprocessing of ``model``'s pretrained cfg and its class names.
    An image that cannot be read is listed in the result's ``unreadable``, never dropped silently."""
    paths = find_images(images)
    info = source_info(model)
    top_k = min(5, info.num_classes) if top_k is None else top_k
    if not 1 <= top_k <= info.num_classes:
        raise InvalidArgumentError(f"--top-k must be between 1 and the model's {info.num_classes} classes, got "
                                   f"{top_k}")
    if batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be at least 1, got {batch_size}")
    if device is None:
        device = next(model.parameters(), torch.empty(0)).device  # a model served by a runtime has none
    device = torch.device(device)
    model = model.eval().to(device)
    result = Predictions()
    for chunk, batch in _batches(paths, info.transform(), batch_size, result.unreadable):
        probabilities = model(batch.to(device)).float().softmax(dim=1)
        values, indices = probabilities.topk(top_k, dim=1)
        for path, p, i in zip(chunk, values.tolist(), indices.tolist()):
            result.predictions.append(Prediction(str(path), [(k, info.class_names[k], v) for k, v in zip(i, p)]))
    return result
