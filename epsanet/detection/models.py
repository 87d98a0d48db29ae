"""Detectors on zoo backbones: torchvision's Faster R-CNN, Mask R-CNN and RetinaNet with an FPN.

The EPSANet paper (https://arxiv.org/abs/2105.14447, Table 4) reports EPSANet-50 Small as the
backbone of these three detectors on COCO (39.2 / 40.0 / 38.2 box AP, 1x schedule, trained with
mmdetection). These builders give the same architectures on torchvision's detection models; the
README compares their parameter counts with the paper's.

Labels are the category ids of the annotations (COCO's go to 90, so ``num_classes=91`` as in
torchvision's COCO models; index 0 is the background of the R-CNNs and unused by RetinaNet).
"""
from typing import Any, Optional, Union

from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from .backbone import BackboneWeights, fpn_backbone

__all__ = ["fasterrcnn_fpn", "maskrcnn_fpn", "retinanet_fpn", "DETECTORS"]

_BACKBONE_DOC = """
    Args:
        backbone: a zoo model name (see :func:`epsanet.list_models`), or a model you built: a zoo
            or timm model, or ``timm.create_model(name, features_only=True)`` (any timm CNN).
        num_classes: number of classes including the background: one more than the largest
            category id of your annotations (91 for COCO).
        weights_backbone: backbone weights, for a model name: a weights enum member or name
            (e.g. ``"IMAGENET1K_A1"`` for ``se_resnet50``), a checkpoint file or a folder written by
            :func:`epsanet.save_pretrained`. No ImageNet weights exist for EPSANet yet.
        trainable_backbone_layers: stages to train, counted from the last (0 to 5); default 3
            with weights, all without. With weights the backbone's BatchNorm is frozen.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to torchvision's {detector} (``min_size``, ``max_size``, ``image_mean``,
            ``image_std``, its sampling and score thresholds, ...).
"""


def fasterrcnn_fpn(
    backbone: Union[str, nn.Module] = "epsanet50_small",
    *,
    num_classes: int,
    weights_backbone: Optional[BackboneWeights] = None,
    trainable_backbone_layers: Optional[int] = None,
    progress: bool = True,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN (Ren et al., https://arxiv.org/abs/1506.01497) with an FPN on a zoo backbone.

    torchvision's ``fasterrcnn_resnet50_fpn`` with the backbone swapped: FPN on layer1..4 plus a
    max-pooled P6, RPN, two-fc box head.
    """
    fpn = fpn_backbone(backbone, weights=weights_backbone, trainable_layers=trainable_backbone_layers,
                       progress=progress)
    return FasterRCNN(fpn, num_classes=num_classes, **kwargs)


def maskrcnn_fpn(
    backbone: Union[str, nn.Module] = "epsanet50_small",
    *,
    num_classes: int,
    weights_backbone: Optional[BackboneWeights] = None,
    trainable_backbone_layers: Optional[int] = None,
    progress: bool = True,
    **kwargs: Any,
) -> MaskRCNN:
    """Mask R-CNN (He et al., https://arxiv.org/abs/1703.06870) with an FPN on a zoo backbone.

    torchvision's ``maskrcnn_resnet50_fpn`` with the backbone swapped: Faster R-CNN plus a
    four-conv mask head predicting 28x28 masks.
    """
    fpn = fpn_backbone(backbone, weights=weights_backbone, trainable_layers=trainable_backbone_layers,
                       progress=progress)
    return MaskRCNN(fpn, num_classes=num_classes, **kwargs)


def retinanet_fpn(
    backbone: Union[str, nn.Module] = "epsanet50_small",
    *,
    num_classes: int,
    weights_backbone: Optional[BackboneWeights] = None,
    trainable_backbone_layers: Optional[int] = None,
    progress: bool = True,
    **kwargs: Any,
) -> RetinaNet:
    """RetinaNet (Lin et al., https://arxiv.org/abs/1708.02002) with an FPN on a zoo backbone.

    FPN on layer2..4 with P6 and P7 computed from C5, as in the paper, mmdetection and
    torchvision's ``retinanet_resnet50_fpn_v2``; torchvision's original RetinaNet head (four
    convolutions per branch, no normalisation) and focal loss.
    """
    fpn = fpn_backbone(backbone, weights=weights_backbone, trainable_layers=trainable_backbone_layers,
                       returned_layers=(2, 3, 4), extra_blocks=lambda c5: LastLevelP6P7(c5, 256),
                       progress=progress)
    return RetinaNet(fpn, num_classes=num_classes, **kwargs)


for _builder, _detector in ((fasterrcnn_fpn, "FasterRCNN"), (maskrcnn_fpn, "MaskRCNN"), (retinanet_fpn, "RetinaNet")):
    _builder.__doc__ += _BACKBONE_DOC.format(detector=_detector)

DETECTORS = {fn.__name__: fn for fn in (fasterrcnn_fpn, maskrcnn_fpn, retinanet_fpn)}
