"""The finished runs of a study and their fp16 weights, as the library keeps them (``weights.fp16.pt``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from contdepth.runs.files import CHECKPOINT, WEIGHTS
from contdepth.runs.records import read_results
from contdepth.runs.state import RunState, run_state
from contdepth.runs.weights import export_weights

__all__ = ["WEIGHTS", "choose", "finished_runs", "weights_of"]


def finished_runs(study_out: Path) -> list[Path]:
    """Run folders that are done (:func:`~contdepth.runs.state.run_state`), did not diverge and hold weights
    (``weights.fp16.pt``, or a checkpoint to take them from)."""
    folders = sorted(p for p in study_out.iterdir() if p.is_dir()) if study_out.is_dir() else []
    out = []
    for folder in folders:
        if run_state(folder) is not RunState.DONE or (read_results(folder) or {}).get("diverged"):
            continue
        if (folder / WEIGHTS).is_file() or (folder / CHECKPOINT).is_file():
            out.append(folder)
    return out


def choose(study_out: Path, wanted: Sequence[str] | None) -> tuple[list[Path], list[str]]:
    """The finished runs named in ``wanted`` (all when None) and the names that are not finished runs."""
    finished = {p.name: p for p in finished_runs(study_out)}
    if wanted is None:
        return list(finished.values()), []
    return [finished[n] for n in wanted if n in finished], [n for n in wanted if n not in finished]


def weights_of(run: Path, spare: Path) -> Path:
    """The run's fp16 weights: the ``weights.fp16.pt`` a finished run keeps, else (a run trained before runs
    kept them) exported from its checkpoint to ``spare/<run>.pt``. A full disk is an OSError naming the file,
    and leaves no partial file."""
    own = run / WEIGHTS
    if own.is_file():
        return own
    spare.mkdir(parents=True, exist_ok=True)
    return export_weights(run, spare / f"{run.name}.pt")
