"""Fine-tuning and evaluation of the detectors on COCO-format data, in the style of torchvision's
``references/detection``: SGD with momentum, linear warmup then a multi-step schedule, horizontal
flips, mixed precision, DDP under torchrun, and COCO evaluation; the run folder, its lock, the
checkpoint (``last.pth``) and the resume policy are those of every training run
(:mod:`epsanet.training.run`), so a resumed fine-tune ends exactly as the uninterrupted one.

A run folder holds ``last.pth`` (after every epoch: model, optimizer, schedule, scaler, random
streams, epoch, model config, categories, the per-epoch log), ``log.jsonl`` (one line per epoch:
losses, learning rate, and the COCO metrics of the epochs evaluated) and ``metrics.json`` (the
last evaluation).

Reached as ``epsanet detect train|eval`` (see :mod:`epsanet.commands.detect`) and through
``train/train_detection.py`` and ``eval/eval_detection.py``.
"""
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from timm.utils import random_seed
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .._utils.errors import InvalidArgumentError, first_line
from .._utils.files import write_json, write_text
from .._utils.paths import require_checkpoint
from ..training.data import create_loader, default_workers, set_loader_epoch
from ..training.distributed import (
    Environment,
    Precision,
    resolve_precision,
    setup_environment,
    teardown_environment,
)
from ..training.run import RunFolder, RunningSums, check_finite_weights, start_run
from .backbone import backbone_for_fine_tuning
from .coco_eval import CocoMetrics, evaluate
from .config import DetectionConfig
from .data import CocoDetection, collate, detection_transforms
from .models import DETECTORS

__all__ = ["train", "evaluate_checkpoint", "train_one_epoch", "build_detector", "load_detector", "write_metrics"]

METRICS = "metrics.json"
LOG = "log.jsonl"
# What to do when the training loss becomes non-finite.
_LOSS_FIX = "lower --lr or raise --warmup-iters"


def build_detector(model_config: Mapping[str, Any], *, pretrained_backbone: bool = True) -> nn.Module:
    """The detector a checkpoint's ``model_config`` describes. Without ``pretrained_backbone``
    the backbone weights are not loaded but the layout is the same (frozen BatchNorm and
    stages, as with weights), to load a checkpoint into."""
    backbone: Any = model_config["backbone"]
    weights = model_config.get("weights_backbone")
    trainable_layers = model_config.get("trainable_backbone_layers")
    if weights and not pretrained_backbone:
        backbone, trainable_layers = backbone_for_fine_tuning(backbone, weights, trainable_layers=trainable_layers,
                                                              load_weights=False)
        weights = None
    return DETECTORS[model_config["detector"]](
        backbone, num_classes=model_config["num_classes"], weights_backbone=weights,
        trainable_backbone_layers=trainable_layers, **model_config.get("kwargs", {}),
    )


def load_detector(path: os.PathLike, map_location: Any = "cpu") -> Tuple[nn.Module, Dict[str, Any]]:
    """A fine-tuned detector and its checkpoint (``model_config``, ``categories``, ``epoch``...)."""
    checkpoint = _read_checkpoint(path, map_location)
    model = build_detector(checkpoint["model_config"], pretrained_backbone=False)
    model.load_state_dict(checkpoint["model"])
    return model, checkpoint


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: Any,
    env: Environment,
    *,
    epoch: int,
    precision: Optional[Precision] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
    log_interval: int = 10,
    progress: bool = False,
) -> Dict[str, float]:
    """One pass over ``loader`` (epoch ``epoch``, from 0), stepping ``scheduler`` every iteration;
    returns the mean of each loss and of their sum (``loss``) over the epoch and the processes.

    The losses are summed on the device and read every ``log_interval`` steps and at the end: a
    loss that is not finite then raises :class:`~epsanet.training.run.NonFiniteError`.
    ``precision`` defaults to float32, ``scaler`` to the one ``precision`` needs.
    """
    precision = precision or Precision(None, env.device.type)
    scaler = scaler or precision.grad_scaler()
    model.train()
    sums = RunningSums(env)
    steps = len(loader)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", disable=not (progress and env.is_main), leave=False)
    for step, (images, targets) in enumerate(bar):
        images = [image.to(env.device, non_blocking=True) for image in images]
        targets = [{k: v.to(env.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
                   for t in targets]
        with precision.autocast():
            losses = model(images, targets)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        sums.add({"loss": loss.detach(), **{name: value.detach() for name, value in losses.items()}, "steps": 1})
        if (step + 1) % log_interval == 0 or step + 1 == steps:
            totals = sums.totals(step, _LOSS_FIX)
            bar.set_postfix(loss=f"{totals['loss'] / totals['steps']:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2g}")
    totals = sums.totals(steps - 1, _LOSS_FIX)
    return {name: value / totals["steps"] for name, value in totals.items() if name != "steps"}


def train(config: DetectionConfig) -> Dict[str, CocoMetrics]:
    """Fine-tune as ``epsanet detect train`` does; returns the last evaluation's metrics.

    Launched by ``torchrun``, every process calls this and the processes train together; the
    first writes the run folder and holds it for the whole run (see
    :func:`~epsanet.training.run.start_run`).
    """
    with start_run(config.output_dir, resume=config.resume, overwrite=config.overwrite, device=config.device,
                   command="epsanet detect train") as folder:
        return _fine_tune(config, folder)


def _fine_tune(config: DetectionConfig, folder: RunFolder) -> Dict[str, CocoMetrics]:
    env = folder.env
    random_seed(config.seed, env.rank)
    precision = resolve_precision(config.amp, env.device)
    train_set = CocoDetection(config.train_images, config.train_ann, masks=config.model == "maskrcnn_fpn",
                              transforms=detection_transforms(train=True, hflip_prob=config.hflip_prob))
    val_set = CocoDetection(config.val_images, config.val_ann, transforms=detection_transforms(train=False))
    model_config = _jsonable({
        "detector": config.model, "backbone": config.backbone, "weights_backbone": config.weights_backbone,
        "trainable_backbone_layers": config.trainable_backbone_layers,
        "num_classes": config.num_classes or train_set.num_classes,
        "kwargs": {"min_size": config.min_size, "max_size": config.max_size, **config.detector_kwargs},
    })
    if model_config["num_classes"] < train_set.num_classes:
        raise InvalidArgumentError(
            f"--num-classes {config.num_classes} is too small: {config.train_ann} has category id "
            f"{train_set.num_classes - 1}, so at least {train_set.num_classes} classes are needed")
    checkpoint = _read_checkpoint(folder.resume_from, "cpu") if folder.resume_from else None
    if checkpoint is not None and "rng" not in checkpoint:
        raise InvalidArgumentError(
            f"{folder.resume_from} was written by an earlier epsanet, without the state a resumed run needs: "
            "evaluate it with `epsanet detect eval`, or start a new run")
    if checkpoint is not None and checkpoint["model_config"] != model_config:
        raise InvalidArgumentError(
            f"checkpoint {folder.resume_from} was trained with another model ({checkpoint['model_config']}): "
            "resume with the same --model, --backbone and sizes")

    model = build_detector(model_config, pretrained_backbone=checkpoint is None).to(env.device)
    if config.sync_bn and env.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    lr = config.lr if config.lr is not None else 0.02 * config.batch_size * env.world_size / 16
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr,
                                momentum=config.momentum, weight_decay=config.weight_decay)
    loaders = {split: create_loader(dataset, config.batch_size, train=split == "train", workers=config.workers,
                                    world_size=env.world_size, rank=env.rank, seed=config.seed,
                                    pin_memory=env.device.type == "cuda", collate_fn=collate)
               for split, dataset in (("train", train_set), ("val", val_set))}
    if len(loaders["train"]) == 0:
        raise InvalidArgumentError(f"{config.train_ann} has fewer images ({len(train_set)}) than one batch per "
                                   f"process ({config.batch_size} x {env.world_size}): lower --batch-size")
    scheduler = _schedule(optimizer, config, len(loaders["train"]))
    scaler = precision.grad_scaler()
    start_epoch, history = 0, []
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        start_epoch, history = checkpoint["epoch"], checkpoint["history"]
        folder.restore_rng(checkpoint, config.seed)
        folder.log(f"resumed {folder.resume_from} after epoch {start_epoch}")
    train_model = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None) \
        if env.distributed else model

    folder.log(f"{config.model} on {config.backbone}: {len(train_set)} training images, {len(val_set)} validation "
               f"images, {env.world_size} process(es) x {config.batch_size} images, lr {lr:g}, {env.device}"
               + (f", AMP {str(precision.dtype).removeprefix('torch.')}" if precision.dtype else ""))
    metrics: Dict[str, CocoMetrics] = {}
    if start_epoch >= config.epochs:
        folder.log(f"{folder.resume_from} already finished its {config.epochs} epochs: raise --epochs to train on")
    for epoch in range(start_epoch, config.epochs):
        set_loader_epoch(loaders["train"], epoch, config.seed, env.rank)
        started = time.perf_counter()
        with folder.stops_on_non_finite(epoch):
            losses = train_one_epoch(train_model, optimizer, scheduler, loaders["train"], env, epoch=epoch,
                                     precision=precision, scaler=scaler, log_interval=config.log_interval,
                                     progress=config.progress)
            check_finite_weights(model, "a numerical bug: try without --amp")
        seconds = time.perf_counter() - started
        row: Dict[str, Any] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                               "seconds": round(seconds, 1), **losses}
        folder.log(f"epoch {epoch + 1}/{config.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
                   + f" ({seconds:.0f} s)")
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            metrics = evaluate(model, loaders["val"], val_set.coco, env.device, amp_dtype=precision.dtype,
                               progress=config.progress)
            row.update({f"{m.iou_type}_{k}": v for m in metrics.values() for k, v in m.metrics.items()})
            if env.is_main:
                _report(metrics)
                write_metrics(metrics, folder.path / METRICS, epoch=epoch + 1)
        history.append(row)
        if env.is_main:  # the whole log, so that a resumed run never repeats the epochs it replays
            write_text(folder.path / LOG, "".join(json.dumps(r) + "\n" for r in history))
        folder.save({
            "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "history": history,
            "model_config": model_config, "categories": train_set.categories,
            "detection_config": config.to_dict(),
        })
    return metrics


def _schedule(optimizer: torch.optim.Optimizer, config: DetectionConfig,
              iterations: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per iteration: linear warmup over --warmup-iters, then x --lr-gamma at each of --lr-steps (epochs)."""
    return torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=config.warmup_factor if config.warmup_iters else 1.0,
                                          total_iters=config.warmup_iters),
        torch.optim.lr_scheduler.MultiStepLR(optimizer, [e * iterations for e in config.lr_steps], config.lr_gamma),
    ])


def evaluate_checkpoint(checkpoint: Union[str, os.PathLike], images: Union[str, os.PathLike],
                        ann: Union[str, os.PathLike], *, batch_size: int = 2, workers: Optional[int] = None,
                        device: str = "auto", amp: Optional[str] = None, progress: bool = True,
                        output: Optional[Union[str, os.PathLike]] = None) -> Dict[str, CocoMetrics]:
    """COCO metrics of a fine-tuned ``checkpoint`` on ``images`` and their annotations ``ann``, as
    ``epsanet detect eval`` prints them; ``output`` also writes them as JSON."""
    model, state = load_detector(checkpoint)
    env = setup_environment(device)
    try:
        dataset = CocoDetection(images, ann, transforms=detection_transforms(train=False))
        loader = create_loader(dataset, batch_size, train=False, world_size=env.world_size, rank=env.rank,
                               workers=default_workers() if workers is None else workers, collate_fn=collate)
        metrics = evaluate(model.to(env.device), loader, dataset.coco, env.device,
                           amp_dtype=resolve_precision(amp, env.device).dtype, progress=progress)
        if env.is_main:
            _report(metrics)
            if output:
                write_metrics(metrics, Path(output), epoch=state["epoch"])
        return metrics
    finally:
        teardown_environment(env)


def write_metrics(metrics: Mapping[str, CocoMetrics], path: Path, **extra: Any) -> None:
    """Write ``{**extra, "bbox": {"AP": ..., ...}, "segm": {...}, "detections": {"bbox": n, ...}}``
    as JSON, atomically."""
    record = {**extra, **{m.iou_type: m.metrics for m in metrics.values()},
              "detections": {m.iou_type: m.detections for m in metrics.values()}}
    write_json(path, record)


def _report(metrics: Mapping[str, CocoMetrics]) -> None:
    for m in metrics.values():
        print(f"COCO {m.iou_type} metrics:\n{m.table}", end="", flush=True)


def _read_checkpoint(path: os.PathLike, map_location: Any) -> Dict[str, Any]:
    path = Path(path)
    require_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        reason = first_line(e)
        raise InvalidArgumentError(
            f"cannot read checkpoint {path} ({reason}): the file is truncated or not a checkpoint") from None
    if not isinstance(checkpoint, dict) or "model_config" not in checkpoint:
        raise InvalidArgumentError(f"{path} is not a checkpoint of `epsanet detect train` (it has no model_config)")
    return checkpoint


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, as it reads back from a checkpoint or JSON."""
    return json.loads(json.dumps(value))
