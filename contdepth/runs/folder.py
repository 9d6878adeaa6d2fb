"""The run folder itself: checked, created and locked before a run starts, and left as it was when the
start fails.

One process at a time writes a run folder (an OS lock that dies with its process). What a start does
with the folder it finds is decided by :mod:`contdepth.train.start` (the table is in docs/troubleshooting.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import RUN_FILES
from .lock import LOCK_NAME, FolderLock, FolderLocked


class RunFolderError(RuntimeError):
    """The run folder cannot be used (holds another run, is in use, is not a writable folder, holds epochs it
    cannot continue)."""


def check_out_path(out: str | os.PathLike[str]) -> Path:
    """``out`` as a path, refusing an empty name (it is not the current directory) and existing files."""
    if not str(out).strip():
        raise RunFolderError("--out is empty; name the run folder (for example --out runs/lm20)")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--out {path} is a file, not a folder; choose another --out")
    return path


def _missing_parents(path: Path) -> list[Path]:
    """``path`` and those of its ancestors that do not exist yet, deepest first."""
    out = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def _describe(err: OSError) -> str:
    return err.strerror or str(err)


class RunFolder:
    """Holds a run folder for one process.

    :meth:`open` checks the folder early (and locks it when it exists); :meth:`create` makes and
    locks it once the run is ready to write; :meth:`clear` removes what an earlier start left; :meth:`close`
    lets go. If the start fails, :meth:`abandon` releases the lock and removes the folders :meth:`create`
    made, so a refused or interrupted start-up leaves nothing behind. Whether the files found may be
    replaced or continued is :func:`contdepth.train.start.plan`'s decision.

    Args:
        out: the folder.
        resume: the run is to be continued (refused together with ``overwrite``).
        overwrite: the run files found are to be replaced.
    """

    def __init__(self, out: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False) -> None:
        if resume and overwrite:
            raise RunFolderError("--resume continues the run in --out and --overwrite replaces it: choose one")
        self.path = check_out_path(out)
        self.resume = resume
        self.overwrite = overwrite
        self._created: list[Path] = []
        self._lock: FolderLock | None = None

    @property
    def locked(self) -> bool:
        return self._lock is not None

    def open(self) -> RunFolder:
        """Check the folder before any work is done: lock it if it exists, refuse what cannot work."""
        path = self.path
        if path.is_dir():
            self._lock_folder()
        else:
            parent = next((p for p in path.absolute().parents if p.exists()), None)
            if parent is not None and not parent.is_dir():
                raise RunFolderError(
                    f"cannot create the run folder {path.absolute()}: {parent} is a file; choose another --out"
                )
            if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
                raise RunFolderError(
                    f"cannot create the run folder {path.absolute()}: {parent} is not writable "
                    "(read-only file system or no permission); choose another --out"
                )
        return self

    def create(self) -> RunFolder:
        """Make the folder (and its missing parents) and lock it, if :meth:`open` could not."""
        if self.locked:
            return self
        path = self.path
        created = _missing_parents(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(
                f"cannot create the run folder {path.absolute()}: {_describe(err)}; choose another --out"
            ) from None
        self._created = created
        self._lock_folder()
        return self

    def _lock_folder(self) -> None:
        path = self.path
        try:
            self._lock = FolderLock(path, what="run").acquire()
        except FolderLocked as err:
            self.abandon()
            raise RunFolderError(str(err)) from None
        except OSError as err:
            self.abandon()
            raise RunFolderError(
                f"cannot write in the run folder {path.absolute()}: {_describe(err)}; choose another --out"
            ) from None

    def clear(self, found: bool | None = None) -> None:
        """Remove the ``.tmp`` files of a save that a killed process left, and with ``found`` (default:
        ``overwrite``) the run files an earlier start left; call once the new run is ready to write."""
        if not self.locked:
            return
        everything = self.overwrite if found is None else found
        for name in RUN_FILES:
            for p in (self.path / name, self.path / f"{name}.tmp") if everything else (self.path / f"{name}.tmp",):
                p.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the lock (the folder and its files stay)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def abandon(self) -> None:
        """Release the lock and remove the folders :meth:`create` made, when nothing else was written there."""
        held = self.locked
        self.close()
        for folder in self._created:  # deepest first
            lock_file = folder / LOCK_NAME
            if held and folder == self.path.absolute():
                lock_file.unlink(missing_ok=True)
            try:
                folder.rmdir()  # only empty folders go
            except OSError:
                break
        self._created = []
