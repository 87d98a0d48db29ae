"""Processes, devices and precision: one process on a CPU or GPU, or many under ``torchrun``
(gloo on CPU, NCCL on GPU; multi-node through torchrun's rendezvous)."""
import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, List, Optional

import torch
import torch.distributed as dist
from timm.utils.distributed import init_distributed_device_so

from .._utils.device import resolve_device
from .._utils.errors import InvalidArgumentError

__all__ = ["Environment", "setup_environment", "teardown_environment", "all_reduce_sum", "gather_objects",
           "Precision", "resolve_precision"]


@dataclass(frozen=True)
class Environment:
    """Where this process runs: its device, its rank among ``world_size`` processes."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_environment(device: str = "auto") -> Environment:
    """Join the process group when launched by torchrun (or SLURM), and pick this process's device:
    ``auto`` is CUDA when available; under torchrun each process takes ``cuda:LOCAL_RANK``."""
    info = init_distributed_device_so(device=str(resolve_device(device)))
    return Environment(torch.device(info["device"]), info["global_rank"], info["local_rank"], info["world_size"])


def teardown_environment(env: Environment) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, env: Environment) -> torch.Tensor:
    """The sum of ``tensor`` over all processes (in place)."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_objects(obj: Any, env: Environment) -> List[Any]:
    """Every process's ``obj``, in rank order."""
    if not env.distributed:
        return [obj]
    gathered: List[Any] = [None] * env.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


@dataclass(frozen=True)
class Precision:
    """Mixed precision: the autocast dtype (None: float32) and whether gradients need scaling."""

    dtype: Optional[torch.dtype]
    device_type: str

    @property
    def scales_gradients(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> ContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """float16 needs loss scaling; for bfloat16 and float32 the scaler does nothing."""
        return torch.amp.GradScaler(self.device_type, enabled=self.scales_gradients)


def resolve_precision(amp: Optional[str], device: torch.device) -> Precision:
    """``None``: float32; ``bf16``, ``fp16``; ``auto``: bf16 on CPU and on GPUs that support it, else fp16."""
    if amp is None:
        return Precision(None, device.type)
    if amp == "auto":
        amp = "bf16" if device.type != "cuda" or torch.cuda.is_bf16_supported() else "fp16"
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise InvalidArgumentError(f"unknown --amp {amp!r}: choose bf16, fp16 or auto")
    return Precision(dtypes[amp], device.type)
