"""Classifying images with a model: its own preprocessing, its own class names, top-k.

The preprocessing is the one the weights were trained and evaluated with, from the model's
pretrained cfg (``timm.data.resolve_data_config`` + ``create_transform``, as timm's
``inference.py`` and torchvision's ``weights.transforms()``). The class names are the weights'
own: the ``label_names`` a training run records, ImageNet-1k's names for ImageNet-1k weights
(from timm's ``ImageNetInfo``, shipped with timm), else ``class <index>``: a name is never guessed
from the number of classes alone.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from timm.data import ImageNetInfo, create_transform, resolve_data_config
from torch import nn

from .._utils.errors import InvalidArgumentError, PathNotFoundError, first_line
from .._utils.paths import IMAGE_SUFFIXES, Kind, WrongKindError, require_existing

__all__ = ["Prediction", "class_names", "find_images", "load_image", "predict"]

PathLike = Union[str, os.PathLike]


@dataclass
class Prediction:
    """The top-k classes of one image: ``(index, name, probability)`` triples, most likely first."""

    image: str
    top_k: List[tuple]

    def to_dict(self) -> dict:
        return {"image": self.image, "top_k": [{"index": i, "label": name, "probability": round(p, 6)}
                                               for i, name, p in self.top_k]}


def _is_imagenet_1k(cfg: dict) -> bool:
    tag = cfg.get("tag") or ""
    return cfg.get("num_classes") == 1000 and (tag == "in1k" or tag.endswith(("_in1k", "_in22k_ft_in1k")))


def class_names(model: nn.Module) -> List[str]:
    """The names of ``model``'s classes, by index (see the module docstring for where they come from)."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    num_classes = model.num_classes
    names = cfg.get("label_descriptions") or cfg.get("label_names")
    if names and len(names) == num_classes:
        return [str(name) for name in names]
    if _is_imagenet_1k(cfg):
        return ImageNetInfo("imagenet-1k").label_descriptions()
    return [f"class {i}" for i in range(num_classes)]


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
    grayscale and palette images expanded. Unreadable files raise a one-line ``ValueError``."""
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


def _batches(paths: Sequence[Path], transform, batch_size: int) -> Iterator[tuple]:
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        tensors = []
        for path in chunk:
            tensors.append(transform(load_image(path)))
        yield chunk, torch.stack(tensors)


@torch.inference_mode()
def predict(model: nn.Module, images: Sequence[PathLike], top_k: Optional[int] = None, batch_size: int = 32,
            device: Optional[Union[str, torch.device]] = None) -> List[Prediction]:
    """The ``top_k`` classes (default: 5, or all of a model with fewer) of every image (files, or
    folders of them), with the preprocessing of ``model``'s pretrained cfg and its class names."""
    paths = find_images(images)
    num_classes = model.num_classes
    top_k = min(5, num_classes) if top_k is None else top_k
    if not 1 <= top_k <= num_classes:
        raise InvalidArgumentError(f"--top-k must be between 1 and the model's {num_classes} classes, got {top_k}")
    if batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be at least 1, got {batch_size}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.eval().to(device)
    transform = create_transform(**resolve_data_config(model=model), is_training=False)
    names = class_names(model)
    predictions = []
    for chunk, batch in _batches(paths, transform, batch_size):
        probabilities = model(batch.to(device)).float().softmax(dim=1)
        values, indices = probabilities.topk(top_k, dim=1)
        for path, p, i in zip(chunk, values.tolist(), indices.tolist()):
            predictions.append(Prediction(str(path), [(k, names[k], v) for k, v in zip(i, p)]))
    return predictions
