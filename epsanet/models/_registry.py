"""The zoo's model names. Every builder is also registered with timm, so that after
``import epsanet``, ``timm.create_model(name)`` builds it."""
import difflib
import fnmatch
from typing import Any, Callable, Dict, List, TypeVar

import timm.models
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["register_model", "list_models", "get_model_builder", "create_model"]

_BUILDERS: Dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Add a builder to the zoo and to timm's registry (its module must define ``default_cfgs``
    before this runs: timm reads it at registration)."""
    _BUILDERS[fn.__name__] = fn
    return timm.models.register_model(fn)


def list_models(pattern: str = "*") -> List[str]:
    """Names of the zoo's models matching a shell-style pattern, e.g. ``"epsanet*"``."""
    return sorted(name for name in _BUILDERS if fnmatch.fnmatch(name, pattern))


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder function of zoo model ``name``."""
    try:
        return _BUILDERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _BUILDERS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see epsanet.list_models()"
        raise InvalidArgumentError(f"unknown model {name!r}: {hint}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name``; keyword arguments go to its builder (``weights``, ``num_classes``, ...)."""
    return get_model_builder(name)(**kwargs)
