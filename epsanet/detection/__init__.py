"""Detection on any zoo backbone: torchvision's Faster R-CNN, Mask R-CNN and RetinaNet with an
FPN, COCO-format data, fine-tuning, COCO evaluation and a generated demo set.

    from epsanet.detection import fasterrcnn_fpn
    model = fasterrcnn_fpn("epsanet50_small", num_classes=91)

Fine-tuning from Python: ``epsanet.detection.engine.train(DetectionConfig(...))``; the command
line: ``epsanet detect shapes|train|eval`` (see ``epsanet detect --help``).
"""
from .backbone import fpn_backbone
from .coco_eval import COCO_METRICS, CocoMetrics, evaluate
from .config import DetectionConfig
from .data import AnnotationError, CocoDetection, collate, detection_transforms, load_coco
from .engine import build_detector, load_detector, train_one_epoch
from .models import DETECTORS, fasterrcnn_fpn, maskrcnn_fpn, retinanet_fpn
from .shapes import SHAPES, make_shapes_dataset

__all__ = [
    "fasterrcnn_fpn", "maskrcnn_fpn", "retinanet_fpn", "DETECTORS", "fpn_backbone",
    "AnnotationError", "CocoDetection", "load_coco", "detection_transforms", "collate",
    "COCO_METRICS", "CocoMetrics", "evaluate", "DetectionConfig", "build_detector", "load_detector", "train_one_epoch",
    "SHAPES", "make_shapes_dataset",
]
