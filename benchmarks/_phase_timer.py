"""Where a training step's time goes: ``contdepth train`` run with its phases timed (``cpu_training.py --vs-loop``).

``python3 benchmarks/_phase_timer.py PROFILE.json train ARGS...`` runs ``contdepth train ARGS...`` as the
command line does, with ``time.perf_counter`` around the loader's batches, the step, the optimiser, the
schedule, the epoch meter (loss, accuracy, divergence watch) and the progress report (a few microseconds
a step), and writes into ``PROFILE.json`` the milliseconds per step of each phase over the epochs after
the first of the run (which compiles), in wall time and in process CPU time (steadier on a shared machine):

* ``data``: the next batch (order, crop, flip, normalisation);
* ``forward_backward``: the step less its optimiser, schedule and meter;
* ``optimiser``: ``zero_grad`` and ``step``;
* ``bookkeeping``: the rest of the epoch's loop: schedule, meter, progress, the loop itself (each also alone).

On a CPU every operator completes before it returns, so wall time between calls is the time of the calls.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PHASES = ("data", "forward_backward", "optimiser", "bookkeeping")
CLOCKS = (time.perf_counter, time.process_time)  # wall seconds, and CPU seconds of the process (all its threads)


def now() -> tuple[float, float]:
    """Both clocks (:data:`CLOCKS`) now."""
    return time.perf_counter(), time.process_time()


class Phases:
    """Seconds per phase of the timed training steps, summed over ``steps``: ``wall`` and ``cpu`` (process CPU)."""

    def __init__(self) -> None:
        self.wall = dict.fromkeys(PHASES, 0.0)
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.steps = 0

    def add(self, phase: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Add the time from ``start`` to ``end`` (both from :func:`now`) to ``phase``."""
        self.wall[phase] = self.wall.get(phase, 0.0) + end[0] - start[0]
        self.cpu[phase] = self.cpu.get(phase, 0.0) + end[1] - start[1]

    def ms_per_step(self, cpu: bool = False) -> dict[str, float]:
        """Milliseconds per step of each phase, and ``total`` of the four of :data:`PHASES`."""
        per = {k: 1e3 * v / max(self.steps, 1) for k, v in (self.cpu if cpu else self.wall).items()}
        return {**per, "total": sum(per[k] for k in PHASES)}

    def summary(self) -> dict[str, Any]:
        return {"ms_per_step": self.ms_per_step(), "cpu_ms_per_step": self.ms_per_step(cpu=True), "steps": self.steps}


class _Recorder:
    """Both clocks' seconds in the wrapped calls while a timed epoch runs."""

    def __init__(self) -> None:
        self.raw: dict[str, tuple[float, float]] = {}
        self.active = False
        self.steps = 0
        self.epochs_seen = 0
        self.epochs: list[dict[str, float]] = []  # the timed epochs: images, wall and process CPU seconds

    def add(self, key: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        if self.active:
            wall, cpu = self.raw.get(key, (0.0, 0.0))
            self.raw[key] = (wall + end[0] - start[0], cpu + end[1] - start[1])

    def phases(self) -> Phases:
        keys = ("epoch", "data", "step", "optimiser", "schedule", "meter", "progress")
        p = Phases()
        p.steps = self.steps
        for clock, into in enumerate((p.wall, p.cpu)):
            r = {k: self.raw.get(k, (0.0, 0.0))[clock] for k in keys}
            into["data"] = r["data"]
            into["optimiser"] = r["optimiser"]
            into["forward_backward"] = r["step"] - r["optimiser"] - r["schedule"] - r["meter"]
            into["bookkeeping"] = r["epoch"] - r["data"] - r["step"] + r["schedule"] + r["meter"]
            for key in ("schedule", "meter", "progress"):  # parts of the bookkeeping, shown apart
                into[f"bookkeeping_{key}"] = r[key]
        return p


def _timed(rec: _Recorder, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = now()
        try:
            return fn(*args, **kwargs)
        finally:
            rec.add(key, start, now())

    return wrapper


def install(rec: _Recorder) -> Callable[[], None]:
    """Wrap the loop's parts (classes, so every instance the trainer builds is timed); returns the undoing."""
    import torch

    from contdepth.data import DeviceLoader
    from contdepth.train.progress import Progress
    from contdepth.train.state import EpochMeter
    from contdepth.train.trainer import Trainer

    batches = DeviceLoader.batches

    def timed_batches(self: DeviceLoader, start: int = 0) -> Iterator[Any]:
        it = batches(self, start)
        while True:
            before = now()
            try:
                item = next(it)
            except StopIteration:
                return
            if self.train:
                rec.add("data", before, now())
            yield item

    train_epoch = Trainer._train_epoch

    def timed_epoch(self: Trainer, epoch: int) -> bool:
        rec.epochs_seen += 1
        rec.active = rec.epochs_seen > 1  # the session's first epoch compiles
        steps, start = rec.steps, now()
        try:
            return train_epoch(self, epoch)
        finally:
            end = now()
            if rec.active:
                rec.add("epoch", start, end)
                images = (rec.steps - steps) * self.cfg.batch_size
                rec.epochs.append({"images": images, "seconds": end[0] - start[0], "cpu_seconds": end[1] - start[1]})
            rec.active = False

    train_step = Trainer._train_step

    def counted_step(self: Trainer, x: Any, y: Any) -> None:
        train_step(self, x, y)
        rec.steps += rec.active

    lr = torch.optim.lr_scheduler.LambdaLR
    wrapped: list[tuple[Any, str, Callable[..., Any]]] = [
        (DeviceLoader, "batches", timed_batches),
        (Trainer, "_train_epoch", timed_epoch),
        (Trainer, "_train_step", _timed(rec, "step", counted_step)),
        (torch.optim.SGD, "step", _timed(rec, "optimiser", torch.optim.SGD.step)),
        (torch.optim.SGD, "zero_grad", _timed(rec, "optimiser", torch.optim.SGD.zero_grad)),
        (lr, "step", _timed(rec, "schedule", lr.step)),
        (EpochMeter, "observe", _timed(rec, "meter", EpochMeter.observe)),
        (Progress, "step", _timed(rec, "progress", Progress.step)),
    ]
    before = [(cls, name, cls.__dict__.get(name)) for cls, name, _ in wrapped]
    for cls, name, fn in wrapped:
        setattr(cls, name, fn)

    def undo() -> None:
        for cls, name, fn in before:
            if fn is None:
                delattr(cls, name)
            else:
                setattr(cls, name, fn)

    return undo


def main(argv: list[str]) -> int:
    out, command = Path(argv[0]), argv[1:]
    from contdepth.cli import main as contdepth_main

    rec = _Recorder()
    undo = install(rec)
    try:
        code = contdepth_main(command)
    finally:
        undo()
    phases = rec.phases()
    cpu = [e["images"] / e["cpu_seconds"] for e in rec.epochs if e["cpu_seconds"] > 0]
    profile = {**phases.summary(), "images_per_cpu_s": statistics.median(cpu) if cpu else None, "epochs": rec.epochs}
    out.write_text(json.dumps(profile, indent=1) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
