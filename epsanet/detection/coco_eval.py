"""COCO evaluation with pycocotools: the standard 12 AP/AR numbers for boxes and masks.

Detections are gathered from every process under torchrun and evaluated once, on the first.
"""
import contextlib
import io
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torchvision.ops import box_convert
from tqdm import tqdm

from .._utils.optional import require

COCO = require("pycocotools.coco", "detection", "detection").COCO
COCOeval = require("pycocotools.cocoeval", "detection", "detection").COCOeval
mask_utils = require("pycocotools.mask", "detection", "detection")

__all__ = ["COCO_METRICS", "CocoMetrics", "coco_results", "summarize", "evaluate"]

# The 12 numbers of COCOeval.stats, in order.
COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = {"bbox": "boxes", "segm": "masks"}


@dataclass(frozen=True)
class CocoMetrics:
    """One COCOeval summary: ``iou_type`` ('bbox' or 'segm'), the 12 metrics by name,
    pycocotools' 12-line table and the number of detections scored."""

    iou_type: str
    metrics: Dict[str, float]
    table: str
    detections: int


def coco_results(image_id: int, output: Dict[str, torch.Tensor], iou_type: str) -> List[Dict[str, Any]]:
    """One image's detections as COCO results (``bbox`` in XYWH pixels, or RLE ``segmentation``)."""
    scores = output["scores"].float().tolist()
    labels = output["labels"].tolist()
    if iou_type == "bbox":
        boxes = box_convert(output["boxes"].float(), "xyxy", "xywh").tolist()
        return [{"image_id": image_id, "category_id": c, "bbox": b, "score": s}
                for c, b, s in zip(labels, boxes, scores)]
    masks = (output["masks"][:, 0] > 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    rles = mask_utils.encode(np.asfortranarray(masks)) if len(scores) else []
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return [{"image_id": image_id, "category_id": c, "segmentation": r, "score": s}
            for c, r, s in zip(labels, rles, scores)]


def summarize(coco_gt: COCO, results: List[Dict[str, Any]], iou_type: str) -> CocoMetrics:
    """Run COCOeval on ``results`` (an empty list scores 0 wherever there are objects)."""
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress messages
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            coco_dt = COCO()
            coco_dt.dataset = {"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"],
                               "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        evaluator.summarize()
    return CocoMetrics(iou_type, dict(zip(COCO_METRICS, map(float, evaluator.stats))), table.getvalue(), len(results))


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    coco_gt: COCO,
    device: torch.device,
    *,
    amp_dtype: Optional[torch.dtype] = None,
    progress: bool = False,
) -> Dict[str, CocoMetrics]:
    """COCO metrics of ``model`` on ``loader`` (batches of images and targets with ``image_id``)
    against the annotations ``coco_gt``: boxes, and masks for a model that predicts them.

    Under torchrun each process evaluates its share of the images; the results of every
    process are returned (they are computed once, on the first).
    """
    was_training = model.training
    model.eval()
    results: Dict[str, List[Dict[str, Any]]] = {iou_type: [] for iou_type in IOU_TYPES}
    main = not dist.is_initialized() or dist.get_rank() == 0
    try:
        for images, targets in tqdm(loader, desc="evaluate", disable=not (progress and main), leave=False):
            images = [image.to(device, non_blocking=True) for image in images]
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                outputs = model(images)
            for target, output in zip(targets, outputs):
                output = {k: v.cpu() for k, v in output.items()}
                for iou_type, key in IOU_TYPES.items():
                    if key in output:
                        results[iou_type] += coco_results(target["image_id"], output, iou_type)
    finally:
        model.train(was_training)
    iou_types = ["bbox", "segm"] if getattr(model, "roi_heads", None) is not None and model.roi_heads.has_mask() \
        else ["bbox"]
    if dist.is_initialized() and dist.get_world_size() > 1:
        gathered: List[Optional[Dict[str, List]]] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, results)
        results = {iou_type: [r for part in gathered for r in part[iou_type]] for iou_type in IOU_TYPES}
    metrics = {iou_type: summarize(coco_gt, results[iou_type], iou_type) for iou_type in iou_types} if main else None
    if dist.is_initialized() and dist.get_world_size() > 1:
        shared = [metrics]
        dist.broadcast_object_list(shared, src=0)
        metrics = shared[0]
    return metrics
