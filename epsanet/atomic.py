"""Writing files and folders so that they appear complete or not at all: everything is written
next to its destination first, then renamed over it (``os.replace`` is atomic on one filesystem)."""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Union

__all__ = ["atomic_directory", "atomic_file"]


@contextlib.contextmanager
def atomic_directory(directory: Union[str, os.PathLike]) -> Iterator[Path]:
    """A new folder beside ``directory`` to fill in the block; it replaces ``directory`` (and
    whatever was there) when the block succeeds, and is removed when it fails."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield staging
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: Union[str, os.PathLike]) -> Iterator[BinaryIO]:
    """A binary file to write in the block; it replaces ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(staging, path)
    except BaseException:
        os.unlink(staging)
        raise
