"""How long a run will take: from its own epochs, from earlier runs with the same settings, or from a
timed burst (a couple of short epochs of each distinct setting, run as the study will run them).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..runs.files import METRICS
from ..runs.records import read_metrics, read_results
from . import planner
from .launch import Launch, launch_subprocess
from .planner import Estimate
from .runner import Runner
from .runs import RunJob, timing_key

BURST_BATCHES = 8  # training batches per calibration epoch
BURST_EPOCHS = 2  # the second epoch is timed; the first (warm-up, compilation) counts as start-up


def history_estimate(
    job: RunJob, measured: dict[tuple, list[float]], startup_seconds: float = planner.DEFAULT_STARTUP_SECONDS
) -> Estimate | None:
    """From the run's own epochs, else from earlier runs in the study folder with the same timing settings."""
    try:
        own = read_metrics(job.folder / METRICS)
    except (OSError, ValueError):
        own = []
    seconds = planner.median_epoch_seconds(own)
    if seconds is not None:
        return Estimate(seconds, startup_seconds, "this run's epochs")
    times = measured.get(timing_key(job.config.to_dict()))
    if times:
        return Estimate(
            planner.median_epoch_seconds({"seconds": s} for s in times) or 0.0, startup_seconds, "earlier runs"
        )
    return None


def burst_flags(job: RunJob, folder: Path) -> list[str]:
    """``job``'s flags shortened to a timed burst of :data:`BURST_EPOCHS` small epochs in ``folder``."""
    cfg = job.config
    train = min(cfg.subset or planner.FULL_TRAIN_IMAGES, BURST_BATCHES * cfg.batch_size)
    test = min(cfg.test_subset or planner.FULL_TEST_IMAGES, 2 * cfg.eval_batch_size)
    return [
        *job.flags,
        "--epochs",
        str(BURST_EPOCHS),
        "--warmup",
        "0",
        "--subset",
        str(train),
        "--test-subset",
        str(test),
        "--seed",
        "0",
        "--out",
        str(folder),
        "--no-progress",
    ]


def burst_estimate(job: RunJob, folder: Path, wall_seconds: float) -> Estimate | None:
    """Scale a finished burst in ``folder`` to ``job``'s epochs (None if it left no timed epoch)."""
    results = read_results(folder)
    try:
        rows = read_metrics(folder / METRICS)
    except (OSError, ValueError):
        return None
    if not results or not rows or "train_images" not in results or "test_images" not in results:
        return None
    burst_train, burst_test = int(results["train_images"]), int(results["test_images"])
    cfg = job.config
    target_train = cfg.subset or planner.FULL_TRAIN_IMAGES
    target_test = cfg.test_subset or planner.FULL_TEST_IMAGES
    if burst_train < BURST_BATCHES * cfg.batch_size and burst_train < target_train:
        target_train = burst_train  # the data set holds fewer images than asked for
    if burst_test < target_test and burst_test < 2 * cfg.eval_batch_size:
        target_test = burst_test
    row = rows[-1]
    epoch = planner.epoch_seconds_from_burst(row, burst_train, burst_test, target_train, target_test)
    startup = max(wall_seconds - len(rows) * float(row["seconds"]), 0.0)
    return Estimate(epoch, startup, "calibration")


def calibrate(
    runs: Sequence[RunJob],
    make_job: Callable[[RunJob, list[str], Path], RunJob],
    *,
    jobs: int,
    say: Callable[[str], None] = print,
    launch: Launch = launch_subprocess,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[tuple, Estimate], list[tuple[str, int, list[str]]]]:
    """Time a burst of each distinct timing setting among ``runs``, ``jobs`` bursts at a time (the same
    sharing of the device as the study). Returns estimates by :func:`timing_key` and failed bursts."""
    distinct: dict[tuple, RunJob] = {}
    for job in runs:
        distinct.setdefault(timing_key(job.config.to_dict()), job)
    if not distinct:
        return {}, []
    bursts: list[tuple[tuple, RunJob]] = []
    with tempfile.TemporaryDirectory(prefix="contdepth-calibration-") as tmp:
        keys = list(distinct)
        copies = max(1, -(-jobs // len(keys)))  # fewer settings than jobs: copies keep the device as shared
        for key in keys:
            for c in range(copies):
                folder = Path(tmp) / f"{distinct[key].name}-c{c}"
                bursts.append((key, make_job(distinct[key], burst_flags(distinct[key], folder), folder)))
        say(
            f"calibrating: {len(bursts)} timed bursts ({len(keys)} distinct settings) of {BURST_EPOCHS} x "
            f"{BURST_BATCHES} batches, {jobs} at a time"
        )
        runner = Runner(
            [b for _, b in bursts],
            Path(tmp),
            jobs=jobs,
            launch=launch,
            clock=clock,
            sleep=sleep,
            say=lambda line: None,
            poll_seconds=0.2,
            ledger=False,
        )
        started = clock()
        report = runner.run()
        say(f"calibrated in {planner.format_duration(clock() - started)}")
        if report.stopped or report.pending:
            raise KeyboardInterrupt
        found: dict[tuple, list[Estimate]] = {}
        for key, burst in bursts:
            wall = report.wall_seconds.get(burst.name)
            estimate = burst_estimate(distinct[key], burst.folder, wall) if wall is not None else None
            if estimate is not None:
                found.setdefault(key, []).append(estimate)
    out = {
        key: Estimate(max(e.epoch_seconds for e in es), max(e.startup_seconds for e in es), "calibration")
        for key, es in found.items()
    }
    return out, report.failed
