"""Detector settings for the tests: small images and few proposals and RoIs keep a training step
of a ResNet-50-sized detector to seconds on a 2-core CPU; the models are the real ones."""
import json

TINY_RCNN = dict(min_size=64, max_size=96, rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100,
                 rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50, box_batch_size_per_image=32,
                 box_detections_per_img=20)
TINY_RETINANET = dict(min_size=64, max_size=96, topk_candidates=100, detections_per_img=20)


def tiny(detector: str) -> dict:
    """Keyword arguments for the builder ``detector`` (e.g. "fasterrcnn_fpn")."""
    return TINY_RETINANET if detector.startswith("retinanet") else TINY_RCNN


def tiny_cli(detector: str, **overrides) -> list:
    """The same settings (and ``overrides``) as ``epsanet detect train`` options."""
    kwargs = dict(tiny(detector), **overrides)
    min_size, max_size = kwargs.pop("min_size"), kwargs.pop("max_size")
    return ["--min-size", str(min_size), "--max-size", str(max_size), "--detector-kwargs", json.dumps(kwargs)]
