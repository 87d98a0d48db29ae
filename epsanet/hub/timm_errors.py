"""``timm.create_model("hf-hub:ORG/NAME")`` with the behaviour and errors of
:func:`epsanet.from_pretrained`: an unreachable Hub fails at once, and a failed download of the
config is the one-line :class:`~epsanet.hub.HubError`, which is also an instance of
huggingface_hub's exception class (code catching those keeps working).

timm reads an ``hf-hub:`` model's ``config.json`` with ``timm.models._factory.load_model_config_from_hf``
before any zoo code runs; :func:`install_timm_hub_errors` wraps that function at ``import epsanet``.
"""
import functools
from typing import Any, Callable

from ..weights.download import HubError, _hub_errors, split_hub_id
from ..weights.reachability import as_hub_error, require_reachable_or_cached

__all__ = ["install_timm_hub_errors"]


def _with_hub_errors(load_config: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(load_config)
    def load_model_config_from_hf(model_id: str, *args: Any, **kwargs: Any) -> Any:
        cache_dir = kwargs.get("cache_dir", args[0] if args else None)
        repo_id, revision = split_hub_id(model_id)
        what = f"hf-hub:{model_id}/config.json"
        try:
            with _hub_errors(what, cache_dir=cache_dir):
                require_reachable_or_cached(repo_id, "config.json", revision, what, cache_dir, HubError)
                return load_config(model_id, *args, **kwargs)
        except HubError as e:
            if type(e) is not HubError or e.__context__ is None:
                raise  # already one of huggingface_hub's classes too, or one epsanet raised itself
            raise as_hub_error(HubError, str(e), e.__context__) from None

    load_model_config_from_hf.__epsanet_wrapped__ = True
    return load_model_config_from_hf


def install_timm_hub_errors() -> None:
    """Make ``timm.create_model("hf-hub:...")`` read the config through :func:`_with_hub_errors`
    (idempotent)."""
    from timm.models import _factory

    if not getattr(_factory.load_model_config_from_hf, "__epsanet_wrapped__", False):
        _factory.load_model_config_from_hf = _with_hub_errors(_factory.load_model_config_from_hf)
