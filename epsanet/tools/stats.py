"""Model size and cost: parameters and multiply-accumulates (from torch's FLOP counter)."""
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "count_macs"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: Sequence[int] = (3, 224, 224)) -> int:
    """Multiply-accumulates of one forward pass of a single image of ``input_size`` (C, H, W), as
    counted by :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2).

    The model runs on the meta device (no computation, no copy of the weights), so the count is
    the architecture's, not that of a device-specific rewrite such as the fast PSA's merged
    groups."""
    param = next(model.parameters())
    meta = {name: torch.empty_like(t, device="meta") for name, t in (*model.named_parameters(), *model.named_buffers())}
    x = torch.zeros(1, *input_size, device="meta", dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            torch.func.functional_call(model, meta, (x,))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
