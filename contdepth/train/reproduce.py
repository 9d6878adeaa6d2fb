"""Run a study: `contdepth train` subprocesses, ``jobs`` at a time, within an optional deadline.

Each run is a normal `contdepth train` run folder ``DIR/<row>-s<seed>/`` with its output in
``train.log``. A run whose ``results.json`` is complete is skipped; one with a checkpoint resumes.
A run starts only when it is predicted (:mod:`.planner`) to end by the deadline; a run that started
is never stopped by the deadline. ``DIR/launches.jsonl`` records every start (time, command,
runs sharing the device).

The runs die with the study (on Linux: they are asked to stop, saving a checkpoint, when the study's
process ends, even by ``kill -9``). A run folder held by another live process (a run the study did
not start) is waited for, as one of the ``jobs`` runs at a time, and is never counted as failed.
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import planner
from .config import TrainConfig, differences
from .lock import holder
from .planner import Estimate, Pending
from .records import CONFIG, METRICS, RESULTS, read_metrics
from .rundir import run_files
from .studies import RunSpec

LOG = "train.log"
LAUNCHES = "launches.jsonl"
CHECKPOINT = "checkpoint.pt"
CONCURRENT_ENV = "CONTDEPTH_CONCURRENT_RUNS"
TAIL_LINES = 12
STOP_WAIT_SECONDS = 120.0
# Settings that change how long an epoch takes: earlier runs predict a run only where these agree.
TIMING_KEYS = (
    "model",
    "dataset",
    "noise",
    "scheme",
    "steps_per_block",
    "batch_size",
    "eval_batch_size",
    "subset",
    "test_subset",
    "amp",
    "channels_last",
    "compile",
    "compile_mode",
    "deterministic",
    "device",
)


@dataclass
class RunJob:
    """One run of a study: row ``spec`` with ``seed`` in ``folder``, trained with ``flags`` into ``config``."""

    name: str
    spec: RunSpec
    seed: int
    folder: Path
    flags: list[str]  # `contdepth train` flags, --resume excluded
    config: TrainConfig

    def command(self, resume: bool = False, overwrite: bool = False) -> list[str]:
        """The `contdepth train ...` words (``--resume`` to continue a checkpoint, ``--overwrite`` to replace
        the files of a start that left no checkpoint)."""
        return [
            "contdepth",
            "train",
            *self.flags,
            *(["--resume"] if resume else []),
            *(["--overwrite"] if overwrite else []),
        ]

    def next_command(self) -> list[str]:
        """The command that continues this run from what its folder holds now."""
        state = run_state(self.folder)
        return self.command(resume=state == "resume", overwrite=state == "new" and bool(run_files(self.folder)))


# ----------------------------------------------------------------- run folders
def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def run_state(folder: Path) -> str:
    """``done`` (complete results.json), ``resume`` (a checkpoint) or ``new`` (perhaps with files of a start
    that saved no checkpoint, which the new start replaces)."""
    results = _read_json(folder / RESULTS)
    if results and results.get("complete"):
        return "done"
    return "resume" if (folder / CHECKPOINT).is_file() else "new"


def settings_conflict(job: RunJob) -> list[str]:
    """How the run already in ``job.folder`` differs from ``job.config`` (empty: none there, or the same)."""
    if run_state(job.folder) == "new":
        return []
    saved = _read_json(job.folder / CONFIG)
    if saved is None:
        return []
    return differences(TrainConfig.from_dict(saved), job.config.to_dict())


def epochs_done(folder: Path) -> int:
    try:
        return len(read_metrics(folder / METRICS))
    except (OSError, ValueError):
        return 0


def timing_key(config: dict) -> tuple:
    return tuple(config.get(k) for k in TIMING_KEYS)


def measured_epoch_seconds(directory: Path) -> dict[tuple, list[float]]:
    """Epoch seconds of every run folder under ``directory``, grouped by :func:`timing_key` of its config."""
    out: dict[tuple, list[float]] = {}
    for config_path in sorted(directory.glob(f"*/{CONFIG}")):
        config = _read_json(config_path)
        try:
            rows = read_metrics(config_path.parent / METRICS)
        except (OSError, ValueError):
            continue
        seconds = [float(r["seconds"]) for r in rows if isinstance(r.get("seconds"), (int, float))]
        if config is not None and seconds:
            out.setdefault(timing_key(config), []).extend(seconds)
    return out


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# ----------------------------------------------------------------- processes
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


@dataclass
class Report:
    """What a study run did: names of runs done before, finished now, failed (with exit code and log tail),
    stopped by a stop request (resumable), never started, and held by another process (waited for)."""

    skipped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: list[tuple[str, int, list[str]]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    wall_seconds: dict[str, float] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)


@dataclass
class _Running:
    job: RunJob
    process: Process
    started: float
    predicted_end: float


def _on_cpu(device: str | None) -> bool:
    """Whether a run given ``--device device`` trains on the CPU (no device: CUDA when available)."""
    if device is not None:
        return device.split(":")[0] == "cpu"
    import torch

    return not torch.cuda.is_available()


class Runner:
    """Runs ``runs`` (in priority order) ``jobs`` at a time; see the module docstring.

    ``estimates`` gives a run's :class:`Estimate` from measured times (None: unknown); with a
    ``deadline`` (a ``clock()`` value) a run starts only when predicted to end by then.
    ``clock``, ``sleep`` and ``launch`` are replaceable for tests.
    """

    def __init__(
        self,
        runs: Sequence[RunJob],
        directory: Path,
        *,
        jobs: int = 1,
        estimates: Callable[[RunJob], Estimate | None] = lambda job: None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        launch: Launch = launch_subprocess,
        say: Callable[[str], None] = print,
        poll_seconds: float = 1.0,
        heartbeat_seconds: float = 300.0,
        ledger: bool = True,
    ) -> None:
        self.runs = list(runs)
        self.directory = Path(directory)
        self.jobs = jobs
        self.estimates = estimates
        self.deadline = deadline
        self.clock, self.sleep, self.launch, self.say = clock, sleep, launch, say
        self.poll_seconds, self.heartbeat_seconds = poll_seconds, heartbeat_seconds
        self.ledger = ledger
        self.running: list[_Running] = []
        self.held: dict[str, tuple[RunJob, str]] = {}  # run folders another live process holds: (job, its PID)
        self.report = Report()

    # predictions
    def predicted_seconds(self, job: RunJob) -> float | None:
        estimate = self.estimates(job)
        if estimate is None:
            return None
        return estimate.seconds(int(job.config.epochs or 0) - epochs_done(job.folder))

    def pending_list(self, waiting: Sequence[RunJob]) -> list[Pending]:
        return [Pending(job.name, self.predicted_seconds(job)) for job in waiting]

    def _busy_slots(self) -> int:
        """Runs that take a slot: those this study started and those held by another process."""
        return len(self.running) + len(self.held)

    def _eta(self, waiting: Sequence[RunJob], now: float) -> float | None:
        busy = [r.predicted_end for r in self.running]
        for job, _ in self.held.values():
            left = self.predicted_seconds(job)
            busy.append(now + left if left is not None else float("inf"))
        planned, _ = planner.plan(
            self.pending_list(waiting), jobs=self.jobs, now=now, deadline=self.deadline, busy_until=busy
        )
        return planner.finish_time(planned, busy, now) - now

    def _progress(self, waiting: Sequence[RunJob], now: float, event: str) -> None:
        r = self.report
        done = len(r.skipped) + len(r.finished)
        failed = f" / failed {len(r.failed)}" if r.failed else ""
        held = f" / held elsewhere {len(self.held)}" if self.held else ""
        self.say(
            f"[{time.strftime('%H:%M:%S')}] done {done} / running {len(self.running)}{held} / pending {len(waiting)}"
            f"{failed} · ETA {planner.format_duration(self._eta(waiting, now))}  {event}".rstrip()
        )

    # processes
    def _thread_env(self, job: RunJob) -> dict[str, str]:
        """On a CPU, each of ``jobs`` runs gets its share of the cores (unless OMP_NUM_THREADS is set):
        two 1-thread runs train more images per second in all than one 2-thread run."""
        if "OMP_NUM_THREADS" in os.environ or not _on_cpu(job.config.device):
            return {}
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return {"OMP_NUM_THREADS": str(max(1, cores // self.jobs))}

    def _start(self, job: RunJob, now: float) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        resume = run_state(job.folder) == "resume"
        concurrent = self._busy_slots() + 1
        argv = job.next_command()
        process = self.launch(argv, {CONCURRENT_ENV: str(concurrent), **self._thread_env(job)}, job.folder / LOG)
        predicted = self.predicted_seconds(job)
        self.running.append(_Running(job, process, now, now + predicted if predicted is not None else float("inf")))
        self._record(
            {
                "event": "start",
                "run": job.name,
                "concurrent_runs": concurrent,
                "resume": resume,
                "predicted_seconds": predicted,
                "command": shlex.join(argv),
            }
        )
        what = "resumed" if resume else "started"
        self._event = f"{what} {job.name} (predicted {planner.format_duration(predicted)})"

    def _hold(self, job: RunJob, pid: str) -> None:
        """Wait for a run folder another live process holds; it takes a slot meanwhile."""
        self.held[job.name] = (job, pid)
        self.say(
            f"{job.name}: its folder is held by another process (pid {pid}) that this study did not start; "
            f"waiting for it to end (it counts as one of the {self.jobs} runs at a time; stop it to go on sooner)"
        )

    def _check_held(self, waiting: list[RunJob]) -> None:
        """Held runs whose holder has ended: done, or back at the head of the queue (to resume here)."""
        for name, (job, pid) in list(self.held.items()):
            if holder(job.folder) is not None:
                continue
            del self.held[name]
            if run_state(job.folder) == "done":
                self.report.finished.append(name)
                self._event = f"{name} was finished by process {pid}"
            else:
                waiting.insert(0, job)
                self._event = f"{name} was let go by process {pid}"

    def _record(self, entry: dict) -> None:
        """Append a start or end to the study's launches.jsonl (``time``: Unix seconds), on a line of its own
        even after a last line that an earlier, killed study left unfinished."""
        if self.ledger:
            entry = {**entry, "time": time.time(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            with open(self.directory / LAUNCHES, "a+b") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        fh.write(b"\n")
                fh.write((json.dumps(entry) + "\n").encode())

    def _reap(self, now: float) -> None:
        for r in list(self.running):
            code = r.process.poll()
            if code is None:
                continue
            self.running.remove(r)
            self.report.wall_seconds[r.job.name] = now - r.started
            self._record({"event": "end", "run": r.job.name, "exit": code})
            pid = holder(r.job.folder) if code != 0 else None
            if code == 0 and run_state(r.job.folder) == "done":
                self.report.finished.append(r.job.name)
                self._event = f"finished {r.job.name} in {planner.format_duration(now - r.started)}"
            elif code in (130, -signal.SIGINT, -signal.SIGTERM) and run_state(r.job.folder) == "resume":
                self.report.stopped.append(r.job.name)
                self._event = f"stopped {r.job.name} (checkpoint saved; resumes next time)"
            elif pid is not None:  # another process took the folder just before this run could
                self._hold(r.job, pid)
            else:
                lines = tail(r.job.folder / LOG)
                self.report.failed.append((r.job.name, code, lines))
                self.say(f"failed: {r.job.name} (exit {code}); last lines of {r.job.folder / LOG}:")
                for line in lines:
                    self.say(f"    {line}")
                self._event = f"failed {r.job.name}"

    def _stop_all(self) -> None:
        """Ask every running run to save a checkpoint and stop (SIGTERM), and wait for them."""
        for r in self.running:
            try:
                r.process.send_signal(signal.SIGTERM)
            except (OSError, ProcessLookupError):
                pass
        for r in self.running:
            try:
                r.process.wait(timeout=STOP_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                r.process.send_signal(signal.SIGKILL)
                r.process.wait()
        self._reap(self.clock())

    def run(self) -> Report:
        waiting = []
        for job in self.runs:
            if run_state(job.folder) == "done":
                self.report.skipped.append(job.name)
            else:
                waiting.append(job)
        self._event = f"{len(self.report.skipped)} done before" if self.report.skipped else ""
        last_line = -float("inf")
        try:
            while True:
                now = self.clock()
                while self._busy_slots() < self.jobs and waiting:
                    chosen = planner.next_to_start(self.pending_list(waiting), now, self.deadline)
                    if chosen is None:
                        break
                    job = next(j for j in waiting if j.name == chosen.name)
                    waiting.remove(job)
                    pid = holder(job.folder)
                    if pid is not None:
                        self._hold(job, pid)
                        continue
                    self._start(job, now)
                    self._progress(waiting, now, self._event)
                    last_line = now
                    self._event = ""
                if not self.running and not self.held:
                    break
                self.sleep(self.poll_seconds)
                now = self.clock()
                self._reap(now)
                self._check_held(waiting)
                if self._event or now - last_line >= self.heartbeat_seconds:
                    self._progress(waiting, now, self._event)
                    last_line, self._event = now, ""
        except KeyboardInterrupt:
            self.say("stopping: every running run saves a checkpoint (the same command resumes them)")
            self._stop_all()
        self.report.held = [job.name for job, _ in self.held.values()]
        self.report.pending = [job.name for job in waiting]
        return self.report


# ----------------------------------------------------------------- estimates and calibration
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


BURST_BATCHES = 8  # training batches per calibration epoch
BURST_EPOCHS = 2  # the second epoch is timed; the first (warm-up, compilation) counts as start-up


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
    results = _read_json(folder / RESULTS)
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
