"""The names of a run folder's files, spelled here alone: every module that reads or writes a run folder
takes them from this module."""

from __future__ import annotations

from pathlib import Path

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


def run_files(folder: Path) -> list[str]:
    """The run files present in ``folder`` (with leftover ``.tmp`` files of an interrupted save)."""
    return [n for n in RUN_FILES if (folder / n).exists() or (folder / f"{n}.tmp").exists()]
