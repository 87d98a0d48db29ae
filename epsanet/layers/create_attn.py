"""Attention modules by name, as timm's ``create_attn``: ``create_attention('se', 256)``."""
from typing import Callable, Dict, List

from torch import nn

from .._utils.errors import InvalidArgumentError
from .bam import BAMModule
from .cbam import CBAMModule
from .coord import CoordAttentionModule
from .eca import ECAModule
from .ema import EMAModule
from .gam import GAMModule
from .polarized import PolarizedAttentionModule, SequentialPolarizedAttentionModule
from .psa import PSAModule, ReferencePSAModule
from .sa import ShuffleAttentionModule
from .se import SEModule
from .sge import SGEModule

__all__ = ["create_attention", "list_attention", "get_attention"]

_ATTENTION: Dict[str, Callable[..., nn.Module]] = {
    "psa": PSAModule,
    "psa_reference": ReferencePSAModule,
    "se": SEModule,
    "eca": ECAModule,
    "cbam": CBAMModule,
    "bam": BAMModule,
    "sa": ShuffleAttentionModule,
    "polarized": PolarizedAttentionModule,
    "polarized_seq": SequentialPolarizedAttentionModule,
    "sge": SGEModule,
    "coord": CoordAttentionModule,
    "gam": GAMModule,
    "ema": EMAModule,
}


def list_attention() -> List[str]:
    """Names accepted by :func:`create_attention`."""
    return sorted(_ATTENTION)


def get_attention(name: str) -> Callable[..., nn.Module]:
    """The module class registered as ``name``."""
    try:
        return _ATTENTION[name]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown attention module {name!r}: choose one of {', '.join(list_attention())}"
        ) from None


def create_attention(name: str, channels: int, **kwargs) -> nn.Module:
    """Build the attention module ``name`` for ``channels`` input channels.

    Keyword arguments go to the module (e.g. ``reduction`` for SE, ``kernel_size`` for ECA,
    ``groups`` for PSA).
    """
    return get_attention(name)(channels, **kwargs)
