"""Files are never left half-written: write to a temporary name next to the target, then move.

What is written honours the umask, as ``open``, ``mkdir`` and ``cp`` would: ``tempfile`` creates
its files 0600 and folders 0700 (private on purpose), so they get the usual modes before the rename.
"""
import contextlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Union

import torch

from .errors import PathExistsError, PathNotFoundError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read from ``/proc/self/status`` on Linux. Elsewhere POSIX can only read
    it by setting it: it is set back at once, under a lock so that our own threads never see the
    temporary value (a file another thread creates in that instant is at most more private)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return umask


def _honour_umask(path: Path, directory: bool = False) -> None:
    """Give ``path`` the mode a plain ``open`` (0666) or ``mkdir`` (0777) would have given it."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_file(path: Union[str, os.PathLike], suffix: str = "") -> Iterator[Path]:
    """A temporary path next to ``path`` (ending in ``suffix``, for writers that read the format
    from it), moved onto ``path`` when the block succeeds and removed when it fails."""
    path = Path(path)
    if not path.parent.is_dir():
        raise PathNotFoundError(f"the directory of {path} does not exist: create it first")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _honour_umask(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(directory: Union[str, os.PathLike]) -> Iterator[Path]:
    """A new folder beside ``directory`` to fill in the block; it replaces ``directory`` (and
    whatever was there) when the block succeeds, and is removed when it fails. The folder and the
    everything in it get the modes the umask gives, whatever wrote them (``tempfile`` and the
    safetensors writer make private files). An existing file (not a folder) at ``directory`` is an
    error, never replaced."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise PathExistsError(f"{directory} is a file, not a folder: choose another folder, or remove the file")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield staging
        for folder, _, files in os.walk(staging):
            _honour_umask(Path(folder), directory=True)
            for name in files:
                _honour_umask(Path(folder, name))
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
