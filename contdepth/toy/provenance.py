"""Provenance of a run: command line, git commit, versions, seed, date."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch


def git_commit(where: Path | None = None) -> str | None:
    """HEAD of the repository holding ``where`` (default: this package), ``+dirty`` if modified; None outside git."""
    where = Path(__file__).resolve().parent if where is None else where
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def provenance(command: Sequence[str], seed: int) -> dict:
    """A JSON-ready record of how a result was produced."""
    return {
        "command": " ".join(command),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
