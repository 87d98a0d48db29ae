"""COCO-format detection data: a checked annotation file, a dataset of (image, target) pairs and
the torchvision-references transforms (horizontal flip for training).

Targets are what torchvision's detectors take: ``boxes`` (XYXY pixels), ``labels`` (the category
ids), ``masks`` (one binary mask per object, when asked for) and ``image_id``. Crowd annotations
(``iscrowd=1``) are left out of the targets, as in torchvision's references; COCO evaluation
still sees them.
"""
import contextlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from PIL import Image, UnidentifiedImageError
from torchvision import tv_tensors
from torchvision.ops import box_convert
from torchvision.transforms import v2

from .._utils.errors import EpsanetError, InvalidArgumentError, PathNotFoundError
from .._utils.optional import require
from .._utils.paths import Kind, WrongKindError, path_kind, require_folder

COCO = require("pycocotools.coco", "detection", "detection").COCO

__all__ = ["AnnotationError", "load_coco", "CocoDetection", "detection_transforms", "collate"]

PathLike = Union[str, os.PathLike]


class AnnotationError(EpsanetError, ValueError):
    """A COCO annotation file that cannot be used; the message names the file and what is wrong."""


def load_coco(path: PathLike, *, require_masks: bool = False) -> COCO:
    """Read and check a COCO-format annotation file; return it as a pycocotools ``COCO``.

    Each image needs ``id``, ``file_name``, ``width`` and ``height``; each annotation ``id``,
    ``image_id`` (of a listed image), ``category_id`` (of a listed category) and ``bbox``
    ``[x, y, width, height]``, and a ``segmentation`` (polygons or RLE) when ``require_masks``.
    A missing ``area`` is taken from the box and a missing ``iscrowd`` is 0. Anything else raises
    :class:`AnnotationError` naming the file and the first problem found.
    """
    path = Path(path)
    info = path_kind(path)
    if info.kind is Kind.MISSING:
        raise PathNotFoundError(f"annotation file {path} does not exist: check the path")
    if not path.is_file():
        raise WrongKindError(f"annotation file {path} is {info.description}, not a COCO JSON file: pass its "
                             "instances_*.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except UnicodeDecodeError:
        raise AnnotationError(f"{path} is not a UTF-8 text file: expected a COCO-format JSON file") from None
    _check_dataset(data, path, require_masks)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress messages
        coco.createIndex()
    return coco


def _check_dataset(data: Any, path: Path, require_masks: bool) -> None:
    def fail(message: str) -> None:
        raise AnnotationError(f"{path}: {message}")

    if not isinstance(data, dict):
        fail(f"the top level is a JSON {type(data).__name__}, not an object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            fail(f"no {key!r} list: not a COCO-format annotation file")
    if not data["categories"]:
        fail("the 'categories' list is empty")
    category_ids = set()
    for i, category in enumerate(data["categories"]):
        _require(category, ("id", "name"), f"categories[{i}]", fail)
        if not _is_id(category["id"]):
            fail(f"categories[{i}] has id {category['id']!r}: category ids are positive integers "
                 "(label 0 is the detectors' background)")
        category_ids.add(category["id"])
    image_sizes = {}
    for i, image in enumerate(data["images"]):
        _require(image, ("id", "file_name", "width", "height"), f"images[{i}]", fail)
        if image["id"] in image_sizes:
            fail(f"images[{i}] repeats image id {image['id']!r}")
        if not all(isinstance(image[k], int) and image[k] > 0 for k in ("width", "height")):
            fail(f"images[{i}] has size {image['width']!r}x{image['height']!r}: width and height are positive integers")
        image_sizes[image["id"]] = (image["width"], image["height"])
    annotation_ids = set()
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        _require(ann, ("id", "image_id", "category_id", "bbox"), where, fail)
        if ann["id"] in annotation_ids:
            fail(f"{where} repeats annotation id {ann['id']!r}")
        annotation_ids.add(ann["id"])
        if ann["image_id"] not in image_sizes:
            fail(f"{where} refers to image id {ann['image_id']!r}, which is not in 'images'")
        if ann["category_id"] not in category_ids:
            fail(f"{where} has category_id {ann['category_id']!r}, which is not in 'categories'")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            fail(f"{where} has bbox {box!r}: expected [x, y, width, height], four numbers")
        if box[2] < 0 or box[3] < 0:
            fail(f"{where} has bbox {box!r} with a negative width or height")
        if require_masks or "segmentation" in ann:
            _check_segmentation(ann.get("segmentation"), image_sizes[ann["image_id"]], where, fail)
        ann.setdefault("area", box[2] * box[3])
        ann.setdefault("iscrowd", 0)


def _require(entry: Any, keys: Sequence[str], where: str, fail: Callable[[str], None]) -> None:
    if not isinstance(entry, dict):
        fail(f"{where} is a JSON {type(entry).__name__}, not an object")
    missing = [k for k in keys if k not in entry]
    if missing:
        fail(f"{where} has no {', '.join(map(repr, missing))}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_segmentation(segmentation: Any, size: Tuple[int, int], where: str, fail: Callable[[str], None]) -> None:
    if segmentation is None:
        fail(f"{where} has no 'segmentation': a mask model needs one per annotation (polygons or RLE)")
    if isinstance(segmentation, list):
        for polygon in segmentation:
            if not (isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
                    and all(_is_number(v) for v in polygon)):
                fail(f"{where} has a polygon that is not a flat list of at least 3 x, y pairs")
    elif isinstance(segmentation, dict):
        width, height = size
        if segmentation.get("size") != [height, width] or "counts" not in segmentation:
            fail(f"{where} has an RLE segmentation without 'counts' or whose 'size' is not the image's "
                 f"[{height}, {width}]")
    else:
        fail(f"{where} has a segmentation that is neither polygons nor RLE")


class CocoDetection(torch.utils.data.Dataset):
    """Images and COCO-format annotations as (image, target) pairs for torchvision's detectors.

    Args:
        images: the folder holding the images (``file_name`` is relative to it).
        annotations: the COCO-format JSON file, checked by :func:`load_coco`.
        masks: also give each object's binary mask (for Mask R-CNN).
        transforms: a ``torchvision.transforms.v2`` transform of (image, target), e.g.
            :func:`detection_transforms`.
    """

    def __init__(self, images: PathLike, annotations: PathLike, *, masks: bool = False,
                 transforms: Optional[Callable] = None) -> None:
        self.root = Path(images)
        require_folder(self.root, "image folder", "pass the folder of the annotation file's images")
        self.coco = load_coco(annotations, require_masks=masks)
        self.annotation_file = Path(annotations)
        self.ids = sorted(self.coco.imgs)
        self.masks = masks
        self.transforms = transforms
        absent = [self.coco.imgs[i]["file_name"] for i in self.ids
                  if not (self.root / self.coco.imgs[i]["file_name"]).is_file()]
        if absent:
            raise PathNotFoundError(
                f"{len(absent)} of the {len(self.ids)} images listed in {self.annotation_file} are not in "
                f"{self.root} (first: {absent[0]}): check the image folder"
            )

    @property
    def categories(self) -> List[Dict[str, Any]]:
        """The ``categories`` of the annotation file, by id."""
        return [self.coco.cats[i] for i in sorted(self.coco.cats)]

    @property
    def num_classes(self) -> int:
        """What a detector's ``num_classes`` must be: the largest category id plus the background."""
        return max(self.coco.cats) + 1

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, Dict[str, Any]]:
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        image = self._read_image(info)
        anns = [a for a in self.coco.imgToAnns[image_id] if not a["iscrowd"]]
        height, width = image.shape[-2:]
        boxes = box_convert(torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4), "xywh", "xyxy")
        target: Dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
            "image_id": image_id,
        }
        if self.masks:
            masks = [torch.from_numpy(self.coco.annToMask(a)) for a in anns]
            target["masks"] = tv_tensors.Mask(
                torch.stack(masks) if masks else torch.zeros((0, height, width), dtype=torch.uint8))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def _read_image(self, info: Mapping[str, Any]) -> tv_tensors.Image:
        path = self.root / info["file_name"]
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except (UnidentifiedImageError, OSError) as e:
            raise InvalidArgumentError(f"cannot decode image {path} ({e}): the file is corrupt or not an "
                                       "image") from None
        if image.size != (info["width"], info["height"]):
            raise InvalidArgumentError(
                f"image {path} is {image.width}x{image.height} but {self.annotation_file} says "
                f"{info['width']}x{info['height']}: fix the annotation's width and height"
            )
        return tv_tensors.Image(image)


def detection_transforms(train: bool, hflip_prob: float = 0.5) -> v2.Compose:
    """torchvision references' detection transforms: random horizontal flip for training, then
    float images in [0, 1]; boxes that became degenerate are dropped with their labels and masks.
    Resizing is the detector's own (``min_size``/``max_size``)."""
    steps: List[Callable] = [v2.RandomHorizontalFlip(hflip_prob)] if train else []
    steps += [v2.ToDtype(torch.float32, scale=True), v2.SanitizeBoundingBoxes(), v2.ToPureTensor()]
    return v2.Compose(steps)


def collate(batch: Sequence[Tuple[torch.Tensor, Dict[str, Any]]]) -> Tuple[Tuple[torch.Tensor, ...], Tuple[Dict, ...]]:
    """Batch as torchvision's detectors take it: a tuple of images and a tuple of targets."""
    return tuple(zip(*batch))
