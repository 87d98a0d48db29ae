"""Attention layers of the zoo, one module per file; :func:`create_attention` builds them by name."""
from .bam import BAMModule
from .cbam import CBAMModule
from .coord import CoordAttentionModule
from .create_attn import create_attention, get_attention, list_attention
from .eca import ECAModule, adaptive_kernel_size
from .ema import EMAModule
from .gam import GAMModule
from .polarized import PolarizedAttentionModule, SequentialPolarizedAttentionModule
from .psa import PSAModule, ReferencePSAModule
from .sa import ShuffleAttentionModule
from .se import SEModule
from .sge import SGEModule

__all__ = [
    "create_attention", "get_attention", "list_attention",
    "ECAModule", "PSAModule", "ReferencePSAModule", "SEModule", "adaptive_kernel_size",
    "BAMModule", "CBAMModule", "CoordAttentionModule", "EMAModule", "GAMModule", "PolarizedAttentionModule",
    "SequentialPolarizedAttentionModule", "ShuffleAttentionModule", "SGEModule",
]
