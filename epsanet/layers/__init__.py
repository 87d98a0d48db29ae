"""Attention layers of the zoo, one module per file; :func:`create_attention` builds them by name."""
from .create_attn import create_attention, get_attention, list_attention
from .eca import ECAModule, adaptive_kernel_size
from .psa import PSAModule, ReferencePSAModule
from .se import SEModule

__all__ = [
    "create_attention", "get_attention", "list_attention",
    "ECAModule", "PSAModule", "ReferencePSAModule", "SEModule", "adaptive_kernel_size",
]
