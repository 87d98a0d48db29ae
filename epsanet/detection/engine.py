"""Fine-tuning and evaluation of the detectors on COCO-format data, in the style of torchvision's
``references/detection``: SGD with momentum, linear warmup then a multi-step schedule, horizontal
flips, AMP (bfloat16 on CPU, float16 or bfloat16 on CUDA), DDP under torchrun, a checkpoint
written atomically after every epoch that ``--resume`` continues from, and COCO evaluation.

Reached as ``epsanet detect train|eval`` (see :mod:`epsanet.commands.detect`) and through
``train/train_detection.py`` and ``eval/eval_detection.py``.
"""
import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.distributed as dist
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from .._utils.device import resolve_device
from .._utils.errors import InvalidArgumentError, RunFailedError, first_line
from .._utils.files import save_checkpoint, write_json
from .._utils.paths import require_checkpoint
from ..models import create_model
from .backbone import DEFAULT_TRAINABLE_LAYERS
from .coco_eval import CocoMetrics, evaluate
from .data import CocoDetection, collate, detection_transforms
from .models import DETECTORS

__all__ = [
    "add_train_arguments", "add_eval_arguments", "train", "evaluate_checkpoint", "train_one_epoch",
    "build_detector", "load_detector", "write_metrics",
]

CHECKPOINT = "checkpoint.pth"
METRICS = "metrics.json"
LOG = "log.jsonl"
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (COCO format: a JSON annotation file and an image folder per split)")
    data.add_argument("--train-images", required=True, help="training image folder")
    data.add_argument("--train-ann", required=True, help="training annotation file (COCO JSON)")
    data.add_argument("--val-images", required=True, help="validation image folder")
    data.add_argument("--val-ann", required=True, help="validation annotation file (COCO JSON)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="fasterrcnn_fpn", choices=sorted(DETECTORS),
                       help="detector (default: %(default)s)")
    model.add_argument("--backbone", default="epsanet50_small", help="zoo model name (default: %(default)s)")
    model.add_argument("--weights-backbone", help="backbone weights: a weights name (e.g. IMAGENET1K_A1), a checkpoint "
                                                  "file or a save_pretrained folder (default: none, from scratch)")
    model.add_argument("--trainable-backbone-layers", type=int,
                       help="backbone stages to train, 0-5 (default: 3 with weights, 5 without)")
    model.add_argument("--num-classes", type=int,
                       help="classes including background (default: largest category id + 1)")
    model.add_argument("--min-size", type=int, nargs="+", default=[800],
                       help="shorter image side; with several, training picks one at random per batch and evaluation "
                            "uses the last (default: 800)")
    model.add_argument("--max-size", type=int, default=1333, help="longest image side (default: %(default)s)")
    model.add_argument("--detector-kwargs", type=_json_object, default={},
                       help='more torchvision detector arguments as JSON, e.g. \'{"box_batch_size_per_image": 128}\'')
    optim = parser.add_argument_group("schedule (torchvision references: 26 epochs, steps at 16 and 22)")
    optim.add_argument("--epochs", type=int, default=26, help="default: %(default)s")
    optim.add_argument("--batch-size", type=int, default=2, help="images per process (default: %(default)s)")
    optim.add_argument("--lr", type=float,
                       help="learning rate (default: 0.02 x total batch / 16, the references' 0.02 for 16 images)")
    optim.add_argument("--momentum", type=float, default=0.9, help="default: %(default)s")
    optim.add_argument("--weight-decay", type=float, default=1e-4, help="default: %(default)s")
    optim.add_argument("--lr-steps", type=int, nargs="*", default=[16, 22],
                       help="epochs at which the learning rate drops (default: 16 22)")
    optim.add_argument("--lr-gamma", type=float, default=0.1, help="drop factor (default: %(default)s)")
    optim.add_argument("--warmup-iters", type=int, default=1000, help="linear warmup iterations (default: %(default)s)")
    optim.add_argument("--warmup-factor", type=float, default=0.001, help="warmup start factor (default: %(default)s)")
    optim.add_argument("--hflip-prob", type=float, default=0.5,
                       help="horizontal flip probability (default: %(default)s)")
    run = parser.add_argument_group("run")
    run.add_argument("--output-dir", default="runs/detection",
                     help="checkpoint, metrics and log (default: %(default)s)")
    run.add_argument("--resume", help="checkpoint to continue from (e.g. OUTPUT_DIR/checkpoint.pth)")
    run.add_argument("--eval-every", type=int, default=1,
                     help="evaluate every N epochs, and always after the last (default: %(default)s)")
    run.add_argument("--sync-bn", action="store_true", help="synchronise BatchNorm statistics across processes")
    run.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    _add_runtime_arguments(run)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint written by `epsanet detect train`")
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument("--ann", required=True, help="annotation file (COCO JSON)")
    parser.add_argument("--output", help="also write the metrics to this JSON file")
    parser.add_argument("--batch-size", type=int, default=2, help="images per process (default: %(default)s)")
    _add_runtime_arguments(parser)


def _add_runtime_arguments(parser: Any) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available; torchrun: one GPU "
                                         "per process)")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--amp-dtype", choices=sorted(AMP_DTYPES),
                        help="AMP precision (default: bfloat16 on CPU, float16 on CUDA)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="data loading processes per training process (default: %(default)s)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def build_detector(model_config: Mapping[str, Any], *, pretrained_backbone: bool = True) -> nn.Module:
    """The detector a checkpoint's ``model_config`` describes. Without ``pretrained_backbone``
    the backbone weights are not loaded but the layout is the same (frozen BatchNorm and
    stages, as with weights), to load a checkpoint into."""
    backbone: Any = model_config["backbone"]
    weights = model_config.get("weights_backbone")
    trainable_layers = model_config.get("trainable_backbone_layers")
    if weights and not pretrained_backbone:
        backbone = freeze_batch_norm_2d(create_model(backbone))
        weights = None
        trainable_layers = DEFAULT_TRAINABLE_LAYERS if trainable_layers is None else trainable_layers
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
    loader: DataLoader,
    device: torch.device,
    *,
    epoch: int,
    scaler: Optional[torch.amp.GradScaler] = None,
    amp_dtype: Optional[torch.dtype] = None,
    progress: bool = False,
) -> Dict[str, float]:
    """One pass over ``loader``, stepping ``scheduler`` every iteration; returns the mean of each
    loss and of their sum (``loss``) over the epoch, averaged across processes."""
    model.train()
    totals: Dict[str, torch.Tensor] = {}
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not (progress and _is_main()), leave=False)
    for iteration, (images, targets) in enumerate(bar):
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
                   for t in targets]
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            losses = model(images, targets)
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            raise RunFailedError(
                f"the loss is {loss.item()} at epoch {epoch}, iteration {iteration} "
                f"({', '.join(f'{k} {v.item():.4g}' for k, v in losses.items())}): lower --lr or raise --warmup-iters"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        for name, value in {"loss": loss, **losses}.items():
            totals[name] = totals.get(name, 0) + value.detach().float()
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2g}")
    count = torch.tensor(float(len(loader)), device=device)
    names = sorted(totals)
    summed = torch.stack([totals[n] for n in names] + [count])
    if dist.is_initialized():
        dist.all_reduce(summed)
    return {name: (value / summed[-1]).item() for name, value in zip(names, summed[:-1])}


def train(args: argparse.Namespace) -> Dict[str, CocoMetrics]:
    """Fine-tune as ``epsanet detect train`` does; returns the last evaluation's metrics."""
    device = _setup_device(args.device)
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    torch.manual_seed(args.seed + rank)
    amp_dtype = _amp_dtype(args, device)
    output_dir = Path(args.output_dir)
    if _is_main():
        output_dir.mkdir(parents=True, exist_ok=True)

    masks = args.model == "maskrcnn_fpn"
    train_set = CocoDetection(args.train_images, args.train_ann, masks=masks,
                              transforms=detection_transforms(train=True, hflip_prob=args.hflip_prob))
    val_set = CocoDetection(args.val_images, args.val_ann, transforms=detection_transforms(train=False))
    model_config = _jsonable({
        "detector": args.model, "backbone": args.backbone, "weights_backbone": args.weights_backbone,
        "trainable_backbone_layers": args.trainable_backbone_layers,
        "num_classes": args.num_classes or train_set.num_classes,
        "kwargs": {"min_size": args.min_size, "max_size": args.max_size, **args.detector_kwargs},
    })
    if model_config["num_classes"] < train_set.num_classes:
        raise InvalidArgumentError(f"--num-classes {args.num_classes} is too small: {args.train_ann} has category id "
                                   f"{train_set.num_classes - 1}, so at least {train_set.num_classes} classes are "
                                   "needed")
    checkpoint = _read_checkpoint(args.resume, "cpu") if args.resume else None
    if checkpoint is not None and checkpoint["model_config"] != model_config:
        raise InvalidArgumentError(f"checkpoint {args.resume} was trained with another model "
                                   f"({checkpoint['model_config']}): resume with the same --model, --backbone and "
                                   "sizes")

    model = build_detector(model_config, pretrained_backbone=checkpoint is None).to(device)
    if args.sync_bn and world_size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = args.lr if args.lr is not None else 0.02 * args.batch_size * world_size / 16
    optimizer = torch.optim.SGD(params, lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    train_loader = _loader(train_set, args.batch_size, args.workers, train=True, seed=args.seed)
    val_loader = _loader(val_set, args.batch_size, args.workers, train=False)
    iterations = len(train_loader)
    if iterations == 0:
        raise InvalidArgumentError(f"{args.train_ann} has fewer images ({len(train_set)}) than one batch per process "
                                   f"({args.batch_size} x {world_size}): lower --batch-size")
    scheduler = _schedule(optimizer, args, iterations)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    start_epoch = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["lr_scheduler"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        start_epoch = checkpoint["epoch"] + 1
    model_without_ddp = model
    if world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    _log(f"{args.model} on {args.backbone}: {len(train_set)} training images, {len(val_set)} validation images, "
         f"{world_size} process(es) x {args.batch_size} images, lr {lr:g}, {device}"
         + (f", AMP {str(amp_dtype).replace('torch.', '')}" if amp_dtype else ""))
    metrics: Dict[str, CocoMetrics] = {}
    if start_epoch >= args.epochs:
        _log(f"{args.resume} already finished its {args.epochs} epochs: raise --epochs to train on")
    for epoch in range(start_epoch, args.epochs):
        train_loader.sampler.set_epoch(epoch)
        started = time.perf_counter()
        losses = train_one_epoch(model, optimizer, scheduler, train_loader, device, epoch=epoch, scaler=scaler,
                                 amp_dtype=amp_dtype, progress=args.progress)
        seconds = time.perf_counter() - started
        record: Dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "seconds": round(seconds, 1),
                                  **losses}
        _log(f"epoch {epoch + 1}/{args.epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
             + f" ({seconds:.0f} s)")
        if _is_main():
            save_checkpoint({
                "model": model_without_ddp.state_dict(), "optimizer": optimizer.state_dict(),
                "lr_scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "epoch": epoch, "model_config": model_config, "categories": train_set.categories,
                "args": _jsonable(vars(args)),
            }, output_dir / CHECKPOINT)
        if (epoch + 1) % max(args.eval_every, 1) == 0 or epoch + 1 == args.epochs:
            metrics = evaluate(model_without_ddp, val_loader, val_set.coco, device, amp_dtype=amp_dtype,
                               progress=args.progress)
            record.update({f"{m.iou_type}_{k}": v for m in metrics.values() for k, v in m.metrics.items()})
            if _is_main():
                _report(metrics)
                write_metrics(metrics, output_dir / METRICS, epoch=epoch)
        if _is_main():
            with open(output_dir / LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
    return metrics


def _schedule(optimizer: torch.optim.Optimizer, args: argparse.Namespace,
              iterations: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per iteration: linear warmup over --warmup-iters, then x --lr-gamma at each of --lr-steps (epochs)."""
    return torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=args.warmup_factor if args.warmup_iters else 1.0,
                                          total_iters=args.warmup_iters),
        torch.optim.lr_scheduler.MultiStepLR(optimizer, [e * iterations for e in args.lr_steps], args.lr_gamma),
    ])


def evaluate_checkpoint(args: argparse.Namespace) -> Dict[str, CocoMetrics]:
    """Evaluate a fine-tuned checkpoint as ``epsanet detect eval`` does; returns the metrics."""
    device = _setup_device(args.device)
    model, checkpoint = load_detector(args.checkpoint)
    model.to(device)
    dataset = CocoDetection(args.images, args.ann, transforms=detection_transforms(train=False))
    loader = _loader(dataset, args.batch_size, args.workers, train=False)
    metrics = evaluate(model, loader, dataset.coco, device, amp_dtype=_amp_dtype(args, device),
                       progress=args.progress)
    if _is_main():
        _report(metrics)
        if args.output:
            write_metrics(metrics, Path(args.output), epoch=checkpoint["epoch"])
    return metrics


def write_metrics(metrics: Mapping[str, CocoMetrics], path: Path, **extra: Any) -> None:
    """Write ``{**extra, "bbox": {"AP": ..., ...}, "segm": {...}, "detections": {"bbox": n, ...}}``
    as JSON, atomically."""
    record = {**extra, **{m.iou_type: m.metrics for m in metrics.values()},
              "detections": {m.iou_type: m.detections for m in metrics.values()}}
    write_json(path, record)


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of keyword arguments, got {text!r}")
    return value


def _report(metrics: Mapping[str, CocoMetrics]) -> None:
    for m in metrics.values():
        print(f"COCO {m.iou_type} metrics:\n{m.table}", end="", flush=True)


def _log(message: str) -> None:
    if _is_main():
        print(message, flush=True)


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _setup_device(requested: Optional[str]) -> torch.device:
    """The device of this process; under torchrun (WORLD_SIZE > 1) also joins the process group
    (NCCL with one GPU per process, else Gloo)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(requested)
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _amp_dtype(args: argparse.Namespace, device: torch.device) -> Optional[torch.dtype]:
    if not args.amp:
        if args.amp_dtype:
            raise InvalidArgumentError("--amp-dtype needs --amp")
        return None
    return AMP_DTYPES[args.amp_dtype] if args.amp_dtype else (torch.bfloat16 if device.type == "cpu" else torch.float16)


def _loader(dataset: CocoDetection, batch_size: int, workers: int, *, train: bool, seed: int = 0) -> DataLoader:
    """Training: full batches in an order drawn from (seed, epoch), each process taking its share
    (call ``sampler.set_epoch``). Evaluation: every image once, process k taking every k-th."""
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    sampler = None
    if train:
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                     drop_last=True)
    elif world_size > 1:
        dataset = Subset(dataset, range(rank, len(dataset), world_size))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=train, num_workers=workers,
                      collate_fn=collate, persistent_workers=workers > 0)


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
