"""The training loop: one process or many (torchrun), CPU or GPU, with the run folder it keeps.

A run folder holds ``run_config.json`` (the resolved configuration), ``last.pth`` (checkpoint of
the last finished epoch, rewritten atomically every epoch), ``best/`` (the best model so far as a
hub folder: ``config.json`` + ``model.safetensors``), ``metrics.json`` / ``metrics.csv`` /
``tensorboard/`` (per epoch, validation top-1 under ``val_top1``), ``curves.png`` and
``summary.json`` at the end; with ``--explain-every N``, ``explain/epoch_<N>.png`` (Grad-CAM of a
fixed set of validation images).
"""
import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from timm.data import Mixup, create_transform, resolve_data_config
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3, distribute_bn, random_seed
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .._utils.errors import InvalidArgumentError
from .._utils.files import write_json
from ..hub.pretrained import save_pretrained
from ..hub.sources import create_model_for_training, record_preprocessing
from ..weights.checkpoint import load_training_checkpoint
from .config import TrainConfig, lr_for
from .data import build_dataset, check_unreadable, create_loader, set_loader_epoch
from .distributed import all_reduce_sum, resolve_precision
from .evaluation import EvalResult, evaluate
from .reporting import MetricsLog, plot_curves, require_reporting
from .run import RunFolder, RunningSums, check_finite_weights, start_run

__all__ = ["train", "TrainResult", "build_transforms", "build_optimizer", "build_scheduler",
           "build_criterion"]

BEST = "best"
# Configuration entries that may change when resuming without changing the result.
_RESUME_FREE = {"resume", "overwrite", "output_dir", "device", "workers", "log_interval", "compile", "skip_corrupt",
                "explain_every"}
# Validation images whose Grad-CAM grid --explain-every saves.
EXPLAIN_IMAGES = 8
# What to do when the training loss becomes non-finite.
_LOSS_FIX = "lower --lr, add --clip-grad, or turn off --amp fp16"


@dataclass
class TrainResult:
    """A finished run: the trained model (unwrapped, on its device), the best validation top-1
    and where the run folder and the exported best model are."""

    model: nn.Module
    output_dir: Path
    best_dir: Path
    best_top1: float
    best_epoch: int
    history: List[Dict[str, Any]] = field(default_factory=list)


def train(config: TrainConfig) -> TrainResult:
    """Train ``config.model`` as ``config`` says (see :func:`~epsanet.training.resolve_config`).

    Launched by ``torchrun``, every process calls this and the processes train together (data
    split by :class:`~torch.utils.data.DistributedSampler`, gradients averaged by DDP, metrics
    summed); the first process writes the run folder and holds it for the whole run (see
    :func:`~epsanet.training.run.start_run`).
    """
    with start_run(config.output_dir, resume=config.resume, overwrite=config.overwrite, device=config.device,
                   command="epsanet train") as folder:
        return _Run(config, folder).train()


def build_transforms(config: TrainConfig, data_config: Dict[str, Any]) -> Tuple[Callable, Callable]:
    """timm's training transform (RandomResizedCrop, flip, optional colour jitter, auto-augment,
    random erasing) and the evaluation transform of ``data_config`` (resize, centre crop)."""
    train_transform = create_transform(
        config.img_size, is_training=True, scale=config.scale, hflip=config.hflip, color_jitter=config.color_jitter,
        auto_augment=config.auto_augment, interpolation=config.interpolation, mean=data_config["mean"],
        std=data_config["std"], re_prob=config.reprob)
    return train_transform, create_transform(**data_config)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """timm's optimizer ``config.opt`` at the peak learning rate; norm and bias parameters get
    no weight decay unless ``config.decay_norm_and_bias``."""
    return create_optimizer_v2(model, opt=config.opt, lr=lr_for(config), weight_decay=config.weight_decay,
                               momentum=config.momentum, filter_bias_and_bn=not config.decay_norm_and_bias)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                    updates_per_epoch: int) -> Tuple[Scheduler, int]:
    """timm's scheduler ``config.sched`` and the number of epochs to train."""
    return create_scheduler_v2(
        optimizer, sched=config.sched, num_epochs=config.epochs, decay_epochs=config.decay_epochs,
        decay_rate=config.decay_rate, min_lr=config.min_lr, warmup_lr=config.warmup_lr,
        warmup_epochs=config.warmup_epochs, step_on_epochs=not config.sched_on_updates,
        updates_per_epoch=updates_per_epoch)


def build_criterion(config: TrainConfig, num_classes: int) -> Tuple[nn.Module, Optional[Mixup]]:
    """The training loss and timm's Mixup/CutMix (None when off). With mixing, Mixup smooths the
    labels and the loss takes soft targets; otherwise label smoothing is in the loss."""
    if config.mixup > 0 or config.cutmix > 0:
        mixup = Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix, label_smoothing=config.smoothing,
                      num_classes=num_classes)
        return SoftTargetCrossEntropy(), mixup
    if config.smoothing > 0:
        return LabelSmoothingCrossEntropy(config.smoothing), None
    return nn.CrossEntropyLoss(), None


class _Run:
    def __init__(self, config: TrainConfig, folder: RunFolder) -> None:
        self.config = config
        self.folder = folder
        self.env = env = folder.env
        self.out = folder.path
        if env.is_main:
            require_reporting(training=True)
        if config.world_size != env.world_size:
            raise InvalidArgumentError(f"the configuration was resolved for {config.world_size} processes but "
                                       f"{env.world_size} are running: resolve it with world_size={env.world_size}")
        random_seed(config.seed, env.rank)
        self.precision = resolve_precision(config.amp, env.device)

        train_set = build_dataset(config.data, "train")
        self.classes = list(train_set.classes)
        self.model = create_model_for_training(
            config.model, len(self.classes), config.pretrained, drop_path_rate=config.drop_path,
            **config.model_kwargs)
        self.preprocessing = record_preprocessing(
            self.model, config.img_size, config.crop_pct, config.interpolation, self.classes)
        train_set.transform, eval_transform = build_transforms(config, resolve_data_config(model=self.model))
        val_set = build_dataset(config.data, "val", eval_transform)
        self.explain_images = self._explain_images(config) if config.explain_every and env.is_main else []
        if list(val_set.classes) != self.classes:
            only_train = sorted(set(self.classes) - set(val_set.classes))[:3]
            only_val = sorted(set(val_set.classes) - set(self.classes))[:3]
            raise InvalidArgumentError(f"{config.data}: the train/ and val/ folders have different classes (only in "
                                       f"train/: {', '.join(only_train) or '-'}; only in val/: "
                                       f"{', '.join(only_val) or '-'}): give both the same class folders")

        pin = env.device.type == "cuda"
        self.train_loader = create_loader(train_set, config.batch_size, train=True, workers=config.workers,
                                          world_size=env.world_size, rank=env.rank, seed=config.seed,
                                          pin_memory=pin)
        self.val_loader = create_loader(val_set, config.batch_size, train=False, workers=config.workers,
                                        world_size=env.world_size, rank=env.rank, pin_memory=pin)
        if len(self.train_loader) == 0:
            raise InvalidArgumentError(f"the training set ({len(train_set)} images) is smaller than one batch of "
                                       f"{config.batch_size} per process x {env.world_size} processes: lower "
                                       "--batch-size")

        model = self.model.to(env.device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if config.grad_checkpointing:
            model.set_grad_checkpointing(True)
        if config.sync_bn and env.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.lr = lr_for(config)
        self.optimizer = build_optimizer(model, config)
        self.scaler = self.precision.grad_scaler()
        self.ema = ModelEmaV3(model, decay=config.model_ema_decay) if config.model_ema else None
        self.updates_per_epoch = math.ceil(len(self.train_loader) / config.grad_accum_steps)
        self.scheduler, self.num_epochs = build_scheduler(self.optimizer, config, self.updates_per_epoch)
        self.criterion, self.mixup = build_criterion(config, len(self.classes))

        self.start_epoch, self.history, self.best = 0, [], {"val_top1": -1.0, "epoch": 0, "weights": "model"}
        if folder.resume_from is not None:
            self._resume(folder.resume_from)

        self.train_model = DistributedDataParallel(model, device_ids=[env.device.index] if pin else None) \
            if env.distributed else model
        if config.compile:
            self.train_model = torch.compile(self.train_model)

    # -- run folder ---------------------------------------------------------------------------

    def _resume(self, path: Path) -> None:
        state = load_training_checkpoint(path)
        current = self.config.to_dict()
        changed = {k: (v, current[k]) for k, v in state["config"].items()
                   if k in current and k not in _RESUME_FREE and current[k] != v}
        if changed:
            self._log(f"resuming {path} with changed options: "
                      + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()))
        self.model.load_state_dict(state["model"])
        # The optimizer's moments come from the checkpoint, its hyperparameters from the
        # configuration; timm's schedulers are functions of the epoch or step built from the
        # configuration too, so options changed on resume (--lr, --epochs...) take effect.
        hyperparameters = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, values in zip(self.optimizer.param_groups, hyperparameters):
            group.update(values)
        self.scheduler.step(state["epoch"])
        self.scheduler.step_update(state["epoch"] * self.updates_per_epoch)
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["model_ema"] is not None:
            self.ema.load_state_dict(state["model_ema"])
        self.start_epoch, self.history, self.best = state["epoch"], state["history"], state["best"]
        self.folder.restore_rng(state, self.config.seed)
        self._log(f"resumed {path} after epoch {self.start_epoch}")

    def _save(self, epoch: int) -> None:
        self.folder.save({
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "model_ema": self.ema.state_dict() if self.ema is not None else None,
            "config": self.config.to_dict(),
            "preprocessing": self.preprocessing,
            "history": self.history,
            "best": self.best,
        })

    @staticmethod
    def _explain_images(config: TrainConfig) -> List[Any]:
        """The validation images --explain-every shows: evenly spaced over the split (so over its
        classes, for image folders), unreadable ones left out."""
        from ..tools.explain import require_grad_cam
        from .data import Unreadable

        require_grad_cam()
        raw = build_dataset(config.data, "val")
        picks = sorted({round(i * (len(raw) - 1) / max(EXPLAIN_IMAGES - 1, 1)) for i in range(EXPLAIN_IMAGES)})
        items = [raw[i][0] for i in picks]
        return [image for image in items if not isinstance(image, Unreadable)]

    def _save_explanations(self, model: nn.Module, epoch: int) -> None:
        from ..tools.explain import explain, grid_image, save_png

        explanations = explain(model, self.explain_images, display_size=128)
        folder = self.out / "explain"
        folder.mkdir(exist_ok=True)
        title = f"Grad-CAM @ {explanations[0].layer}, epoch {epoch}"
        save_png(grid_image([[e] for e in explanations], [f"{self.config.model}: Grad-CAM of its top-1 class"], title),
                 folder / f"epoch_{epoch:03d}.png")

    def _export_best(self, weights: str) -> None:
        save_pretrained(self.ema.module if weights == "ema" else self.model, self.out / BEST)

    def _log(self, message: str) -> None:
        self.folder.log(message)

    # -- loop ---------------------------------------------------------------------------------

    def train(self) -> TrainResult:
        config, env = self.config, self.env
        if env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "run_config.json", dict(config.to_dict(), lr_resolved=self.lr,
                                                            classes=len(self.classes)))
        metrics = MetricsLog(self.out, self.history) if env.is_main else None
        self._log(f"training {config.model} on {config.data} ({len(self.classes)} classes) for {self.num_epochs} "
                  f"epochs: recipe {config.recipe}, {env.world_size} process(es) on {env.device}, global batch "
                  f"{config.global_batch_size}, lr {self.lr:.4g}, output {self.out}")
        try:
            for epoch in range(self.start_epoch, self.num_epochs):
                with self.folder.stops_on_non_finite(epoch):
                    row = self._epoch(epoch)
                if metrics is not None:
                    metrics.append(row)
        finally:
            if metrics is not None:
                metrics.close()
        if env.is_main and self.history:
            plot_curves(self.history, self.out / "curves.png")
            write_json(self.out / "summary.json", {
                "model": config.model, "data": config.data, "epochs": len(self.history),
                "best_val_top1": self.best["val_top1"], "best_epoch": self.best["epoch"],
                "best_weights": self.best["weights"], "final": self.history[-1],
                "train_seconds": round(sum(r["epoch_seconds"] for r in self.history), 1),
                "best_model": str(self.out / BEST),
            })
        self._log(f"best val_top1 {self.best['val_top1']:.2f} at epoch {self.best['epoch']}; "
                  f"model exported to {self.out / BEST}")
        return TrainResult(self.model, self.out, self.out / BEST, self.best["val_top1"], self.best["epoch"],
                           self.history)

    def _epoch(self, epoch: int) -> Dict[str, Any]:
        config, env = self.config, self.env
        start = time.perf_counter()
        set_loader_epoch(self.train_loader, epoch, config.seed, env.rank)
        train_loss, images, skipped = self._train_epoch(epoch)
        train_seconds = time.perf_counter() - start
        check_finite_weights(self.model, "a numerical bug, e.g. in bf16 CPU convolutions over 1x1 feature maps: "
                                         "try without --amp or a larger --img-size")
        if env.distributed:
            distribute_bn(self.model, env.world_size, reduce=True)  # every process keeps the same statistics
        val = self._validate(self.model, "val")
        row: Dict[str, Any] = {
            "epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"], "train_loss": round(train_loss, 6),
            "val_loss": round(val.loss, 6), "val_top1": round(val.top1, 4), "val_top5": round(val.top5, 4),
        }
        candidates = [("model", val.top1)]
        if self.ema is not None:
            ema_val = self._validate(self.ema.module, "val (EMA)")
            row.update(ema_val_loss=round(ema_val.loss, 6), ema_val_top1=round(ema_val.top1, 4),
                       ema_val_top5=round(ema_val.top5, 4))
            candidates = [("ema", ema_val.top1)]  # as timm: with EMA on, the EMA weights are the result
        row.update(train_images_per_second=round(images / train_seconds, 2), skipped_images=skipped + val.skipped,
                   epoch_seconds=round(time.perf_counter() - start, 2))
        self.scheduler.step(epoch + 1)
        self.history.append(row)
        weights, top1 = max(candidates, key=lambda c: c[1])
        if top1 > self.best["val_top1"]:
            self.best = {"val_top1": round(top1, 4), "epoch": epoch + 1, "weights": weights}
            if env.is_main:
                self._export_best(weights)
        if env.is_main and self.explain_images and (epoch + 1) % config.explain_every == 0:
            self._save_explanations(self.ema.module if self.ema is not None else self.model, epoch + 1)
        self._save(epoch + 1)
        self._log(f"epoch {epoch + 1}/{self.num_epochs}: train_loss {row['train_loss']:.4f}  val_loss "
                  f"{row['val_loss']:.4f}  val_top1 {row['val_top1']:.2f}  val_top5 {row['val_top5']:.2f}"
                  + (f"  ema_val_top1 {row['ema_val_top1']:.2f}" if self.ema is not None else "")
                  + f"  {row['train_images_per_second']:.1f} img/s  {row['epoch_seconds']:.1f} s")
        return row

    def _validate(self, model: nn.Module, desc: str) -> EvalResult:
        return evaluate(model, self.val_loader, self.env, self.precision, len(self.classes),
                        self.config.channels_last, self.config.skip_corrupt, desc=desc)

    def _train_epoch(self, epoch: int) -> Tuple[float, int, int]:
        config, env, device = self.config, self.env, self.env.device
        model, optimizer, scaler = self.train_model, self.optimizer, self.scaler
        model.train()
        steps = len(self.train_loader)
        accum = config.grad_accum_steps
        num_updates = epoch * self.updates_per_epoch
        running = RunningSums(env, ("loss", "images"))
        skipped = 0
        progress = tqdm(total=steps * config.batch_size * env.world_size, unit="img", unit_scale=True,
                        desc=f"epoch {epoch + 1}/{self.num_epochs}", leave=False, disable=not env.is_main or None)
        optimizer.zero_grad(set_to_none=True)
        for step, (images, targets, unreadable) in enumerate(self.train_loader):
            skipped += check_unreadable(unreadable, config.skip_corrupt)
            update = (step + 1) % accum == 0 or step + 1 == steps
            if images is not None:
                images = images.to(device, non_blocking=True)
                targets = targets.to(device, non_blocking=True)
                if config.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                if self.mixup is not None:
                    images, targets = self.mixup(images, targets)
                sync = contextlib.nullcontext() if update or not env.distributed else model.no_sync()
                with sync:
                    with self.precision.autocast():
                        loss = self.criterion(model(images), targets)
                    scaler.scale(loss / accum).backward()
                running.add({"loss": loss.detach().double() * len(images), "images": len(images)})
            if update:
                if config.clip_grad is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                num_updates += 1
                self.scheduler.step_update(num_updates)
                if self.ema is not None:
                    self.ema.update(self.model, step=num_updates)
            if (step + 1) % config.log_interval == 0 or step + 1 == steps:
                totals = running.totals(step, _LOSS_FIX)
                progress.set_postfix(loss=f"{totals['loss'] / max(totals['images'], 1):.4f}",
                                     lr=f"{optimizer.param_groups[0]['lr']:.3g}")
            progress.update(config.batch_size * env.world_size)
        progress.close()
        totals = running.totals(steps - 1, _LOSS_FIX)
        skipped = int(all_reduce_sum(torch.tensor([skipped], device=device), env).item())
        return totals["loss"] / max(totals["images"], 1), totals["images"], skipped
