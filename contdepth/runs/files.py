"""The names of a run folder's files, spelled here alone: every module that reads or writes a run folder
takes them from this module."""

from __future__ import annotations

from pathlib import Path

CHECKPOINT = "checkpoint.pt"
"""Float32 weights, optimiser, schedule, data order and RNG states: what ``--resume`` continues."""
CONFIG = "config.json"
"""The run's settings."""
METRICS = "metrics.jsonl"
"""One line per finished epoch."""
RESULTS = "results.json"
"""The outcome, written at every checkpoint; ``"complete"`` once the last epoch is done."""
WEIGHTS = "weights.fp16.pt"
"""The trained weights in float16, kept by a finished run."""
LOG = "train.log"
"""The output of a run that a study started."""
CURVES = "curves.png"
"""Loss and accuracy by epoch."""
MOMENTUM_PLOT = "momentum.png"
"""LM's learned momentum ``k`` by block (LM models)."""
PLOTS = (CURVES, MOMENTUM_PLOT)
"""The figures a run draws."""
RUN_FILES = (CHECKPOINT, CONFIG, METRICS, RESULTS, WEIGHTS, *PLOTS)
"""The files a run writes (``--overwrite`` removes these, and only these, before the new run writes its own)."""


def run_files(folder: Path) -> list[str]:
    """The run files present in ``folder`` (with leftover ``.tmp`` files of an interrupted save)."""
    return [n for n in RUN_FILES if (folder / n).exists() or (folder / f"{n}.tmp").exists()]
