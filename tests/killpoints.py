"""Runs `contdepth` commands in forked processes that die by SIGKILL at a chosen point, as ``kill -9`` would.

``python tests/killpoints.py`` serves requests: one JSON object a line on stdin, ``{"argv": [...], "kill":
POINT or null, "log": PATH or null, "env": {...}}``; for each it forks a child that runs
``contdepth.cli.main(argv)`` with its output appended to ``log`` and kills itself at ``POINT``, and answers
``{"code": N}`` (the exit status, ``-9`` for a kill). The server imports torch once and never computes, so
its children start in milliseconds and safely. :class:`Killer` is the client the tests use.

A point is ``NAME`` or ``NAME:N`` (the N-th time, default the first):

- ``startup``: before the run folder is made (the model built, the data read);
- ``config``: just after ``config.json`` is written;
- ``step``: just after an optimiser step (``step:3`` is batch 1 of epoch 2 with two batches an epoch);
- ``checkpoint``, ``weights``: half-way through writing ``checkpoint.pt`` or ``weights.fp16.pt``
  (half of the bytes are in the ``.tmp`` file);
- ``metrics``, ``results``: half-way through writing ``metrics.jsonl`` or ``results.json``;
- ``done``: once the command has returned, before the process exits.

Plots are replaced by tiny stand-ins in the children (matplotlib would take most of a tiny run's time).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KILLED = -signal.SIGKILL


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _counter(nth: int):
    seen = [0]

    def hit() -> bool:
        seen[0] += 1
        return seen[0] == nth

    return hit


def install(point: str) -> None:
    """Make this process die at ``point`` (see the module docstring)."""
    import torch

    from contdepth.runs import files, folder, records

    name, _, nth = point.partition(":")
    hit = _counter(int(nth or 1))
    if name == "startup":

        def create(self, *args, **kwargs):
            _die()

        folder.RunFolder.create = create
    elif name == "config":
        real_json = records.write_json

        def write_json(path, obj):
            real_json(path, obj)
            if Path(path).name == files.CONFIG and hit():
                _die()

        records.write_json = write_json
    elif name == "step":
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(lambda optimizer, args, kwargs: _die() if hit() else None)
    elif name in ("checkpoint", "weights"):
        target = (files.CHECKPOINT if name == "checkpoint" else files.WEIGHTS) + ".tmp"
        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            if str(getattr(f, "name", "")).endswith(target) and hit():
                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                _die()
            return real_save(obj, f, *args, **kwargs)

        torch.save = save
    elif name in ("metrics", "results"):
        target = (files.METRICS if name == "metrics" else files.RESULTS) + ".tmp"
        real_write = Path.write_text

        def write_text(self, text, *args, **kwargs):
            if self.name == target and hit():
                real_write(self, text[: len(text) // 2], *args, **kwargs)
                _die()
            return real_write(self, text, *args, **kwargs)

        Path.write_text = write_text
    elif name != "done":
        raise ValueError(f"unknown kill point {point!r}")


def quick_plots() -> None:
    """Plots as tiny files: the run folder's layout stays, the seconds matplotlib takes go."""
    from contdepth.train import plots

    def plot(data, path, title):
        Path(path).write_bytes(b"\x89PNG stand-in\n")

    plots.plot_curves = plot
    plots.plot_momentum = plot


def _child(request: dict[str, Any]) -> int:
    from contdepth.cli import main

    log = request.get("log")
    fd = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(request.get("env") or {})
    quick_plots()
    point = request.get("kill")
    if point:
        install(point)
    code = main(request["argv"])
    if point == "done":
        _die()
    return code


def serve() -> None:
    import torch

    import contdepth.cli
    import contdepth.cli.train  # noqa: F401  (imported once, before any fork)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(False)  # its first call imports torch's compiler stack: seconds
    answers = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


class Killer:
    """The client: ``run(argv, kill=POINT, log=PATH)`` runs ``contdepth argv`` in a forked child and returns
    its exit status (:data:`KILLED` when it died at ``POINT``). Close it with :meth:`close`."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def run(
        self,
        argv: list[str],
        *,
        kill: str | None = None,
        log: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"argv": argv, "kill": kill, "log": None if log is None else str(log), "env": env or {}}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the kill-point server ended")
        return int(json.loads(answer)["code"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


if __name__ == "__main__":
    serve()
