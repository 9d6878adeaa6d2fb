"""Run a study: `contdepth train` subprocesses, ``jobs`` at a time, within an optional deadline.

Each run is a normal `contdepth train` run folder ``DIR/<row>-s<seed>/`` with its output in
``train.log``. A run that is done is skipped; one with a checkpoint resumes (one finished without its
weights resumes to write them); one without progress starts again (see
:func:`contdepth.runs.state.folder_state` and :meth:`.RunJob.next_command`). A run starts only when it is
predicted (:mod:`.planner`) to end by the deadline; a run that started is never stopped by the deadline.
``DIR/launches.jsonl`` records every start (time, command, runs sharing the device).

The runs die with the study (:mod:`.launch`: on Linux they are asked to stop, saving a checkpoint,
when the study's process ends, even by ``kill -9``). A run folder held by another live process (a
run the study did not start) is waited for, as one of the ``jobs`` runs at a time, and is never
counted as failed.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..runs.files import LOG
from ..runs.lock import holder
from ..runs.state import RunState, run_state
from ..train.speed import resolves_to_cpu, usable_cores
from . import planner
from .launch import Launch, Process, launch_subprocess
from .planner import Estimate, Pending
from .runs import RunJob, epochs_done, tail

LAUNCHES = "launches.jsonl"  # in the study folder: one line per start and end of a run
CONCURRENT_ENV = "CONTDEPTH_CONCURRENT_RUNS"
STOP_WAIT_SECONDS = 120.0


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
        self._load_warned = False

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
        if "OMP_NUM_THREADS" in os.environ or not resolves_to_cpu(job.config.device):
            return {}
        cores = usable_cores()
        threads = max(1, cores // self.jobs)
        self._warn_if_cores_are_busy(cores, threads)
        return {"OMP_NUM_THREADS": str(threads)}

    def _warn_if_cores_are_busy(self, cores: int, threads: int) -> None:
        """Say once when processes outside this study keep cores busy: the threads given out assume the cores
        are free, and more threads than cores slow every run down many times, not by their share."""
        if self._load_warned or not hasattr(os, "getloadavg"):
            return
        others = round(os.getloadavg()[0] - self._busy_slots() * threads)  # less this study's running runs
        if others >= 1:
            self._load_warned = True
            self.say(
                f"note: other processes keep about {others} of the {cores} cores busy (load average); each run "
                f"gets {threads} thread(s) as if the cores were free. Running two studies at "
                "once? Set OMP_NUM_THREADS (e.g. 1) for each, so their threads do not outnumber the cores"
            )

    def _start(self, job: RunJob, now: float) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        argv = job.next_command()
        resume = "--resume" in argv
        concurrent = self._busy_slots() + 1
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
            if job.done:
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
            state = run_state(r.job.folder, locks=False)  # a folder another process took is `pid`
            if code == 0 and r.job.done:
                self.report.finished.append(r.job.name)
                self._event = f"finished {r.job.name} in {planner.format_duration(now - r.started)}"
            elif code in (130, -signal.SIGINT, -signal.SIGTERM) and state is RunState.RESUME:
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
            if job.done:
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
