"""Evaluation: top-1/top-5, loss, per-class accuracy and confusion matrix, summed over every
process; the ``epsanet eval`` job (any model source, its own preprocessing, results as JSON)."""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .._utils.errors import InvalidArgumentError
from .._utils.files import write_json
from .._utils.paths import require_output_folder
from ..hub.sources import load_model, require_weights, source_info
from .data import build_dataset, check_unreadable, create_loader, default_workers
from .distributed import (
    Environment,
    Precision,
    all_reduce_sum,
    resolve_precision,
    setup_environment,
    teardown_environment,
)
from .reporting import plot_confusion_matrix, require_reporting

__all__ = ["EvalResult", "evaluate", "evaluate_model", "MAX_CLASSES_PER_CLASS_REPORT"]

# Per-class accuracy and the confusion matrix are reported up to this many classes.
MAX_CLASSES_PER_CLASS_REPORT = 100


@dataclass
class EvalResult:
    """Accuracies in percent over ``images`` evaluated images (``skipped`` unreadable ones left out)."""

    top1: float
    top5: float
    loss: float
    images: int
    skipped: int
    seconds: float
    confusion: Optional[torch.Tensor]  # [true class, predicted class] counts, or None beyond 100 classes

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def per_class_accuracy(self, class_names: Sequence[str]) -> Dict[str, float]:
        """Top-1 accuracy (%) of each class with at least one image."""
        if self.confusion is None:
            return {}
        totals = self.confusion.sum(dim=1)
        return {name: round(100.0 * self.confusion[i, i].item() / totals[i].item(), 4)
                for i, name in enumerate(class_names) if totals[i] > 0}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, env: Environment, precision: Precision, num_classes: int,
             channels_last: bool = False, skip_corrupt: bool = False, desc: str = "eval") -> EvalResult:
    """Evaluate ``model`` on this process's share of ``loader`` and sum the counts over processes."""
    model.eval()
    device = env.device
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1 hits, top-5 hits, images
    keep_confusion = num_classes <= MAX_CLASSES_PER_CLASS_REPORT
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device) if keep_confusion else None
    skipped = 0
    k = min(5, num_classes)
    start = time.perf_counter()
    for images, targets, unreadable in tqdm(loader, desc=desc, unit="batch", leave=False,
                                            disable=not env.is_main or None):
        skipped += check_unreadable(unreadable, skip_corrupt)
        if images is None:
            continue
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with precision.autocast():
            logits = model(images)
        logits = logits.float()
        top = logits.topk(k, dim=1).indices
        hits = top.eq(targets[:, None])
        totals += torch.stack([F.cross_entropy(logits, targets, reduction="sum").double(), hits[:, 0].sum().double(),
                               hits.sum().double(), torch.tensor(len(targets), dtype=torch.float64, device=device)])
        if confusion is not None:
            confusion += torch.bincount(targets * num_classes + top[:, 0], minlength=num_classes * num_classes)
    counts = torch.cat([totals, torch.tensor([skipped], dtype=torch.float64, device=device)])
    all_reduce_sum(counts, env)
    if confusion is not None:
        all_reduce_sum(confusion, env)
        confusion = confusion.view(num_classes, num_classes).cpu()
    loss_sum, top1, top5, n, skipped_total = counts.tolist()
    if n == 0:
        raise InvalidArgumentError("no image could be evaluated: every image of the split is unreadable")
    return EvalResult(top1=100.0 * top1 / n, top5=100.0 * top5 / n, loss=loss_sum / n, images=int(n),
                      skipped=int(skipped_total), seconds=time.perf_counter() - start, confusion=confusion)


def evaluate_model(model: str, data: str = "digits", *, pretrained: Optional[str] = None,
                   checkpoint: Optional[str] = None, split: str = "val", batch_size: int = 64,
                   workers: Optional[int] = None,
                   device: str = "auto", amp: Optional[str] = None, channels_last: bool = False,
                   skip_corrupt: bool = False, output_dir: Optional[str] = None,
                   loaded_model: Optional[nn.Module] = None) -> Dict[str, Any]:
    """Evaluate a model on ``data``'s ``split`` with the preprocessing of its pretrained cfg.

    ``model`` is a zoo name (with a catalogue tag ``pretrained`` or the weights in
    ``checkpoint``), a hub folder, an ``hf-hub:`` id or an ``epsanet train`` checkpoint; or
    ``loaded_model`` is the model itself and ``model`` only names it in the results. Returns the
    results (top-1/top-5, loss, per-class accuracy, images/s); with ``output_dir``, also writes
    ``results.json`` and, for up to 100 classes, ``confusion_matrix.png`` there.
    """
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise InvalidArgumentError(f"--workers must be 0 or more, got {workers}")
    if batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be at least 1, got {batch_size}")
    if output_dir is not None:
        require_output_folder(output_dir, "--output-dir")
        require_reporting(training=False)
    dataset = build_dataset(data, split, require_split=False)  # before the model: a wrong path is found at once
    env = setup_environment(device)
    try:
        if loaded_model is None:
            require_weights(model, pretrained, checkpoint, "evaluates random weights",
                            "--pretrained TAG (see `epsanet weights`) or --checkpoint FILE, or a trained model as "
                            "--model (a hub folder, a training run folder or hf-hub:ORG/NAME)")
        net = loaded_model if loaded_model is not None else load_model(model, pretrained, checkpoint)
        info = source_info(net)
        dataset.transform = info.transform()
        if net.num_classes != len(dataset.classes):
            raise InvalidArgumentError(f"{model} predicts {net.num_classes} classes but {data} ({split}) has "
                                       f"{len(dataset.classes)}: evaluate it on data with the classes it was trained "
                                       "on")
        label_names = net.pretrained_cfg.get("label_names")
        if label_names and list(label_names) != list(dataset.classes):
            raise InvalidArgumentError(f"{model} was trained on classes {list(label_names)[:5]}... but {data} has "
                                       f"{dataset.classes[:5]}...: the class folders must be the ones it was trained "
                                       "on")
        precision = resolve_precision(amp, env.device)
        net = net.to(env.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        loader = create_loader(dataset, batch_size, train=False, workers=workers, world_size=env.world_size,
                               rank=env.rank, pin_memory=env.device.type == "cuda")
        result = evaluate(net, loader, env, precision, len(dataset.classes), channels_last, skip_corrupt)
        report = {
            "model": model, "pretrained": pretrained, "checkpoint": checkpoint, "data": data, "split": split,
            "top1": round(result.top1, 4), "top5": round(result.top5, 4), "loss": round(result.loss, 6),
            "images": result.images, "skipped_images": result.skipped,
            "images_per_second": round(result.images_per_second, 2), "processes": env.world_size,
            "device": str(env.device), "amp": amp,
            "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in info.data_config.items()},
            "per_class_top1": result.per_class_accuracy(dataset.classes),
        }
        if output_dir is not None and env.is_main:
            out = Path(output_dir)
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "results.json", report)
            if result.confusion is not None:
                plot_confusion_matrix(result.confusion, dataset.classes, out / "confusion_matrix.png",
                                      title=f"{Path(str(model)).name}: top-1 {result.top1:.2f}%")
        return report
    finally:
        teardown_environment(env)
