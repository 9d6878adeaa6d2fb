"""A study's runs and their folders: what each run is, what its folder holds, what earlier runs measured.

Each run is a normal `contdepth train` run folder ``DIR/<row>-s<seed>/`` (its state is read by
:func:`contdepth.runs.state.folder_state`), with its output in ``train.log``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..runs.files import CONFIG, METRICS
from ..runs.records import read_dict, read_metrics
from ..runs.state import NO_PROGRESS, FolderState, folder_state
from ..train.config import TrainConfig, differences
from .catalog import RunSpec

TAIL_LINES = 12
# Settings that change how long an epoch takes: earlier runs predict a run only where these agree.
TIMING_KEYS = (
    "model",
    "dataset",
    "noise",
    "scheme",
    "steps_per_block",
    "batch_size",
    "eval_batch_size",
    "subset",
    "test_subset",
    "amp",
    "channels_last",
    "compile",
    "compile_mode",
    "deterministic",
    "device",
)


@dataclass
class RunJob:
    """One run of a study: row ``spec`` with ``seed`` in ``folder``, trained with ``flags`` into ``config``."""

    name: str
    spec: RunSpec
    seed: int
    folder: Path
    flags: list[str]  # `contdepth train` flags, --resume excluded
    config: TrainConfig

    def command(self, resume: bool = False, overwrite: bool = False) -> list[str]:
        """The `contdepth train ...` words (``--resume`` to continue a checkpoint, ``--overwrite`` to replace
        trained epochs whose checkpoint is gone)."""
        return [
            "contdepth",
            "train",
            *self.flags,
            *(["--resume"] if resume else []),
            *(["--overwrite"] if overwrite else []),
        ]

    def next_command(self) -> list[str]:
        """The command that continues this run from what its folder holds now (a folder without progress
        needs no flag: the run starts there again)."""
        state = folder_state(self.folder)
        return self.command(
            resume=state in (FolderState.SAVED, FolderState.UNFINISHED), overwrite=state is FolderState.LOST
        )

    @property
    def done(self) -> bool:
        """Whether the run is finished, with its weights: nothing is left to run."""
        return folder_state(self.folder) is FolderState.DONE


def settings_conflict(job: RunJob) -> list[str]:
    """How the run already in ``job.folder`` differs from ``job.config`` (empty: none there, or the same)."""
    if folder_state(job.folder) in (*NO_PROGRESS, FolderState.LOST):
        return []
    saved = read_dict(job.folder / CONFIG)
    if saved is None:
        return []
    return differences(TrainConfig.from_dict(saved), job.config.to_dict())


def epochs_done(folder: Path) -> int:
    try:
        return len(read_metrics(folder / METRICS))
    except (OSError, ValueError):
        return 0


def timing_key(config: dict) -> tuple:
    return tuple(config.get(k) for k in TIMING_KEYS)


def measured_epoch_seconds(directory: Path) -> dict[tuple, list[float]]:
    """Epoch seconds of every run folder under ``directory``, grouped by :func:`timing_key` of its config."""
    out: dict[tuple, list[float]] = {}
    for config_path in sorted(directory.glob(f"*/{CONFIG}")):
        config = read_dict(config_path)
        try:
            rows = read_metrics(config_path.parent / METRICS)
        except (OSError, ValueError):
            continue
        seconds = [float(r["seconds"]) for r in rows if isinstance(r.get("seconds"), (int, float))]
        if config is not None and seconds:
            out.setdefault(timing_key(config), []).extend(seconds)
    return out


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
