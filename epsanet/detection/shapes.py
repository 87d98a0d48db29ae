"""A procedurally generated COCO-format detection set: coloured shapes on textured backgrounds.

Deterministic for a seed: the same images (JPEG) and annotations (boxes, RLE masks of the visible
part of each shape, areas) on every machine. Made for the demo and the tests, which need no
download. Its layout is the COCO one::

    root/annotations/instances_train.json   root/train/000001.jpg ...
    root/annotations/instances_val.json     root/val/000001.jpg ...

or, with ``layout="yolo"``, Ultralytics' one (the same images; one ``class cx cy w h`` line per box,
normalised, classes from 0; the COCO annotations are kept for COCO evaluation)::

    root/data.yaml   root/images/train/000001.jpg ...   root/labels/train/000001.txt ...
    root/annotations/instances_train.json ...           root/images/val/...   root/labels/val/...
"""
import json
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

from .._utils.errors import InvalidArgumentError, PathExistsError
from .._utils.files import atomic_directory
from .._utils.optional import require
from .._utils.paths import Kind, require_output_folder

mask_utils = require("pycocotools.mask", "detection", "detection")

__all__ = ["SHAPES", "LAYOUTS", "make_shapes_dataset", "shapes_splits"]

SHAPES = ("circle", "square", "triangle", "star")
LAYOUTS = ("coco", "yolo")
_MAX_OCCLUSION = 0.3  # a shape keeps at least 70% of its area visible


def make_shapes_dataset(
    root: Union[str, os.PathLike],
    *,
    train_images: int = 300,
    val_images: int = 100,
    image_size: Tuple[int, int] = (160, 224),
    max_objects: int = 6,
    seed: int = 0,
    overwrite: bool = False,
    layout: str = "coco",
) -> Dict[str, Dict[str, Path]]:
    """Write the shapes set to ``root`` and return ``{split: {"images": dir, "annotations": file}}``
    (plus ``"labels"`` and ``"data_yaml"`` for the YOLO layout).

    Args:
        root: the folder to create; it appears complete or not at all.
        train_images, val_images: images per split.
        image_size: smallest and largest side; each image's width and height are drawn in it.
        max_objects: at most this many shapes per image (about 1 image in 20 has none).
        seed: the random seed; the splits use independent streams derived from it.
        overwrite: replace ``root`` if it exists (otherwise that is an error).
        layout: ``"coco"`` or ``"yolo"`` (Ultralytics' images/labels folders and ``data.yaml``).
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise InvalidArgumentError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    existing = require_output_folder(root, "ROOT", "choose another folder")
    if existing.kind is not Kind.MISSING and not overwrite:
        raise PathExistsError(f"{root} already exists: choose another folder, or replace it (--overwrite)")
    if not 8 <= image_size[0] <= image_size[1]:
        raise InvalidArgumentError(f"--image-size must be MIN MAX with 8 <= MIN <= MAX, got {image_size[0]} "
                                   f"{image_size[1]}")
    for option, value in (("--train-images", train_images), ("--val-images", val_images),
                          ("max_objects", max_objects)):
        if value < 1:
            raise InvalidArgumentError(f"{option} must be at least 1, got {value}")
    streams = np.random.SeedSequence(seed).spawn(2)
    with atomic_directory(root) as staging:
        for (split, count), stream in zip((("train", train_images), ("val", val_images)), streams):
            image_dir = staging / split if layout == "coco" else staging / "images" / split
            dataset = _write_split(staging, image_dir, split, count, image_size, max_objects,
                                   np.random.default_rng(stream))
            if layout == "yolo":
                _write_yolo_labels(dataset, staging / "labels" / split)
        if layout == "yolo":
            _write_yolo_data_yaml(staging / "data.yaml")
    return shapes_splits(root)


def shapes_splits(root: Union[str, os.PathLike]) -> Dict[str, Dict[str, Path]]:
    """``{split: {"images": dir, "annotations": file}}`` of a shapes set written to ``root``, plus
    ``"labels"`` (folder) and ``"data_yaml"`` (file) when it has the YOLO layout."""
    root = Path(root)
    yolo = (root / "data.yaml").is_file()
    splits = {}
    for split in ("train", "val"):
        paths = {"images": root / "images" / split if yolo else root / split,
                 "annotations": root / "annotations" / f"instances_{split}.json"}
        if yolo:
            paths.update(labels=root / "labels" / split, data_yaml=root / "data.yaml")
        splits[split] = paths
    return splits


def _write_yolo_labels(dataset: Dict, label_dir: Path) -> None:
    """One text file per image: a ``class cx cy w h`` line per box, normalised to [0, 1], classes from 0."""
    label_dir.mkdir(parents=True)
    lines: Dict[int, List[str]] = {image["id"]: [] for image in dataset["images"]}
    sizes = {image["id"]: (image["width"], image["height"]) for image in dataset["images"]}
    for ann in dataset["annotations"]:
        width, height = sizes[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        centre_x, centre_y = (x + w / 2) / width, (y + h / 2) / height
        lines[ann["image_id"]].append(
            f"{ann['category_id'] - 1} {centre_x:.6f} {centre_y:.6f} {w / width:.6f} {h / height:.6f}")
    for image in dataset["images"]:
        text = "".join(line + "\n" for line in lines[image["id"]])
        (label_dir / Path(image["file_name"]).with_suffix(".txt")).write_text(text, encoding="utf-8")


def _write_yolo_data_yaml(path: Path) -> None:
    """Ultralytics' dataset file; without a ``path`` key, Ultralytics reads the folders next to it."""
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(SHAPES))
    path.write_text(f"# epsanet shapes demo set (epsanet detect shapes --format yolo)\n"
                    f"train: images/train\nval: images/val\nnames:\n{names}", encoding="utf-8")


def _write_split(root: Path, image_dir: Path, split: str, count: int, image_size: Tuple[int, int],
                 max_objects: int, rng: np.random.Generator) -> Dict:
    image_dir.mkdir(parents=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, count + 1):
        width, height = (int(v) for v in rng.integers(image_size[0], image_size[1] + 1, size=2))
        num_objects = 0 if rng.random() < 0.05 else int(rng.integers(1, max_objects + 1))
        pixels, objects = _render(width, height, num_objects, rng)
        file_name = f"{image_id:06d}.jpg"
        Image.fromarray(pixels).save(image_dir / file_name, quality=92)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for category_id, mask in objects:
            rle = mask_utils.encode(np.asfortranarray(mask))
            rle["counts"] = rle["counts"].decode("ascii")
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                "bbox": [float(v) for v in mask_utils.toBbox(rle)], "area": float(mask_utils.area(rle)),
                "segmentation": rle, "iscrowd": 0,
            })
    dataset = {
        "info": {"description": f"epsanet shapes demo set, {split} split", "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES, 1)],
    }
    with open(root / "annotations" / f"instances_{split}.json", "w", encoding="utf-8") as f:
        json.dump(dataset, f)
    return dataset


def _render(width: int, height: int, num_objects: int,
            rng: np.random.Generator) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """An image with up to ``num_objects`` shapes, and each shape's category and visible mask."""
    canvas = _background(width, height, rng)
    owner = np.zeros((height, width), dtype=np.int32)  # which shape (1-based) each pixel shows
    categories: List[int] = []
    full_areas: List[int] = []
    for _ in range(num_objects * 5):  # placement attempts; crowded images end up with fewer shapes
        if len(categories) == num_objects:
            break
        category = int(rng.integers(len(SHAPES)))
        mask = _shape_mask(SHAPES[category], width, height, rng)
        if mask.sum() < 16:
            continue
        # the new shape is drawn on top: every shape below must keep most of its area visible
        visible = np.bincount(owner.ravel(), minlength=len(categories) + 1)[1:]
        hidden = np.bincount(owner[mask], minlength=len(categories) + 1)[1:]
        if np.any(visible - hidden < (1 - _MAX_OCCLUSION) * np.array(full_areas)):
            continue
        categories.append(category + 1)
        full_areas.append(int(mask.sum()))
        owner[mask] = len(categories)
        canvas[mask] = _shape_colour(mask, rng)
    objects = [(c, (owner == i).astype(np.uint8)) for i, c in enumerate(categories, 1)]
    return canvas.clip(0, 255).astype(np.uint8), objects


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A float (height, width, 3) texture: a gradient mixed with stripes, checks or smooth noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    low, high = rng.uniform(40, 215, size=(2, 3))
    angle = rng.uniform(0, np.pi)
    ramp = (x * np.cos(angle) + y * np.sin(angle)) / max(width, height)
    kind = rng.integers(3)
    if kind == 0:
        period = rng.uniform(6, 24)
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.sin(angle) - y * np.cos(angle)) / period)
    elif kind == 1:
        cell = int(rng.integers(6, 20))
        pattern = ((x // cell + y // cell) % 2).astype(np.float32)
    else:
        grid = rng.random((height // 16 + 2, width // 16 + 2)).astype(np.float32)
        pattern = np.asarray(Image.fromarray(grid).resize((width, height), Image.BILINEAR))
    weight = 0.5 * ramp.clip(0, 1) + 0.5 * rng.uniform(0.2, 0.6) * pattern
    texture = low + (high - low) * weight[..., None]
    return texture + rng.normal(0, 6, size=texture.shape)


def _shape_mask(shape: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean (height, width) mask of one shape, 12% to 45% of the shorter side across."""
    radius = rng.uniform(0.06, 0.225) * min(width, height)
    cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
    rotation = rng.uniform(0, 2 * np.pi)
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=1)
    else:
        corners = {"square": 4, "triangle": 3, "star": 10}[shape]
        radii = np.where(np.arange(corners) % 2, 0.45, 1.0) * radius if shape == "star" else np.full(corners, radius)
        angles = rotation + 2 * np.pi * np.arange(corners) / corners
        draw.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for r, a in zip(radii, angles)], fill=1)
    return np.asarray(image, dtype=bool)


def _shape_colour(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The pixels of a shape: a saturated colour with a soft linear shading across it."""
    hue, saturation, value = rng.uniform(0, 6), rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0)
    pure = np.clip(np.abs((hue + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)  # the hue at full saturation
    colour = 255 * value * (1 - saturation * (1 - pure))
    ys, xs = np.nonzero(mask)
    shade = 1 + 0.15 * np.tanh((xs - xs.mean()) / (xs.std() + 1) - (ys - ys.mean()) / (ys.std() + 1))
    return colour[None, :] * shade[:, None] + rng.normal(0, 4, size=(len(xs), 3))
