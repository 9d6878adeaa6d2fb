"""Time planning for a study: how long each run takes, and which runs fit before a deadline.

Pure functions of measured times and a clock value (seconds), so a fake clock tests them.
Runs are list-scheduled: whenever one of ``jobs`` slots is free, the first pending run (in
priority order) that is predicted to finish by the deadline starts. :func:`plan` simulates exactly
what :func:`next_to_start` does at run time.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FULL_TRAIN_IMAGES = 50_000  # CIFAR-10 and CIFAR-100
FULL_TEST_IMAGES = 10_000
DEFAULT_STARTUP_SECONDS = 30.0  # process start, data load, first-batch set-up, when nothing measured it


@dataclass(frozen=True)
class Estimate:
    """Predicted cost of a run: ``startup_seconds + epochs * epoch_seconds``; ``source`` says where from."""

    epoch_seconds: float
    startup_seconds: float = DEFAULT_STARTUP_SECONDS
    source: str = ""

    def seconds(self, epochs: int) -> float:
        return self.startup_seconds + max(epochs, 0) * self.epoch_seconds


@dataclass(frozen=True)
class Pending:
    """A run waiting to start: its name and predicted duration in seconds (None: unknown)."""

    name: str
    seconds: float | None


@dataclass(frozen=True)
class Planned:
    """A run the plan starts at ``start`` and predicts finished at ``end`` (clock seconds)."""

    name: str
    start: float
    end: float


def median_epoch_seconds(rows: Iterable[dict]) -> float | None:
    """Median ``seconds`` of metrics.jsonl rows (epoch 1's warm-up weighs little); None without rows."""
    seconds = [float(r["seconds"]) for r in rows if isinstance(r.get("seconds"), (int, float))]
    return statistics.median(seconds) if seconds else None


def epoch_seconds_from_burst(
    row: dict, train_images: int, test_images: int, target_train: int, target_test: int
) -> float:
    """Scale a short burst's epoch to a full one.

    ``row`` is a metrics.jsonl row of the burst (``seconds`` = train + test time, ``images_per_s`` =
    train images per second); the burst trained ``train_images`` and tested ``test_images``.
    """
    train_s = train_images / max(float(row["images_per_s"]), 1e-9)
    test_s = max(float(row["seconds"]) - train_s, 0.0)
    per_test_image = test_s / max(test_images, 1)
    return target_train * train_s / max(train_images, 1) + target_test * per_test_image


def next_to_start(pending: Sequence[Pending], now: float, deadline: float | None) -> Pending | None:
    """The first run (in the given order) predicted to finish by ``deadline``; any first run without one."""
    for run in pending:
        if deadline is None:
            return run
        if run.seconds is not None and now + run.seconds <= deadline:
            return run
    return None


def plan(
    pending: Sequence[Pending], *, jobs: int, now: float, deadline: float | None, busy_until: Sequence[float] = ()
) -> tuple[list[Planned], list[Pending]]:
    """Simulate list scheduling on ``jobs`` slots from ``now``.

    ``busy_until``: predicted ends of runs already going (they hold slots). Returns the planned runs
    in start order and the runs left over (never started: no time, or an unknown duration with a
    deadline). Without a deadline every run is planned; unknown durations then end at ``inf``.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    slots = sorted(max(now, t) for t in busy_until)[:jobs]
    slots += [now] * (jobs - len(slots))
    heapq.heapify(slots)
    left = list(pending)
    planned: list[Planned] = []
    while left:
        free = slots[0]
        run = next_to_start(left, free, deadline)
        if run is None:
            break  # nothing fits in the earliest free slot, so nothing fits in a later one
        left.remove(run)
        end = free + (math.inf if run.seconds is None else run.seconds)
        heapq.heapreplace(slots, end)
        planned.append(Planned(run.name, free, end))
    return planned, left


def finish_time(planned: Sequence[Planned], busy_until: Sequence[float], now: float) -> float:
    """When the last planned or running run is predicted to end (``now`` when nothing is)."""
    return max([now, *busy_until, *(p.end for p in planned)])


def format_duration(seconds: float | None) -> str:
    """``95`` -> ``1m35s``, ``7384`` -> ``2h03m``; None or inf -> ``?``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(int(round(seconds)), 0)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
