"""The run folder: the names of its files, its state and results, and the folder itself, checked,
created and locked before a run starts and left as it was when the start fails.

Every module that reads or writes a run folder takes the file names from here, and asks
:func:`folder_state` what a folder holds (:func:`run_state`: whether a run is done, held by another
process, to resume or to start afresh).

One process at a time writes a run folder (an OS lock that dies with its process). What a start does
with the folder it finds is decided by :mod:`.start` (the table is in docs/troubleshooting.md).
"""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

from .lock import LOCK_NAME, FolderLock, FolderLocked, holder

CHECKPOINT = "checkpoint.pt"  # float32 weights, optimiser and RNG states: what --resume continues
CONFIG = "config.json"  # the run's settings
METRICS = "metrics.jsonl"  # one line per epoch
RESULTS = "results.json"  # the outcome, written at every checkpoint; "complete" once the last epoch is done
WEIGHTS = "weights.fp16.pt"  # the trained weights in float16, kept by a finished run
LOG = "train.log"  # the output of a run that a study started
CURVES = "curves.png"
MOMENTUM_PLOT = "momentum.png"
PLOTS = (CURVES, MOMENTUM_PLOT)
#: The files a run writes (``--overwrite`` removes these, and only these, before the new run writes its own).
RUN_FILES = (CHECKPOINT, CONFIG, METRICS, RESULTS, WEIGHTS, *PLOTS)


class RunFolderError(RuntimeError):
    """The run folder cannot be used (holds another run, is in use, is not a writable folder, holds epochs it
    cannot continue)."""


class RunState(str, Enum):
    """What a run folder holds, as :func:`run_state` reads it (equal to its value: ``RunState.DONE == "done"``)."""

    DONE = "done"  # results.json says the run is complete
    HELD = "held"  # another live process holds the folder: a run is training there now
    RESUME = "resume"  # a checkpoint to continue from
    FRESH = "fresh"  # no checkpoint: no folder, an empty one, a start that saved none, or a run that lost it

    def __str__(self) -> str:
        return self.value


class FolderState(str, Enum):
    """What the files of a run folder say (:func:`folder_state`; the lock aside), one state per way forward."""

    ABSENT = "absent"  # no folder
    EMPTY = "empty"  # no run file (a dead process's .lock, a study's train.log aside)
    STARTED = "started"  # files of a start that saved no progress: config.json, .tmp files, no epoch's metrics
    SAVED = "saved"  # a checkpoint to continue from (or to write the last epoch's results from)
    UNFINISHED = "unfinished"  # complete, but the fp16 weights were not written (its checkpoint holds them)
    DONE = "done"  # complete
    LOST = "lost"  # trained epochs (metrics rows, weights) whose checkpoint is gone: nothing to continue from

    def __str__(self) -> str:
        return self.value


#: The states that hold no progress: the same command starts the run again there.
NO_PROGRESS = (FolderState.ABSENT, FolderState.EMPTY, FolderState.STARTED)


class DamagedResults(ValueError):
    """A ``results.json`` that cannot be read (the message says why)."""


def read_dict(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing, cannot be read or holds something else."""
    try:
        value = json.loads(Path(path).read_bytes().decode())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


def read_results(folder: str | os.PathLike[str], *, strict: bool = False) -> dict[str, Any] | None:
    """The run's ``results.json`` as a dict; None when there is none.

    A file that cannot be read (not JSON, not an object) is None too, or with ``strict`` a
    :class:`DamagedResults` saying why in a few words.
    """
    path = Path(folder) / RESULTS
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_bytes().decode())
    except (OSError, ValueError) as err:
        if not strict:
            return None
        why = str(err).splitlines()[0][:100] if str(err).strip() else type(err).__name__
        raise DamagedResults(why) from None
    if not isinstance(value, dict):
        if strict:
            raise DamagedResults(f"holds a {type(value).__name__}")
        return None
    return value


def _has_rows(path: Path) -> bool:
    """Whether ``path`` (metrics.jsonl) holds anything but blanks: a file that cannot be read counts as rows."""
    try:
        with open(path, "rb") as fh:
            return any(line.strip() for line in fh)
    except FileNotFoundError:
        return False
    except OSError:
        return True


def folder_state(folder: str | os.PathLike[str]) -> FolderState:
    """What the files in ``folder`` hold (whoever holds its lock): see :class:`FolderState`.

    Progress is a checkpoint, a metrics row, the fp16 weights, or a results.json that counts trained
    epochs; a start that left none of these (a kill during start-up, the first epoch or the first
    checkpoint's write, a first epoch that diverged) is :attr:`FolderState.STARTED`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return FolderState.ABSENT
    results = read_results(folder)
    checkpoint = (folder / CHECKPOINT).is_file()
    weights = (folder / WEIGHTS).is_file()
    if results is not None and results.get("complete"):
        unfinished = checkpoint and not weights and not results.get("diverged")
        return FolderState.UNFINISHED if unfinished else FolderState.DONE
    if checkpoint:
        return FolderState.SAVED
    trained = results is not None and bool(results.get("epochs_done"))
    if weights or trained or _has_rows(folder / METRICS):
        return FolderState.LOST
    return FolderState.STARTED if run_files(folder) else FolderState.EMPTY


def run_state(folder: str | os.PathLike[str], *, locks: bool = True) -> RunState:
    """Whether the run in ``folder`` is done, held by another live process, to resume or to start afresh.

    A complete ``results.json`` is done whoever holds the folder (one whose weights were not written too:
    its checkpoint holds them). ``locks=False`` leaves the lock alone and says what the files alone say
    (never :attr:`RunState.HELD`).
    """
    state = folder_state(folder)
    if state in (FolderState.DONE, FolderState.UNFINISHED):
        return RunState.DONE
    if locks and holder(folder) is not None:
        return RunState.HELD
    return RunState.RESUME if state is FolderState.SAVED else RunState.FRESH


def check_out_path(out: str | os.PathLike[str]) -> Path:
    """``out`` as a path, refusing an empty name (it is not the current directory) and existing files."""
    if not str(out).strip():
        raise RunFolderError("--out is empty; name the run folder (for example --out runs/lm20)")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--out {path} is a file, not a folder; choose another --out")
    return path


def run_files(folder: Path) -> list[str]:
    """The run files present in ``folder`` (with leftover ``.tmp`` files of an interrupted save)."""
    return [n for n in RUN_FILES if (folder / n).exists() or (folder / f"{n}.tmp").exists()]


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
    replaced or continued is :func:`.start.plan`'s decision.

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
