"""Start ``contdepth reproduce`` detached, after listing the runs it has to do."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .procs import start_detached


def reproduce_command(
    study: str, out: Path, reproduce_flags: Sequence[str], train_flags: Sequence[str], *, dry_run: bool = False
) -> list[str]:
    """``python -m contdepth reproduce STUDY --out OUT [flags] -- [train flags]``."""
    cmd = [sys.executable, "-m", "contdepth", "reproduce", study, "--out", str(out), *reproduce_flags]
    if dry_run:
        cmd.append("--dry-run")
    return cmd + ["--", *train_flags]


def start_dry_run(command: Sequence[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start the ``--dry-run`` of a reproduce ``command`` (it runs while the set-up goes on)."""
    return subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def runs_to_do(dry_run: subprocess.Popen, timeout_s: float = 300.0) -> tuple[list[str], str]:
    """Run folder names the dry run lists, and its error output when it fails."""
    out, err = dry_run.communicate(timeout=timeout_s)
    if dry_run.returncode != 0:
        return [], (err or out).strip()
    names = []
    for line in out.splitlines():
        words = shlex.split(line)
        if "--out" in words[:-1]:
            names.append(Path(words[words.index("--out") + 1]).name)
    return names, ""


PLAN_PRINTED = ("predicted end:", "runs in", "not started:")  # reproduce's plan, or its "all done" line


def launch(
    command: Sequence[str],
    log: Path,
    env: dict[str, str],
    cwd: Path,
    *,
    settle_s: float = 120.0,
    until: Sequence[str] = PLAN_PRINTED,
) -> tuple[int, int | None, int]:
    """Start ``command`` detached with output to ``log``; wait up to ``settle_s`` for one of ``until`` in the
    log (the printed plan) or for the process to end. Returns the pid, its exit code (None while it runs) and
    where its output starts in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.is_file() else 0
    proc = start_detached(command, log, cwd=cwd, env=env)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and proc.poll() is None:
        if any(marker in text_since(log, offset) for marker in until):
            break
        time.sleep(0.5)
    return proc.pid, proc.poll(), offset


def text_since(log: Path, offset: int) -> str:
    """What ``log`` holds from byte ``offset`` on."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""
