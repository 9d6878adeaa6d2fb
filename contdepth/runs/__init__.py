"""The run-folder format: what ``contdepth train`` writes into ``--out`` and everything else reads back.

A run folder holds ``config.json`` (the settings), ``metrics.jsonl`` (one line per epoch),
``results.json`` (the outcome so far), ``checkpoint.pt`` (what ``--resume`` continues) and, once the run
is finished, ``weights.fp16.pt``. This package knows those files and nothing of training:

- :mod:`~contdepth.runs.files`: the files' names, spelled there alone;
- :mod:`~contdepth.runs.state`: what a folder holds (:func:`folder_state`) and whether its run is done,
  held by another process, to resume or to start afresh (:func:`run_state`);
- :mod:`~contdepth.runs.folder`: the folder itself, checked, created, locked and cleared for a run;
- :mod:`~contdepth.runs.records`: ``config.json``, ``metrics.jsonl`` and ``results.json``, written
  atomically and read back;
- :mod:`~contdepth.runs.checkpoint`: what a checkpoint holds, written atomically and read with
  ``weights_only``;
- :mod:`~contdepth.runs.weights`: the fp16 weights, and the latest weights a folder holds;
- :mod:`~contdepth.runs.lock`: the lock one process holds on a folder.

The training loop (:mod:`contdepth.train`), the study runner, the analysis, the benchmarks and the
offline tooling read and write run folders through it. Loading a run back as a module,
:func:`contdepth.train.load_run`, builds the model from the run's settings and stays with training.

>>> from contdepth.runs import read_results, run_state      # doctest: +SKIP
>>> run_state("runs/lm20")                                   # RunState.DONE, HELD, RESUME or FRESH
>>> read_results("runs/lm20")["final_test_error"]
"""

from .checkpoint import CheckpointError
from .folder import RunFolder, RunFolderError
from .lock import FolderLock, FolderLocked
from .records import DamagedResults, read_metrics, read_results
from .state import NO_PROGRESS, FolderState, RunState, folder_state, run_state
from .weights import TrainedState, export_weights, read_trained_state

__all__ = [
    "NO_PROGRESS",
    "CheckpointError",
    "DamagedResults",
    "FolderLock",
    "FolderLocked",
    "FolderState",
    "RunFolder",
    "RunFolderError",
    "RunState",
    "TrainedState",
    "export_weights",
    "folder_state",
    "read_metrics",
    "read_results",
    "read_trained_state",
    "run_state",
]
