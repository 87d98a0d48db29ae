"""The inference form of a model, and TorchScript export.

``fuse_batchnorm`` folds every BatchNorm that directly follows a convolution in the zoo's
ResNets into that convolution (``torch.nn.utils.fusion.fuse_conv_bn_eval``); the BatchNorm
after a PSA module (``bn2`` of an EPSA block) stays, because the attention weights sit between
the branch convolutions and it; ``deploy`` folds that one into the PSA module too.
``export_torchscript`` scripts the model (timm's scriptable contract) and saves it, written to a
temporary name next to the destination, then moved into place. OpenVINO and ONNX Runtime
exports are :mod:`epsanet.runtimes`.
"""
import copy
import os
from pathlib import Path
from typing import Union

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .._utils.files import atomic_file
from ..layers.psa import PSAModule
from ..models.resnet import Bottleneck, ResNet

__all__ = ["fuse_batchnorm", "deploy", "export_torchscript"]

PathLike = Union[str, os.PathLike]

# (convolution, BatchNorm) attribute pairs where the BatchNorm directly follows the convolution.
_FUSIBLE = {ResNet: (("conv1", "bn1"),), Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))}


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy of a zoo model (in eval mode) with each BatchNorm folded into the
    convolution before it, which gains a bias; the folded BatchNorms become ``nn.Identity``.

    Outputs equal the original eval-mode outputs to float rounding. The copy is for inference:
    in train mode it would no longer normalise with batch statistics.
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        pairs = next((p for cls, p in _FUSIBLE.items() if type(module) is cls), ())
        if isinstance(module, nn.Sequential) and len(module) == 2:  # downsample: conv, bn
            pairs = (("0", "1"),)
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d:
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return fused


def deploy(model: nn.Module) -> nn.Module:
    """The inference form of a zoo model: :func:`fuse_batchnorm`, and in every EPSA block the
    BatchNorm after the fast PSA module (``bn2``) folded into it (its scale into the attention
    weights, its shift into the final multiply-add, see :meth:`PSAModule.fold_batchnorm`).

    Returns an eval-mode copy whose outputs equal the original's in eval mode to float rounding,
    with one memory pass less per block. For inference only: in train mode the folded
    BatchNorms would no longer normalise with batch statistics. The state_dict gains
    ``conv2.out_scale`` / ``conv2.out_shift`` and loses the folded BatchNorms.
    """
    deployed = fuse_batchnorm(model)
    for module in deployed.modules():
        if type(module) is Bottleneck and type(module.conv2) is PSAModule and type(module.bn2) is nn.BatchNorm2d:
            module.conv2.fold_batchnorm(module.bn2)
            module.bn2 = nn.Identity()
    return deployed


def export_torchscript(model: nn.Module, path: PathLike) -> Path:
    """Script ``model`` (put in eval mode) with ``torch.jit.script`` and save it."""
    scripted = torch.jit.script(model.eval())
    with atomic_file(path, ".pt") as tmp:
        scripted.save(str(tmp))
    return Path(path)
