"""The one place a ``--device`` (or ``device=``) is turned into a :class:`torch.device`."""
from typing import Union

import torch

from .errors import InvalidArgumentError

__all__ = ["resolve_device"]

DeviceLike = Union[str, torch.device, None]


def resolve_device(device: DeviceLike = "auto", option: str = "--device") -> torch.device:
    """``auto`` (or None) is CUDA when a GPU is available, else the CPU; any other name is checked:
    not a device torch knows, or CUDA on a machine without a GPU, is a one-line
    :class:`~epsanet._utils.errors.InvalidArgumentError` naming ``option`` and the fix."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidArgumentError(f"{option} {device} is not a device: use cpu, cuda, cuda:N or auto") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(f"{option} {device}, but CUDA is not available here: use {option} cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InvalidArgumentError(f"{option} {device}, but this machine has {torch.cuda.device_count()} "
                                       f"GPU(s): use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return resolved
