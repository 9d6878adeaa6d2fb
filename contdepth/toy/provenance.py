"""Provenance of a run: command line, git commit, versions, seed, date."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Sequence

import torch

from ..gitinfo import git_commit


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
