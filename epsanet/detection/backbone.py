"""Feature pyramid backbones for torchvision's detectors, from any zoo model (or any timm model).

The FPN sits on the four ResNet stages ``layer1..4`` (strides 4, 8, 16, 32), exactly as in
torchvision's ``resnet_fpn_backbone``: torchvision's :class:`BackboneWithFPN` runs the model's
children up to the last stage it needs, and its state-dict keys are ``body.conv1...``,
``body.layer1...``, ``fpn...``, as in ``fasterrcnn_resnet50_fpn``.
"""
import os
import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

from timm.layers import freeze_batch_norm_2d
from timm.models import FeatureInfo
from torch import nn
from torchvision.models import WeightsEnum
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool

from .._utils.errors import InvalidArgumentError, PathNotFoundError
from ..models import create_model
from ..weights.checkpoint import check_state_dict, read_state_dict

__all__ = ["fpn_backbone", "backbone_for_fine_tuning", "BackboneWeights"]

BackboneWeights = Union[WeightsEnum, str, os.PathLike]
ExtraBlocks = Union[ExtraFPNBlock, Callable[[int], ExtraFPNBlock]]
# Stage k (1..4) of a backbone is its feature level at stride 2 ** (k + 1), as layer1..4 of a ResNet.
STAGE_STRIDES = (4, 8, 16, 32)
# Stages trained by default when the backbone starts from weights, as in torchvision.
DEFAULT_TRAINABLE_LAYERS = 3
_CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".tar", ".bin", ".ckpt")
_HUB_FOLDER_FILES = ("model.safetensors", "pytorch_model.bin")


def fpn_backbone(
    backbone: Union[str, nn.Module] = "epsanet50_small",
    *,
    weights: Optional[BackboneWeights] = None,
    trainable_layers: Optional[int] = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    extra_blocks: Optional[ExtraBlocks] = None,
    out_channels: int = 256,
    progress: bool = True,
) -> BackboneWithFPN:
    """A feature pyramid network (Lin et al., https://arxiv.org/abs/1612.03144) on a zoo model.

    Args:
        backbone: a zoo model name (see :func:`epsanet.list_models`), or a model you built: a zoo
            or timm model, or a timm feature extractor (``timm.create_model(name,
            features_only=True)``), which works for any timm architecture. A model you pass is used
            as it is (its normalisation layers are not changed).
        weights: backbone weights, for a model name only: what the zoo builder accepts (a weights
            enum member or its name, e.g. ``"IMAGENET1K_A1"`` for ``se_resnet50``), a checkpoint
            file (``.safetensors``, ``.pth``, an official ``.pth.tar``; its classifier is
            ignored) or a folder written by :func:`epsanet.save_pretrained`. With weights, the
            backbone's BatchNorm layers are frozen (torchvision's ``FrozenBatchNorm2d``) as in
            torchvision's detectors.
        trainable_layers: how many stages to train, counted from the last (0 to 5; 5 trains the
            stem too). Default: 3 with weights; a model name without weights trains everything
            (as torchvision, which ignores other values with a warning); a model you pass is
            trained whole unless you set this.
        returned_layers: the stages (1 to 4) the FPN reads.
        extra_blocks: extra pyramid levels: torchvision's ``LastLevelMaxPool`` by default (P6 by
            max-pooling P5, as Faster and Mask R-CNN use), an ``ExtraFPNBlock``, or a function of
            the last stage's channels that returns one, e.g. ``lambda c5: LastLevelP6P7(c5, 256)``
            (RetinaNet's P6 and P7 computed from C5).
        out_channels: channels of every pyramid level.
        progress: show a progress bar while downloading weights.
    """
    if isinstance(backbone, str):
        model, trainable_layers = backbone_for_fine_tuning(backbone, weights, trainable_layers=trainable_layers,
                                                           progress=progress)
    else:
        if weights is not None:
            raise InvalidArgumentError("weights are for a backbone given by name: load them into the model you pass "
                                       "instead")
        model = backbone
        trainable_layers = 5 if trainable_layers is None else trainable_layers
    if not 0 <= trainable_layers <= 5:
        raise InvalidArgumentError(f"trainable_layers must be between 0 and 5, got {trainable_layers}")
    if not returned_layers or any(k not in (1, 2, 3, 4) for k in returned_layers):
        raise InvalidArgumentError(f"returned_layers must be stages among 1, 2, 3, 4, got {list(returned_layers)}")

    stages = _stages(model)
    fpn = BackboneWithFPN(
        model,
        return_layers={stages[k - 1][0]: str(i) for i, k in enumerate(returned_layers)},
        in_channels_list=[stages[k - 1][1] for k in returned_layers],
        out_channels=out_channels,
        extra_blocks=_extra_blocks(extra_blocks, stages[-1][1]),
    )
    if trainable_layers < 5:
        trained_prefixes = tuple(f"{name}." for name, _ in stages[len(stages) - trainable_layers:])
        for name, parameter in fpn.body.named_parameters():
            if not name.startswith(trained_prefixes):
                parameter.requires_grad_(False)
    return fpn


def backbone_for_fine_tuning(
    name: str,
    weights: Optional[BackboneWeights] = None,
    *,
    trainable_layers: Optional[int] = None,
    load_weights: bool = True,
    progress: bool = True,
) -> Tuple[nn.Module, int]:
    """The zoo model ``name`` as a detector's backbone starts, and how many stages to train.

    As torchvision's detectors: a backbone with ``weights`` has its BatchNorm frozen
    (``FrozenBatchNorm2d``) and trains its last :data:`DEFAULT_TRAINABLE_LAYERS` stages by
    default; one without trains every layer. ``load_weights=False`` gives the layout of a backbone
    with weights without reading them, to load a fine-tuned detector into.
    """
    trained = weights is not None
    model = _backbone_model(name, weights, progress) if load_weights else create_model(name)
    if trained:
        model = freeze_batch_norm_2d(model)
    elif trainable_layers not in (None, 5):
        warnings.warn(
            f"trainable_layers={trainable_layers} has no effect on a backbone without weights: "
            "training all its layers (trainable_layers=5)",
            stacklevel=3,
        )
        trainable_layers = None
    if trainable_layers is None:
        trainable_layers = DEFAULT_TRAINABLE_LAYERS if trained else 5
    return model, trainable_layers


def _extra_blocks(extra_blocks: Optional[ExtraBlocks], last_stage_channels: int) -> ExtraFPNBlock:
    if extra_blocks is None:
        return LastLevelMaxPool()
    return extra_blocks if isinstance(extra_blocks, ExtraFPNBlock) else extra_blocks(last_stage_channels)


def _stages(model: nn.Module) -> List[Tuple[str, int]]:
    """(child name, channels) of the model's feature levels at strides 4, 8, 16 and 32."""
    info = getattr(model, "feature_info", None)
    if isinstance(info, FeatureInfo) and hasattr(model, "return_layers"):
        # a timm feature extractor: its children are the model's, flattened ("stages.0" -> "stages_0")
        levels = list(zip(model.return_layers, info.channels(), info.reduction()))
    elif isinstance(info, list) and all(isinstance(level, dict) for level in info):
        levels = [(level["module"], level["num_chs"], level["reduction"]) for level in info]
    else:
        raise InvalidArgumentError(
            f"{type(model).__name__} has no timm feature_info: pass a zoo model name, a timm model, "
            "or timm.create_model(name, features_only=True)"
        )
    by_stride = {stride: (name, channels) for name, channels, stride in levels}
    missing = [s for s in STAGE_STRIDES if s not in by_stride]
    if missing:
        raise InvalidArgumentError(
            f"{type(model).__name__} has no features at stride {', '.join(map(str, missing))}: an FPN "
            "needs the four stages at strides 4, 8, 16, 32 (with features_only, keep out_indices covering them)"
        )
    stages = [by_stride[s] for s in STAGE_STRIDES]
    children = dict(model.named_children())
    nested = [name for name, _ in stages if name not in children]
    if nested:
        raise InvalidArgumentError(
            f"the stages of {type(model).__name__} ({', '.join(nested)}) are not direct children of the "
            "model: pass timm.create_model(name, features_only=True) instead"
        )
    return stages


def _backbone_model(name: str, weights: Optional[BackboneWeights], progress: bool) -> nn.Module:
    checkpoint = _checkpoint_path(weights)
    if checkpoint is None:
        return create_model(name, weights=weights, progress=progress)
    model = create_model(name, num_classes=0)
    classifier = f"{model.pretrained_cfg.get('classifier', 'fc')}."
    state = {k: v for k, v in read_state_dict(checkpoint).items() if not k.startswith(classifier)}
    check_state_dict(model, state)
    model.load_state_dict(state)
    return model


def _checkpoint_path(weights: Optional[BackboneWeights]) -> Optional[Path]:
    """The checkpoint file ``weights`` names, or None when it names no file (an enum member/name)."""
    if weights is None or isinstance(weights, WeightsEnum):
        return None
    text = os.fspath(weights)
    is_path = isinstance(weights, os.PathLike) or os.path.exists(text) or "/" in text or os.sep in text \
        or text.endswith(_CHECKPOINT_SUFFIXES)
    if not is_path:
        return None
    path = Path(text)
    if path.is_dir():
        found = [path / f for f in _HUB_FOLDER_FILES if (path / f).is_file()]
        if not found:
            raise PathNotFoundError(
                f"backbone weights folder {path} holds no {' or '.join(_HUB_FOLDER_FILES)}: "
                "pass a folder written by epsanet.save_pretrained, or a checkpoint file"
            )
        return found[0]
    if not path.is_file():
        raise PathNotFoundError(f"backbone weights {path} do not exist: check the path")
    return path
