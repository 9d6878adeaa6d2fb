"""Child processes with a log file and a time limit that stops the whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path


def run_logged(
    cmd: Sequence[str], log: Path, timeout_s: float, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> int | None:
    """Run ``cmd`` with stdout+stderr to ``log``; its exit code, or None when stopped at ``timeout_s``."""
    proc = start_detached(cmd, log, cwd=cwd, env=env, append=False)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        return None


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads, SIGKILL it after ``grace_s``."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start_detached(
    cmd: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    append: bool = True,
) -> subprocess.Popen:
    """Start ``cmd`` in its own session (it outlives this process and its terminal; its group can be
    stopped whole), its stdout+stderr appended to ``log`` (or replacing it: ``append=False``)."""
    with open(log, "a" if append else "w") as out:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    return proc
