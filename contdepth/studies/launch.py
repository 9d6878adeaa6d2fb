"""Starting a study's runs: `contdepth train` subprocesses that die with the study.

On Linux each run is asked to stop (saving a checkpoint) when the study's process ends, even by
``kill -9``. :data:`Launch` is what the runner calls; tests replace it with fake processes.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class Process(Protocol):
    returncode: int | None

    def poll(self) -> int | None: ...
    def send_signal(self, sig: int) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


Launch = Callable[[list[str], dict[str, str], Path], Process]
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the child gets SIGTERM (save a checkpoint and stop) when this process
    dies, even by ``kill -9``: Linux's ``PR_SET_PDEATHSIG``. None where that is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the study died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def launch_subprocess(argv: list[str], env: dict[str, str], log: Path) -> Process:
    """``python -m contdepth train ...`` in its own session (Ctrl-C reaches only the study, which
    passes on one stop request) that ends with the study (:func:`die_with_parent`), stdout and stderr
    appended to ``log``."""
    with open(log, "a") as fh:
        fh.write(f"$ {shlex.join(argv)}\n")
        fh.flush()
        python = [sys.executable, "-m", "contdepth", *argv[1:]]
        return subprocess.Popen(
            python,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
