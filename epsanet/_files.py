"""Files are never left half-written: write to a temporary name next to the target, then move."""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

import torch


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# tempfile creates private files (0600) and folders (0700); what is written gets the permissions
# open() and mkdir() would give it under the process's umask.
_UMASK = _current_umask()

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
    os.chmod(tmp, 0o666 & ~_UMASK)
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
    os.chmod(staging, 0o777 & ~_UMASK)
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


def write_text(path: Union[str, os.PathLike], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Union[str, os.PathLike], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def save_checkpoint(state: Any, path: Union[str, os.PathLike]) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename: a kill at any moment leaves
    either the previous checkpoint or the new one, never a partial file."""
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
    return Path(path)
