"""Datasets and loaders for training and evaluation.

Two sources: scikit-learn's bundled handwritten digits (``"digits"``: 1,797 real 8x8 images of 10
classes, no download) and image folders in the ImageNet layout (``ROOT/train/<class>/*``,
``ROOT/val/<class>/*``) read by torchvision's :class:`~torchvision.datasets.ImageFolder`.

An image that cannot be read does not crash a loader worker with a deep traceback: it travels
through the loader as an :class:`Unreadable` item, and :func:`check_unreadable` turns it into a
one-line :class:`UnreadableImageError` naming the file, or counts it when skipping is asked for.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate
from torchvision.datasets import ImageFolder

from .._utils.errors import EpsanetError, InvalidArgumentError, PathNotFoundError, first_line
from .._utils.optional import require
from .._utils.paths import Kind, WrongKindError, require_folder

__all__ = [
    "DIGITS", "Unreadable", "UnreadableImageError", "DigitsDataset", "ImageFolderDataset", "build_dataset",
    "check_unreadable", "create_loader", "set_loader_epoch", "epoch_seed", "default_workers", "SPLIT_NAMES",
]

DIGITS = "digits"
# Folder names that hold a split of a dataset, never a class.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing", "eval", "dev")
# The 8x8 digits are upscaled once to this size; the transforms then resize to the model's input.
DIGITS_IMAGE_SIZE = 64
DIGITS_VAL_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0

Transform = Optional[Callable[[Image.Image], Any]]


@dataclass(frozen=True)
class Unreadable:
    """Stands in for an image that could not be read: the file and the reason."""

    path: str
    reason: str


class UnreadableImageError(EpsanetError, ValueError):
    """An image file is corrupt, truncated or not an image."""


class DigitsDataset(Dataset):
    """scikit-learn's handwritten digits (UCI ML hand-written digits, 1,797 images, classes 0-9)
    as RGB PIL images upscaled from 8x8 to 64x64 pixels.

    ``split`` is ``"train"`` (1,437 images) or ``"val"`` (360): a stratified 80/20 split with a
    fixed seed, the same on every machine.
    """

    classes = [str(digit) for digit in range(10)]

    def __init__(self, split: str = "train", transform: Transform = None) -> None:
        load_digits = require("sklearn.datasets", "train", "the digits dataset").load_digits
        train_test_split = require("sklearn.model_selection", "train", "the digits dataset").train_test_split
        if split not in ("train", "val"):
            raise InvalidArgumentError(f"the digits dataset has splits 'train' and 'val', not {split!r}")
        digits = load_digits()
        train_idx, val_idx = train_test_split(
            np.arange(len(digits.target)), test_size=DIGITS_VAL_FRACTION, stratify=digits.target,
            random_state=DIGITS_SPLIT_SEED,
        )
        indices = train_idx if split == "train" else val_idx
        pixels = np.round(digits.images[indices] * (255 / 16)).astype(np.uint8)  # values are 0..16
        size = (DIGITS_IMAGE_SIZE, DIGITS_IMAGE_SIZE)
        self.images = [Image.fromarray(p).resize(size, Image.BICUBIC).convert("RGB") for p in pixels]
        self.targets = digits.target[indices].tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), self.targets[index]


class ImageFolderDataset(ImageFolder):
    """torchvision's ImageFolder that returns an :class:`Unreadable` item for a file it cannot
    decode (corrupt, truncated, not an image) instead of raising inside a loader worker."""

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        path, target = self.samples[index]
        try:
            image = self.loader(path)  # decodes the whole file: truncation is caught here
        except Exception as e:  # PIL raises OSError, ValueError, SyntaxError... depending on the format
            return Unreadable(path, first_line(e)), target
        return (self.transform(image) if self.transform else image), target


def build_dataset(data: Union[str, os.PathLike], split: str, transform: Transform = None,
                  require_split: bool = True) -> Dataset:
    """The ``split`` of ``data``: ``"digits"``, or an image folder ``data/split/<class>/*``.

    With ``require_split=False`` a folder without a ``split`` subfolder is itself the image folder
    (to evaluate on any ``ROOT/<class>/*``), unless it has other split folders (``train/``,
    ``val/``, ...): their names are never taken for classes. Every dataset has a ``classes`` list.
    """
    if str(data) == DIGITS:
        return DigitsDataset(split, transform)
    root = Path(data)
    layout = "ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg"
    info = require_folder(root, "data folder", f"pass 'digits' or an image folder laid out as {layout}")
    folder = root / split
    if not folder.is_dir():
        splits = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in SPLIT_NAMES)
        if require_split or splits:
            has = f" (it has {', '.join(s + '/' for s in splits)})" if splits else ""
            choose = f"choose --split {' or '.join(splits)}, or " if splits else ""
            raise PathNotFoundError(f"{root} has no {split}/ folder{has}: {choose}lay it out as "
                                    f"ROOT/{split}/<class>/*.jpg")
        if info.kind is not Kind.FOLDER:
            raise WrongKindError(f"data folder {root} is {info.description}, not an image folder: pass "
                                 f"an image folder laid out as {layout}")
        folder = root
    try:
        return ImageFolderDataset(str(folder), transform=transform)
    except FileNotFoundError as e:  # torchvision: no class folder, or a class folder without images
        raise PathNotFoundError(f"{folder} is not an image folder ({e}): put each class's images in "
                                f"{folder}/<class>/") from None


def collate_readable(batch: Sequence[Tuple[Any, int]]) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor],
                                                                 List[Unreadable]]:
    """``default_collate`` of the readable items, and the list of unreadable ones."""
    readable = [item for item in batch if not isinstance(item[0], Unreadable)]
    unreadable = [item[0] for item in batch if isinstance(item[0], Unreadable)]
    images, targets = default_collate(readable) if readable else (None, None)
    return images, targets, unreadable


def check_unreadable(unreadable: Sequence[Unreadable], skip: bool) -> int:
    """Raise :class:`UnreadableImageError` for the first unreadable image, or, with ``skip``,
    return how many there are."""
    if unreadable and not skip:
        first = unreadable[0]
        raise UnreadableImageError(
            f"cannot read image {first.path} ({first.reason}): replace or delete the file, "
            "or skip unreadable images with --skip-corrupt"
        )
    return len(unreadable)


def default_workers(processes_per_machine: Optional[int] = None, cap: int = 8) -> int:
    """Data loading processes per training process: the CPUs this process may run on (its
    affinity, as the DataLoader counts them) shared by the processes on this machine
    (``LOCAL_WORLD_SIZE`` under torchrun), at most ``cap``."""
    if processes_per_machine is None:
        processes_per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(cap, cpus // max(1, processes_per_machine)))


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A 63-bit seed that depends only on (seed, epoch, rank)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def create_loader(dataset: Dataset, batch_size: int, *, train: bool, workers: int, world_size: int = 1,
                  rank: int = 0, seed: int = 0, pin_memory: bool = False,
                  collate_fn: Callable = collate_readable) -> DataLoader:
    """A loader over this process's share of ``dataset``, its batches made by ``collate_fn``
    (by default ``(images, targets, unreadable)``, see :func:`collate_readable`).

    Training shuffles with :class:`DistributedSampler` (order = f(seed, epoch)) and drops the last
    incomplete batch; call :func:`set_loader_epoch` before each epoch. Evaluation keeps every
    sample exactly once across processes.
    """
    if train:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    else:  # every world_size-th sample from rank: each one once (DistributedSampler pads with repeats)
        sampler = range(rank, len(dataset), world_size)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate_fn,
        pin_memory=pin_memory, drop_last=train, generator=torch.Generator(),
    )


def set_loader_epoch(loader: DataLoader, epoch: int, seed: int, rank: int) -> None:
    """Make the epoch's sample order and the worker processes' random streams depend only on
    (seed, epoch, rank), so that a resumed run replays an epoch exactly."""
    loader.sampler.set_epoch(epoch)
    loader.generator.manual_seed(epoch_seed(seed, epoch, rank))
