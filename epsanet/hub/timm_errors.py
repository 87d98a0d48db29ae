"""Opt-in: ``timm.create_model("hf-hub:ORG/NAME")`` with the errors of :func:`epsanet.from_pretrained`.

epsanet's own routes (:func:`epsanet.from_pretrained`, the builders' ``weights="hf-hub:..."``,
``torch.hub.load``) fail at once when the Hub refuses connections, and every failed download is
the one-line :class:`~epsanet.hub.HubError`. ``timm.create_model("hf-hub:...")`` reads the
repository's ``config.json`` itself, before any epsanet code runs, and so keeps timm's behaviour:
huggingface_hub's exceptions, after its retries. ``import epsanet`` does not change that.

:func:`install_timm_hub_errors` is for a program that wants epsanet's errors on that route too. It
replaces ``timm.models._factory.load_model_config_from_hf``, a private timm function, for the whole
process; a timm release may rename it, and then this raises ``AttributeError``. Call it once, after
``import timm``::

    from epsanet.hub.timm_errors import install_timm_hub_errors
    install_timm_hub_errors()
    timm.create_model("hf-hub:ORG/NAME", pretrained=True)  # an unreachable Hub: one line, at once
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
    """Make ``timm.create_model("hf-hub:...")`` fail as :func:`epsanet.from_pretrained` does: at
    once when the Hub refuses connections and the config is not cached, and with the one-line
    :class:`~epsanet.hub.HubError` (also an instance of huggingface_hub's exception class) for every
    failed download of the config. Opt-in, for the whole process, idempotent; see the module
    docstring for what it replaces."""
    from timm.models import _factory

    if not getattr(_factory.load_model_config_from_hf, "__epsanet_wrapped__", False):
        _factory.load_model_config_from_hf = _with_hub_errors(_factory.load_model_config_from_hf)
