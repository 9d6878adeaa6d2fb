"""What a run folder holds, as its files and its lock say: the states of the run folder's state machine.

:func:`folder_state` reads the files alone (one state per way forward); :func:`run_state` adds the lock
(whether a run is done, held by another process, to resume or to start afresh). What a start of
``contdepth train`` does in each state is :mod:`contdepth.train.start`'s decision (the table is in
docs/troubleshooting.md).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from .files import CHECKPOINT, METRICS, WEIGHTS, run_files
from .lock import holder
from .records import read_results


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
