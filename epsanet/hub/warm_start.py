"""Warm start: initialise an EPSANet or any attention ResNet of the zoo from plain ResNet weights.

The zoo's models keep torchvision's ResNet names (``conv1``, ``layerN.M.conv1..3``, ``bnN``,
``downsample``, ``fc``), so every tensor of a ResNet-50/101 (torchvision or timm) whose name and
shape match is copied. What a ResNet does not have is left as initialised: attention modules
(SE, ECA, the PSA module's SE gate) and anything whose shape differs (e.g. a new classifier).

EPSANet replaces each bottleneck's 3x3 ``conv2`` by a PSA module whose four branch convolutions
(kernels 3/5/7/9, groups 1/4/8/16) each write a quarter of the output channels, concatenated in
reverse order (branch 4 first). Each branch is initialised from the ResNet 3x3 kernel of the
output channels it writes, restricted to the input channels its group reads (the matching
diagonal block of each group), centred inside the larger kernel with zeros around it. Asked for
in the official repository (https://github.com/murufeng/EPSANet/issues/12).

A fresh attention gate would rescale what the ResNet computed (an SE or ECA gate halves a
block's residual branch, PSA's softmax quarters each branch), and the copied BatchNorm
statistics would no longer fit. So, by default, the gates start neutral and the copied weights
compensate: SE / ECA gates output exactly 0.5 (last layer zeroed, still trainable) and the
block's ``bn3`` scale and shift are doubled; PSA's SE gate gives every branch the weight 1/4 and
``bn2``'s running statistics are scaled to match. An SE- or ECA-ResNet then computes exactly what
the ResNet computed; an EPSANet what the ResNet computes with each 3x3 kernel cut to its group
blocks (up to BatchNorm's eps).
"""
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError
from ..layers import ECAModule, PSAModule, SEModule
from ..models.resnet import Bottleneck
from ..weights.checkpoint import read_state_dict

__all__ = ["TransplantReport", "transplant"]


@dataclass
class TransplantReport:
    """What :func:`transplant` did, by state_dict key of the model."""

    copied: List[str] = field(default_factory=list)
    from_3x3: List[str] = field(default_factory=list)
    initialised: List[str] = field(default_factory=list)
    neutralised: List[str] = field(default_factory=list)
    rescaled: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    copied_params: int = 0
    from_3x3_params: int = 0
    total_params: int = 0

    @property
    def fraction(self) -> float:
        """Fraction of the model's parameters (by count) that came from the ResNet weights."""
        return (self.copied_params + self.from_3x3_params) / self.total_params if self.total_params else 0.0

    def __str__(self) -> str:
        left = ""
        if self.initialised:
            left = f" ({', '.join(self.initialised[:3])}{', ...' if len(self.initialised) > 3 else ''})"
        return (
            f"transplanted {math.floor(self.fraction * 10000) / 100:.2f}% of the {self.total_params:,} parameters: "
            f"{len(self.copied)} tensors "
            f"copied ({self.copied_params:,} parameters), {len(self.from_3x3)} PSA branch convolutions from 3x3 "
            f"kernels ({self.from_3x3_params:,}), {len(self.initialised)} tensors left as initialised{left}, "
            f"{len(self.neutralised)} attention gates started neutral"
        )


def transplant(resnet_state_dict: Union[Mapping[str, torch.Tensor], str, os.PathLike], model: nn.Module,
               psa_from_3x3: bool = True, neutral_gates: bool = True) -> TransplantReport:
    """Initialise ``model`` (in place) from the state_dict of a bottleneck ResNet.

    Args:
        resnet_state_dict: weights of a torchvision or timm ResNet-50/101/152 or Wide ResNet
            (a mapping, or a checkpoint file read with ``weights_only=True``).
        model: a zoo model (EPSANet, SE/ECA-ResNet, ...) with the same depth.
        psa_from_3x3: initialise PSA branch convolutions from the ResNet 3x3 kernels (otherwise
            they keep their initialisation).
        neutral_gates: start SE, ECA and PSA gates neutral and compensate in the copied
            BatchNorm weights, so the model computes what the ResNet computed (see above).

    Returns:
        a :class:`TransplantReport`; ``report.fraction`` is the share of parameters transplanted.
    """
    source = read_state_dict(resnet_state_dict)
    if not any(key.endswith(".conv3.weight") for key in source):
        raise InvalidArgumentError(
            "transplant needs the state_dict of a bottleneck ResNet (ResNet-50/101/152, Wide ResNet): this one "
            "has no layerN.M.conv3 weights"
        )
    report = TransplantReport()
    target = model.state_dict()
    params = dict(model.named_parameters())
    psa_modules = {f"{name}.": module for name, module in model.named_modules() if isinstance(module, PSAModule)}
    used = set()
    updates: Dict[str, torch.Tensor] = {}
    for key, tensor in target.items():
        prefix = next((p for p in psa_modules if key.startswith(p)), None)
        branch = key[len(prefix):] if prefix is not None else ""
        if key in source and source[key].shape == tensor.shape:
            updates[key] = source[key]
            used.add(key)
            report.copied.append(key)
        elif psa_from_3x3 and branch.startswith("conv_") and branch.endswith(".weight") and f"{prefix}weight" in source:
            kernel = _psa_branch_from_3x3(source[f"{prefix}weight"], psa_modules[prefix], int(branch[len("conv_")]))
            if kernel is None:
                report.initialised.append(key)
                continue
            updates[key] = kernel
            used.add(f"{prefix}weight")
            report.from_3x3.append(key)
        else:
            report.initialised.append(key)
    with torch.no_grad():
        for key, value in updates.items():
            target[key].copy_(value.to(dtype=target[key].dtype))
        if neutral_gates:
            _neutralise_gates(model, report)
    report.unused = [k for k in source if k not in used]
    report.total_params = sum(p.numel() for p in params.values())
    report.copied_params = sum(params[k].numel() for k in report.copied if k in params)
    report.from_3x3_params = sum(params[k].numel() for k in report.from_3x3)
    return report


def _psa_branch_from_3x3(kernel: torch.Tensor, psa: PSAModule, branch: int) -> Optional[torch.Tensor]:
    """The weight of PSA branch ``branch`` (1..4) cut from a ResNet 3x3 ``conv2`` kernel, or None
    when the shapes do not correspond."""
    conv = getattr(psa, f"conv_{branch}")
    out_split, in_per_group, k = conv.out_channels, conv.in_channels // conv.groups, conv.kernel_size[0]
    if kernel.shape != (4 * out_split, conv.in_channels, 3, 3) or k < 3 or k % 2 == 0:
        return None
    # Branch 1 writes the last quarter of the concatenated output, branch 4 the first.
    rows = kernel[(4 - branch) * out_split:(5 - branch) * out_split]
    out_per_group = out_split // conv.groups
    blocks = [rows[g * out_per_group:(g + 1) * out_per_group, g * in_per_group:(g + 1) * in_per_group]
              for g in range(conv.groups)]
    weight = torch.zeros(out_split, in_per_group, k, k, dtype=kernel.dtype)
    pad = (k - 3) // 2
    weight[:, :, pad:pad + 3, pad:pad + 3] = torch.cat(blocks)
    return weight


def _neutral(gate: nn.Module) -> bool:
    """Make an SE or ECA gate output exactly 0.5 for every input (its last layer zeroed); False
    for other modules."""
    if isinstance(gate, SEModule):
        nn.init.zeros_(gate.fc2.weight)
        nn.init.zeros_(gate.fc2.bias)
        return True
    if isinstance(gate, ECAModule):
        nn.init.zeros_(gate.conv.weight)
        return True
    return False


def _neutralise_gates(model: nn.Module, report: TransplantReport) -> None:
    """Start the gates of blocks whose BatchNorms were transplanted neutral, and compensate."""
    copied = set(report.copied)
    for name, block in model.named_modules():
        if not isinstance(block, Bottleneck):
            continue
        gate = dict(block.named_children()).get(block.attn_name) if block.attn_name else None
        if f"{name}.bn3.weight" in copied and gate is not None and _neutral(gate):
            block.bn3.weight.mul_(2)  # x * 0.5 after bn3: double bn3 so the residual branch is unchanged
            block.bn3.bias.mul_(2)
            report.neutralised.append(f"{name}.{block.attn_name}")
            report.rescaled += [f"{name}.bn3.weight", f"{name}.bn3.bias"]
        psa = block.conv2
        if (isinstance(psa, PSAModule) and f"{name}.bn2.running_var" in copied
                and f"{name}.conv2.conv_1.weight" in report.from_3x3):
            _neutral(psa.se)  # equal scores for the four branches: the softmax gives each 1/4
            block.bn2.running_mean.div_(4)
            block.bn2.running_var.div_(16)
            report.neutralised.append(f"{name}.conv2.se")
            report.rescaled += [f"{name}.bn2.running_mean", f"{name}.bn2.running_var"]
