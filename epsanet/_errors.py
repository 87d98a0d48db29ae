"""The reason part of the package's one-line errors."""
from typing import Optional

__all__ = ["first_line"]


def first_line(error: BaseException, default: Optional[str] = None) -> str:
    """The first line of ``error``'s message; for an empty message, ``default`` or else the
    error's class name."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return default if default is not None else type(error).__name__
