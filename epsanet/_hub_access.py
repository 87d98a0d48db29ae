"""Failing fast and in one line when the Hugging Face Hub cannot be reached.

huggingface_hub retries a download whose file is not cached after a network error with
exponential backoff (1+2+4+8+8 s in huggingface_hub 2.x; no setting changes it). That is right
for a flaky connection, but a Hub that refuses the connection (no network, a closed port, a
wrong ``HF_ENDPOINT``) only makes the user wait ~23 s for the same answer. So before a download
the endpoint is asked once, without retries: when it refuses the connection and the file is not
in the cache, the download stops at once with the one-line :class:`~epsanet.hub.HubError`;
a cached file is used as huggingface_hub would. A slow or erroring Hub keeps huggingface_hub's
retries.

:func:`install_timm_hub_errors` gives ``timm.create_model("hf-hub:ORG/NAME")`` the same
behaviour and errors as :func:`epsanet.from_pretrained`.
"""
import functools
import importlib
import os
import threading
from typing import Any, Callable, Optional, Set, Union

import huggingface_hub
import huggingface_hub.constants
import huggingface_hub.errors

__all__ = ["refusal", "require_reachable_or_cached", "network_errors", "as_hub_error", "install_timm_hub_errors"]

PathLike = Union[str, os.PathLike]
_ANSWERED: Set[str] = set()  # endpoints that answered once in this process: not asked again
_LOCK = threading.Lock()


def _classes(*names: str) -> tuple:
    found = []
    for name in names:
        module, _, attribute = name.rpartition(".")
        try:
            found.append(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _connect_errors() -> tuple:
    """The HTTP client's "could not connect" exception classes: httpx2 (huggingface_hub 2.x), httpx
    (1.x) or requests (older)."""
    return _classes("httpx2.ConnectError", "httpx.ConnectError", "requests.ConnectionError")


@functools.lru_cache(maxsize=None)
def network_errors() -> tuple:
    """The HTTP client's exception classes for a request that got no answer (no connection, a timeout)."""
    return _classes("httpx2.TransportError", "httpx.TransportError", "requests.ConnectionError", "requests.Timeout")


def refusal(endpoint: Optional[str] = None) -> Optional[str]:
    """Why the Hub at ``endpoint`` refuses connections (one request, no retries), or None when it
    answers with any HTTP status, or is slow to (left to huggingface_hub's timeouts and retries)."""
    endpoint = endpoint or huggingface_hub.constants.ENDPOINT
    with _LOCK:
        if endpoint in _ANSWERED:
            return None
    try:
        huggingface_hub.utils.get_session().head(endpoint, timeout=huggingface_hub.constants.HF_HUB_ETAG_TIMEOUT)
    except _connect_errors() as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else "connection refused"
    except Exception:  # a timeout, a proxy answer...: huggingface_hub decides, with its retries
        return None
    with _LOCK:
        _ANSWERED.add(endpoint)
    return None


def require_reachable_or_cached(repo_id: str, filename: str, revision: Optional[str], what: str,
                                cache_dir: Optional[PathLike] = None) -> None:
    """Raise the one-line HubError at once when the Hub refuses connections and ``filename`` of
    ``repo_id`` is not in the cache (also a ``LocalEntryNotFoundError``, as huggingface_hub's own
    error would be); otherwise the download may go ahead."""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return  # huggingface_hub goes straight to the cache
    reason = refusal()
    if reason is None:
        return
    cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    if isinstance(cached, str):
        return
    message = (f"cannot reach the Hub at {huggingface_hub.constants.ENDPOINT} to download {what} ({reason}) and it is "
               "not in the local cache: check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache "
               "only")
    raise as_hub_error(message, huggingface_hub.errors.LocalEntryNotFoundError(message))


def as_hub_error(message: str, original: Optional[BaseException]) -> Exception:
    """A HubError with ``message`` that is also an instance of ``original``'s class, so that code
    catching huggingface_hub's exceptions around timm keeps working."""
    from .hub import HubError

    if original is None or isinstance(original, HubError):
        return HubError(message)
    try:
        cls = type("HubError", (HubError, type(original)), {"__module__": HubError.__module__})
        return cls(message)
    except TypeError:  # an exception class that cannot be combined or built from a message
        return HubError(message)


def _with_hub_errors(load_config: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(load_config)
    def load_model_config_from_hf(model_id: str, *args: Any, **kwargs: Any) -> Any:
        from .hub import HubError, _hub_errors, split_hub_id

        cache_dir = kwargs.get("cache_dir", args[0] if args else None)
        repo_id, revision = split_hub_id(model_id)
        what = f"hf-hub:{model_id}/config.json"
        try:
            with _hub_errors(what, cache_dir=cache_dir):
                require_reachable_or_cached(repo_id, "config.json", revision, what, cache_dir)
                return load_config(model_id, *args, **kwargs)
        except HubError as e:
            if type(e) is not HubError or e.__context__ is None:
                raise  # already one of huggingface_hub's classes too, or one epsanet raised itself
            raise as_hub_error(str(e), e.__context__) from None

    load_model_config_from_hf.__epsanet_wrapped__ = True
    return load_model_config_from_hf


def install_timm_hub_errors() -> None:
    """Make ``timm.create_model("hf-hub:...")`` read the config through :func:`_with_hub_errors`:
    an unreachable Hub fails fast, and download failures are one-line HubErrors (which are still
    instances of huggingface_hub's exception classes). Idempotent."""
    from timm.models import _factory

    if not getattr(_factory.load_model_config_from_hf, "__epsanet_wrapped__", False):
        _factory.load_model_config_from_hf = _with_hub_errors(_factory.load_model_config_from_hf)
