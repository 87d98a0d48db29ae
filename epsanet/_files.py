"""Files are never left half-written: write to a temporary name next to the target, then move."""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union


@contextlib.contextmanager
def atomic_file(path: Union[str, os.PathLike], suffix: str = "") -> Iterator[Path]:
    """A temporary path next to ``path`` (ending in ``suffix``, for writers that read the format
    from it), moved onto ``path`` when the block succeeds and removed when it fails."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the directory of {path} does not exist: create it first")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, retired / directory.name)
            os.replace(staging, directory)
            shutil.rmtree(retired)
        else:
            os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
