"""One process at a time in an output folder: an exclusive lock on ``<folder>/.lock``.

The lock is the kernel's POSIX record lock (``lockf``): it is released when its holder exits,
however it exits (even SIGKILL), so a crashed run never leaves a stale lock behind. Unlike
``flock``, it belongs to the process and not to the open file, so the children a run forks (its
DataLoader workers) do not inherit it: a killed run frees its folder at once, not when its last
worker notices and exits. A record lock does not conflict with its own process, so the folders
held in this process are also kept in a table, which answers for them without opening the lock
file again (closing any descriptor of it would drop this process's lock). The file holds the
holder's pid and host, which the refusal names. Where ``fcntl`` does not exist (Windows) no lock
is taken.
"""
import contextlib
import errno
import os
import socket
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

from .errors import EpsanetError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["FolderInUseError", "exclusive_folder", "LOCK_FILE"]

LOCK_FILE = ".lock"

_held_here: Dict[str, str] = {}  # real folder path -> the holder line written in its lock file
_held_here_guard = threading.Lock()


class FolderInUseError(EpsanetError, RuntimeError):
    """Another process holds the folder; the message names it."""


@contextlib.contextmanager
def exclusive_folder(directory: Union[str, os.PathLike], user: str = "epsanet") -> Iterator[Path]:
    """Create ``directory`` if needed and hold it for this process inside the block; raise
    :class:`FolderInUseError` at once if another process holds it. ``user`` says what holds it
    (``"epsanet train"``). A folder this call created that holds nothing else at the end is removed."""
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    key = os.path.realpath(directory)
    with _held_here_guard:
        if key in _held_here:
            raise _in_use(directory, _held_here[key])
        fd = _lock(path, directory)
        _held_here[key] = f"{user} pid {os.getpid()} on {socket.gethostname()}"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{_held_here[key]}\n".encode(), 0)
        try:
            yield directory
        finally:
            os.ftruncate(fd, 0)
            if created and [p.name for p in directory.iterdir()] == [LOCK_FILE]:
                path.unlink()
                directory.rmdir()
    finally:
        with _held_here_guard:
            del _held_here[key]
            os.close(fd)


def _lock(path: Path, directory: Path) -> int:
    """An open descriptor of ``path`` locked by this process (a lock file removed by its last
    holder while this process opened it is opened again)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:
            return fd
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                os.close(fd)
                raise
            holder = _holder(fd)
            os.close(fd)
            raise _in_use(directory, holder) from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            directory.mkdir(parents=True, exist_ok=True)
        os.close(fd)


def _in_use(directory: Path, holder: Optional[str]) -> FolderInUseError:
    return FolderInUseError(
        f"{directory} is in use by {holder or 'another process'}: wait for it to finish, or choose another --output-dir"
    )


def _holder(fd: int) -> Optional[str]:
    """Who holds the lock, as its holder wrote it (``epsanet train pid 123 on host``). The holder
    writes just after locking: wait briefly for the line of a live process."""
    for _ in range(50):
        line = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        words = line.split()
        if len(words) >= 4 and words[-4] == "pid" and words[-3].isdigit():
            pid, host = int(words[-3]), words[-1]
            if host != socket.gethostname() or _alive(pid):
                return line
        time.sleep(0.01)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
