"""One process at a time in an output folder: an exclusive lock on ``<folder>/.lock``.

The lock is the kernel's (``flock``): it is released when its holder exits, however it exits
(even SIGKILL), so a crashed run never leaves a stale lock behind. The file holds the holder's
pid and host, which the refusal names. Where ``fcntl`` does not exist (Windows) no lock is taken.
"""
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Iterator, Optional, Union

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["FolderInUseError", "exclusive_folder", "LOCK_FILE"]

LOCK_FILE = ".lock"


class FolderInUseError(RuntimeError):
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
    fd = _lock(path, directory)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{user} pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield directory
        finally:
            os.ftruncate(fd, 0)
            if created and [p.name for p in directory.iterdir()] == [LOCK_FILE]:
                path.unlink()
                directory.rmdir()
    finally:
        os.close(fd)


def _lock(path: Path, directory: Path) -> int:
    """An open descriptor of ``path`` locked by this process (a lock file removed by its last
    holder while this process opened it is opened again)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderInUseError(
                f"{directory} is in use by {holder or 'another process'}: wait for it to finish, or choose another "
                "--output-dir"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            directory.mkdir(parents=True, exist_ok=True)
        os.close(fd)


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
