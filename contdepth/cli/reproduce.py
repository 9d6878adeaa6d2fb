"""``contdepth reproduce``: train a paper's study, ``--jobs`` runs at a time, in the time you have.

contdepth reproduce STUDY --out DIR [--seeds 0,1] [--only NAME,NAME] [--jobs N] [--budget MINUTES]
                        [--dry-run] [-- TRAIN FLAGS...]
contdepth reproduce STUDY --out DIR --summary
contdepth reproduce --list
"""

from __future__ import annotations

import argparse
import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from ..runs.files import LOG
from ..runs.lock import FolderLock
from ..studies import planner
from ..studies.calibration import calibrate, history_estimate
from ..studies.catalog import STUDIES, Study, get_study
from ..studies.runner import Runner
from ..studies.runs import RunJob, measured_epoch_seconds, settings_conflict, timing_key
from .argtypes import positive_int
from .command import Command
from .errors import CommandError

# Flags that reproduce sets for every run itself.
RESERVED = ("--model", "--out", "--seed", "--resume", "--overwrite", "--noise", "--scheme")


class UsageError(ValueError):
    """A bad argument: one line for the user."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``reproduce`` flags (the words after ``--`` come as ``args.passthrough``)."""
    parser.epilog = (
        "Flags after `--` go to every `contdepth train` run (e.g. -- --epochs 1 --device cpu). "
        "Runs live in DIR/<model>[-<noise>]-s<seed>/; finished ones are skipped, interrupted ones resume."
    )
    a = parser.add_argument
    a("study", nargs="?", help=f"one of: {', '.join(STUDIES)} (see --list)")
    a("--out", metavar="DIR", help="the study folder (one run folder per run)")
    a("--seeds", help="comma-separated seeds, e.g. 0,1 (default: the study's, see --list)")
    a("--only", metavar="NAME,NAME", help="only these rows of the study, e.g. resnet56,lm_resnet56-sd0.8")
    a("--jobs", type=positive_int, default=1, help="runs at a time on the device (default 1)")
    a(
        "--budget",
        type=float,
        metavar="MINUTES",
        help="start a run only when it is predicted to finish within MINUTES from now (calibrates first)",
    )
    a("--dry-run", action="store_true", help="print one `contdepth train` command per run to do, and nothing else")
    a("--summary", action="store_true", help="write DIR/summary.md, summary.json and summary.png")
    a("--list", action="store_true", help="list the studies and their runs")


class _TrainFlagParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"flags after --: {message}")


def _train_parser() -> argparse.ArgumentParser:
    from .train import configure as configure_train  # the train command's own flags and checks

    parser = _TrainFlagParser(prog="contdepth train", add_help=False)
    configure_train(parser)
    return parser


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"--seeds takes integers like 0,1, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds takes distinct integers >= 0 like 0,1, got {text!r}")
    return seeds


def _check_passthrough(flags: list[str]) -> None:
    for flag in flags:
        name = flag.split("=", 1)[0]
        if name in RESERVED:
            raise UsageError(
                f"flags after --: {name} is set by the study for each run; reproduce sets {', '.join(RESERVED)} itself"
            )


def build_jobs(
    study: Study,
    out: Path,
    seeds: list[int],
    only: list[str] | None,
    passthrough: list[str],
) -> list[RunJob]:
    """Every run of the study in run order (priority, seed, row), with its flags and config."""
    from .train import config_from_args

    parser = _train_parser()
    _check_passthrough(passthrough)
    rows = study.select(only)
    order = sorted(
        ((row.priority, seed, i, row) for i, row in enumerate(rows) for seed in seeds if seed in (row.seeds or seeds)),
        key=lambda t: t[:3],
    )
    jobs = []
    for _, seed, _, row in order:
        folder = out / row.run_name(seed)
        flags = [*row.train_flags(), "--seed", str(seed), "--out", str(folder), *passthrough]
        jobs.append(make_job(parser, config_from_args, row.run_name(seed), row, seed, folder, flags))
    return jobs


def check_train_flags(jobs: list[RunJob], *, here: bool) -> None:
    """Refuse, once and before any run starts, what every `contdepth train` run would refuse at its start, in
    train's one line. ``here``: also what depends on this machine (the CUDA device, the data folder); a dry
    run may list the commands for another machine."""
    from ..data import DataError
    from ..data.cifar import locate, spec
    from ..train.distributed import resolve_device

    seen = set()
    for job in jobs:
        cfg = job.config
        key = (cfg.device, cfg.dataset, cfg.data_dir, cfg.download, cfg.subset, cfg.batch_size)
        if key in seen:
            continue
        seen.add(key)
        if cfg.subset is not None and cfg.subset < cfg.batch_size:
            raise UsageError(
                f"flags after --: --subset {cfg.subset} holds fewer training images than one batch "
                f"(--batch-size {cfg.batch_size})"
            )
        if cfg.device is not None and (here or not cfg.device.strip().startswith("cuda")):
            try:
                resolve_device(cfg.device)
            except ValueError as err:
                raise UsageError(f"flags after --: {err}") from None
        if here and not cfg.download:
            try:
                locate(spec(cfg.dataset), cfg.data_dir)
            except DataError as err:
                raise UsageError(" ".join(line.strip() for line in str(err).splitlines() if line.strip())) from None


def make_job(
    parser: argparse.ArgumentParser,
    config_from_args: Callable[[argparse.Namespace], Any],
    name: str,
    row: Any,
    seed: int,
    folder: Path,
    flags: list[str],
) -> RunJob:
    args = parser.parse_args(flags)
    args.resume = args.overwrite = False
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as err:
        raise UsageError(f"flags after --: {err}") from None
    return RunJob(name, row, seed, folder, flags, config)


def _list() -> None:
    """Each study and its rows: priority, the paper's number with its source, seeds and note."""
    for study in STUDIES.values():
        print(f"{study.name}: {study.title} (seeds {','.join(map(str, study.seeds))})")
        for row in study.rows:
            paper = "-" if row.paper_error is None else f"{row.paper_error:.2f}%"
            source = f" ({row.paper_source})" if row.paper_source else ""
            only = f"  seeds {','.join(map(str, row.seeds))}" if row.seeds else ""
            note = f"  {row.note}" if row.note else ""
            print(f"  {row.name:<32} priority {row.priority}  paper {paper:>6}{source}{only}{note}")


def _say(line: str) -> None:
    print(line, flush=True)


def _estimator(
    directory: Path,
    calibrated: dict[tuple, planner.Estimate],
) -> Callable[[RunJob], planner.Estimate | None]:
    """Estimates from run folders in ``directory`` (re-read at most every 30 s), else from calibration."""
    cache: dict[str, Any] = {"at": -1e18, "measured": {}}
    startup = max((e.startup_seconds for e in calibrated.values()), default=planner.DEFAULT_STARTUP_SECONDS)

    def estimate(job: RunJob) -> planner.Estimate | None:
        now = time.monotonic()
        if now - cache["at"] > 30:
            cache["at"], cache["measured"] = now, measured_epoch_seconds(directory)
        key = timing_key(job.config.to_dict())
        return history_estimate(job, cache["measured"], startup) or calibrated.get(key)

    return estimate


def _print_plan(runner: Runner, waiting: list[RunJob], now: float, budget: float | None) -> list[planner.Planned]:
    pending = runner.pending_list(waiting)
    planned, left = planner.plan(pending, jobs=runner.jobs, now=now, deadline=runner.deadline)
    by_name = {p.name: p for p in pending}
    sources = {j.name: (e.source if (e := runner.estimates(j)) else "") for j in waiting}
    _say(f"plan ({runner.jobs} at a time{f', budget {budget:g} min' if budget is not None else ''}):")
    for p in planned:
        source = f" ({sources[p.name]})" if sources[p.name] else ""
        _say(
            f"  {p.name:<36} predicted {planner.format_duration(by_name[p.name].seconds):>7}"
            f"  starts at +{planner.format_duration(p.start - now)}{source}"
        )
    for q in left:
        why = "no estimate" if q.seconds is None else f"predicted {planner.format_duration(q.seconds)}, does not fit"
        _say(f"  {q.name:<36} not started: {why}")
    if planned:
        end = planner.finish_time(planned, [], now)
        _say(f"  predicted end: +{planner.format_duration(end - now)}")
    return planned


def _execute(study: Study, jobs: list[RunJob], out: Path, n_jobs: int, budget: float | None) -> int:
    start = time.monotonic()
    deadline = start + 60 * budget if budget is not None else None
    waiting = [j for j in jobs if not j.done]
    if not waiting:
        _say(
            f"{study.name}: all {len(jobs)} runs in {out} are done (contdepth reproduce {study.name} --out {out} "
            "--summary writes the summary)"
        )
        return 0
    calibrated: dict[tuple, planner.Estimate] = {}
    estimate = _estimator(out, calibrated)
    if budget is not None:
        unknown = [j for j in waiting if estimate(j) is None]
        if unknown:
            found, failed = calibrate(unknown, _burst_job, jobs=n_jobs, say=_say)
            calibrated.update(found)
            for name, code, lines in failed:
                _say(f"calibration burst {name} failed (exit {code}):")
                for line in lines:
                    _say(f"    {line}")
    runner = Runner(jobs, out, jobs=n_jobs, estimates=estimate, deadline=deadline, say=_say)
    planned = _print_plan(runner, waiting, time.monotonic(), budget)
    if budget is not None and not any(runner.predicted_seconds(j) is not None for j in waiting):
        raise CommandError("no run could be timed (its calibration burst failed, see above); nothing started", code=1)
    if budget is not None and not planned:
        known = [(s, j.name) for j in waiting if (s := runner.predicted_seconds(j)) is not None]
        shortest = (
            f"; the shortest, {min(known)[1]}, is predicted to take {planner.format_duration(min(known)[0])}"
            if known
            else ""
        )
        left = planner.format_duration(max(deadline - time.monotonic(), 0.0)) if deadline is not None else "?"
        raise CommandError(
            f"a budget of {budget:g} min ({left} left) is too small for any run{shortest}; nothing started"
        )
    report = _with_sigterm_as_interrupt(runner.run)
    _say(
        f"{study.name}: {len(report.skipped) + len(report.finished)} of {len(jobs)} runs done "
        f"({len(report.finished)} now), {len(report.failed)} failed, {len(report.stopped)} stopped, "
        f"{len(report.pending)} pending"
    )
    for name, code, _ in report.failed:
        _say(f"  failed: {name} (exit {code}; log in {out / name / LOG})")
    if report.stopped:
        _say(f"  stopped (checkpoint saved, the same command resumes): {', '.join(report.stopped)}")
    if report.pending:
        why = "predicted not to finish within the budget" if budget is not None else "not started"
        _say(f"  pending ({why}): {', '.join(report.pending)}")
    if report.held:
        _say(f"  held by another process (not started here; the same command waits for them): {', '.join(report.held)}")
    if report.stopped:
        return 130
    return 1 if report.failed else 0


def _burst_job(job: RunJob, flags: list[str], folder: Path) -> RunJob:
    """The job of a calibration burst of ``job`` (``flags`` parsed as ``contdepth train``'s, in a parser of its
    own: a few milliseconds, next to a burst's seconds)."""
    from .train import config_from_args

    return make_job(_train_parser(), config_from_args, folder.name, job.spec, 0, folder, flags)


def _with_sigterm_as_interrupt(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with SIGTERM raising KeyboardInterrupt (a scheduler's stop saves every run's checkpoint)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        return fn()
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """List, plan, train or summarise the study. A bad argument, an unknown name or a study folder in use raise
    (exit code 2); so does a study folder that cannot be created, locked or written (an OS error)."""
    if args.list:
        _list()
        return 0
    if not args.study:
        raise UsageError(f"name a study: {', '.join(STUDIES)} (or --list)")
    study = get_study(args.study)
    if not args.out:
        raise UsageError("--out DIR is required (the study's folder)")
    if args.dry_run and args.summary:
        raise UsageError("--dry-run and --summary do not go together")
    if args.budget is not None and not (args.budget > 0 and args.budget < float("inf")):
        raise UsageError(f"--budget takes minutes > 0, got {args.budget:g}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    only = [n for n in args.only.split(",") if n.strip()] if args.only else None
    if args.only is not None and not only:
        raise UsageError("--only needs run names, e.g. resnet56,lm_resnet56")
    seeds = _parse_seeds(args.seeds) if args.seeds is not None else list(study.seeds)
    jobs = build_jobs(study, out, seeds, only, list(args.passthrough))
    if args.summary:
        from ..studies.summary import write_summary

        if not out.is_dir():
            raise UsageError(f"--out {out} does not exist: nothing to summarise")
        for path in write_summary(study, out):
            _say(f"wrote {path}")
        return 0
    conflicts = [f"{j.folder} ({'; '.join(d)})" for j in jobs if (d := settings_conflict(j))]
    if conflicts:
        raise UsageError(
            "these run folders hold runs with other settings; choose another --out or remove them: "
            + ", ".join(conflicts)
        )
    todo = [job for job in jobs if not job.done]
    check_train_flags(todo, here=False)
    if args.dry_run:
        for job in todo:
            print(shlex.join(job.next_command()))
        return 0
    missing = [p for p in (out.absolute(), *out.absolute().parents) if not p.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    try:
        check_train_flags(todo, here=True)
    except UsageError:
        for folder in missing:  # a refused study leaves no new folder
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    with FolderLock(out, what="contdepth reproduce"):
        return _execute(study, jobs, out, args.jobs, args.budget)


COMMAND = Command(
    "reproduce",
    "train a paper's study (its tables) in runs that fit your time",
    configure,
    run,
    passthrough=True,
    os_error_hint="choose another --out",
)
