"""Failing fast and in one line when the Hugging Face Hub cannot be reached.

huggingface_hub retries a download whose file is not cached after a network error with
exponential backoff (1+2+4+8+8 s in huggingface_hub 2.x; no setting changes it). That is right
for a flaky connection, but a Hub that refuses the connection (no network, a closed port, a
wrong ``HF_ENDPOINT``) only makes the user wait ~23 s for the same answer. So before a download
the endpoint is asked once, without retries: when it refuses the connection and the file is not
in the cache, the download stops at once with the one-line :class:`~epsanet.hub.HubError`;
a cached file is used as huggingface_hub would. A slow or erroring Hub keeps huggingface_hub's
retries.

This module imports nothing of epsanet's (:mod:`epsanet.weights.download` uses it).
"""
import functools
import importlib
import os
import threading
from typing import Optional, Set, Type, Union

import huggingface_hub
import huggingface_hub.constants
import huggingface_hub.errors

from .._utils.errors import first_line

__all__ = ["refusal", "require_reachable_or_cached", "unreachable_and_not_cached", "network_errors", "as_hub_error"]

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
        return first_line(e, "connection refused")
    except Exception:  # a timeout, a proxy answer...: huggingface_hub decides, with its retries
        return None
    with _LOCK:
        _ANSWERED.add(endpoint)
    return None


def unreachable_and_not_cached(endpoint: str, what: str, reason: str) -> str:
    """The one line for a download that neither the Hub at ``endpoint`` nor the cache can serve."""
    return (f"cannot reach the Hub at {endpoint} to download {what} ({reason}) and it is not in the local cache: "
            "check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only")


def require_reachable_or_cached(repo_id: str, filename: str, revision: Optional[str], what: str,
                                cache_dir: Optional[PathLike], error: Type[Exception]) -> None:
    """Raise ``error`` (the one-line HubError) at once when the Hub refuses connections and
    ``filename`` of ``repo_id`` is not in the cache; it is also a ``LocalEntryNotFoundError``, as
    huggingface_hub's own error would be. Otherwise the download may go ahead."""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return  # huggingface_hub goes straight to the cache
    reason = refusal()
    if reason is None:
        return
    cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    if isinstance(cached, str):
        return
    message = unreachable_and_not_cached(huggingface_hub.constants.ENDPOINT, what, reason)
    raise as_hub_error(error, message, huggingface_hub.errors.LocalEntryNotFoundError(message))


def as_hub_error(error: Type[Exception], message: str, original: Optional[BaseException]) -> Exception:
    """An ``error`` (HubError) with ``message`` that is also an instance of ``original``'s class,
    so that code catching huggingface_hub's exceptions keeps working."""
    if original is None or isinstance(original, error):
        return error(message)
    try:
        cls = type(error.__name__, (error, type(original)), {"__module__": error.__module__})
        return cls(message)
    except TypeError:  # an exception class that cannot be combined or built from a message
        return error(message)
