"""Where a result came from: command line, git commit, device, versions, seed and date (UTC).

Every result file (a training run's, ``analyze``'s, ``demo``'s, a benchmark's) starts from
:func:`provenance`; training adds how it computed. The commit comes from git, or from
``$CONTDEPTH_GIT_COMMIT`` in a copy of the checkout without ``.git``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

COMMIT_ENV = "CONTDEPTH_GIT_COMMIT"  # the commit, for a copy of the checkout without .git


def git_commit(where: Path | None = None, timeout: float = 10.0) -> str | None:
    """HEAD of the repository holding ``where`` (default: this package), ``+dirty`` when tracked files
    differ from it; None outside git (or without git)."""
    where = Path(__file__).resolve().parent if where is None else where

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def commit_and_source(where: Path | None = None) -> tuple[str | None, str | None]:
    """The commit from git, else from ``$CONTDEPTH_GIT_COMMIT``; and where it came from (``git``, the variable)."""
    commit = git_commit(where)
    if commit is not None:
        return commit, "git"
    given = os.environ.get(COMMIT_ENV, "").strip()
    return (given, f"${COMMIT_ENV}") if given else (None, None)


def device_name(device: str | torch.device = "cpu") -> str:
    """``cuda: <GPU name>``, or ``cpu: <CPU model> (<n> logical cores, torch threads <t>)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:  # Linux names the model only here
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu: {cpu} ({os.cpu_count()} logical cores, torch threads {torch.get_num_threads()})"


def provenance(
    command: Sequence[str] | None, seed: int | None, device: str | torch.device = "cpu", *, repo: Path | None = None
) -> dict[str, Any]:
    """The JSON-ready record of how a result was produced.

    Args:
        command: the command line that reproduces it (default: this process's, as typed).
        seed: the seed it used (None when nothing is random).
        device: where it computed.
        repo: the checkout whose commit is recorded (default: the one holding this package).
    """
    if command is None:
        command = [Path(sys.argv[0]).name, *sys.argv[1:]]
    commit, source = commit_and_source(repo)
    return {
        "command": shlex.join(command),
        "git_commit": commit,
        "git_commit_from": source,
        "device": device_name(device),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
