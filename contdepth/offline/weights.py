"""fp16 weights of finished runs: the model's state dict alone, half the size of its float32 tensors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..train.checkpoint import load, save_atomic

CHECKPOINT = "checkpoint.pt"


def finished_runs(study_out: Path) -> list[Path]:
    """Run folders with a complete, not diverged ``results.json`` and a checkpoint."""
    out = []
    for results in sorted(study_out.glob("*/results.json")):
        try:
            res = json.loads(results.read_text())
        except (OSError, ValueError):
            continue
        if res.get("complete") and not res.get("diverged") and (results.parent / CHECKPOINT).is_file():
            out.append(results.parent)
    return out


def choose(study_out: Path, wanted: Sequence[str] | None) -> tuple[list[Path], list[str]]:
    """The finished runs named in ``wanted`` (all when None) and the names that are not finished runs."""
    finished = {p.name: p for p in finished_runs(study_out)}
    if wanted is None:
        return list(finished.values()), []
    return [finished[n] for n in wanted if n in finished], [n for n in wanted if n not in finished]


def write_half(run: Path, dest: Path) -> Path:
    """``dest/<run name>.pt``: the run's model state dict with floating tensors in float16."""
    state = load(run / CHECKPOINT)["model"]
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{run.name}.pt"
    save_atomic(half, path)  # a full disk is an OSError naming the file, and leaves no partial file
    return path
