"""The commit a result was produced at: from git, or from ``$CONTDEPTH_GIT_COMMIT`` in a copy without ``.git``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
