"""An exclusive lock on a folder that dies with its process (``flock`` / ``msvcrt.locking``).

A killed process never leaves a stale lock: the operating system releases it. The lock file
``.lock`` holds the holder's PID so that a refused process can say who holds the folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

LOCK_NAME = ".lock"


class FolderLocked(RuntimeError):
    """Another live process holds the folder's lock."""


def _try_lock(fh: IO[str]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder(folder: str | os.PathLike[str]) -> str | None:
    """The PID (as its lock file says) of the live process that holds ``folder``'s lock, or None when none does.

    Looks without taking the lock for long: a free lock is taken and let go at once, its file left as it was.
    """
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return None
    try:
        fh = open(path, "a+")
    except OSError:
        return None
    with fh:
        if _try_lock(fh):
            return None  # closing the descriptor lets go of it
        fh.seek(0)
        return fh.read().strip() or "unknown"


class FolderLock:
    """``with FolderLock(folder, what="run"):`` holds ``folder/.lock`` until the block ends or the process dies.

    Raises :class:`FolderLocked` naming the holder's PID when another process holds it.
    The folder must exist.
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "folder") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fh: IO[str] | None = None

    def acquire(self) -> FolderLock:
        fh = open(self.path, "a+")
        if not _try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise FolderLocked(
                f"{self.folder} is in use by another {self.what} (process {holder}); "
                "wait for it to finish or stop it first"
            )
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the lock
            self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
