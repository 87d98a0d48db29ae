"""The package's own exceptions, and the reason part of its one-line errors.

Every error a user can fix (a wrong argument, a path that does not exist or holds the wrong
thing, weights that cannot be fetched) is an :class:`EpsanetError` whose message is one line
naming the problem and the fix. Each also subclasses the builtin it refines, so ``except
ValueError`` or ``except FileNotFoundError`` keeps working. The ``epsanet`` command prints these
as one line (exit status 2) and lets any other exception, a bug, show its traceback.
"""
from typing import Optional

__all__ = [
    "EpsanetError", "InvalidArgumentError", "PathNotFoundError", "PathExistsError", "PathPermissionError",
    "RunFailedError", "first_line",
]


class EpsanetError(Exception):
    """An error the user can fix; the message says what is wrong and how to fix it, in one line."""


class InvalidArgumentError(EpsanetError, ValueError):
    """A value, option or file content that epsanet cannot use."""


class PathNotFoundError(EpsanetError, FileNotFoundError):
    """A path that does not exist (or a file a folder should hold)."""


class PathExistsError(EpsanetError, FileExistsError):
    """A path that exists where epsanet would create it."""


class PathPermissionError(EpsanetError, PermissionError):
    """A path epsanet may not read or write."""


class RunFailedError(EpsanetError, RuntimeError):
    """A run (training, a demo) that stopped short of its end or its target for a reason the user
    can change: a loss that diverged, an accuracy below the target."""


def first_line(error: BaseException, default: Optional[str] = None) -> str:
    """The first line of ``error``'s message; for an empty message, ``default`` or else the
    error's class name."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return default if default is not None else type(error).__name__
