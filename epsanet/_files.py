"""Files are never left half-written: write to a temporary name next to the target, then move."""
import contextlib
import os
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
