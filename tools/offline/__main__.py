"""``bash tools/offline/offline_gpu.sh start|watch|collect`` (``python3 -m tools.offline`` from the checkout's root):
a study on a bare, offline GPU machine that keeps nothing between commands.

start STUDY [options] [reproduce flags] [-- train flags]   set up, smoke-test, calibrate, start detached
watch SECONDS [--every S] [--collect DIR]                  status every minute, back before SECONDS (collected)
collect DIR [--weights all|none|NAME,...]                  outputs packed into <= 8 files of <= 15 MiB

The defaults are sized for a machine lent for 15 minutes in all: ``start`` returns within ``--limit``
(default 540 s: a smoke tier of at most 90 s, a calibration of at most 2 minutes, the study started and
its plan printed), and ``watch SECONDS --collect DIR`` follows the study and packs its outputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from contdepth.outputs import unwritable

from . import calibrate, launch, pack, prepare, status
from .layout import DEFAULT_WORK, State, Work, process_age, process_alive

REPO = Path(__file__).resolve().parents[2]  # the checkout: tools/offline/__main__.py
PROG = "offline_gpu.sh"
NEXT = "bash tools/offline/offline_gpu.sh"
LIMIT_S = 540.0  # start returns within this (9 minutes of a 15-minute lease)
START_RESERVE_S = 60.0  # of start's limit, kept for starting the study once tests and calibration are done
OWN_REPRODUCE_FLAGS = ("--out", "--dry-run", "--summary", "--list", "--jobs")


class UsageError(ValueError):
    """A bad argument: one line for the user."""


def _say(text: str) -> None:
    print(text, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0], allow_abbrev=False)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    work_help = f"the work folder for state, logs, calibration and (by default) the study (default {DEFAULT_WORK})"

    s = sub.add_parser(
        "start",
        allow_abbrev=False,
        help="set up, run the GPU tests, calibrate, start the study detached",
        description="Flags not listed here go to `contdepth reproduce` (e.g. --budget 7 --seeds 0 "
        "--only resnet56); flags after `--` go to every `contdepth train` run.",
    )
    s.add_argument("study", help="a study of `contdepth reproduce --list`, e.g. lu2018-cifar10")
    s.add_argument("--work", type=Path, default=DEFAULT_WORK, help=work_help)
    s.add_argument("--out", type=Path, help="the study folder (default WORK/STUDY)")
    s.add_argument(
        "--data-dir",
        type=Path,
        default=Path("/tmp/contdepth-data"),
        help="where CIFAR-10 is (or is decoded to, once) (default /tmp/contdepth-data)",
    )
    s.add_argument(
        "--carry",
        type=Path,
        default=REPO / ".carry",
        help="the folder with the CIFAR-10 archive (official, or .npz + decoder), wheels and COMMIT (default .carry)",
    )
    s.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: a dry rehearsal; the GPU-only steps (tests, calibration) say they are skipped",
    )
    s.add_argument(
        "--mode",
        default="auto",
        help=f"how the runs train: auto (the fastest calibrated mode that "
        f"passed the tests) or one of {', '.join(calibrate.MODES)}",
    )
    s.add_argument(
        "--modes",
        default=",".join(calibrate.CALIBRATED),
        help=f"modes to calibrate, cheapest first (default {','.join(calibrate.CALIBRATED)})",
    )
    s.add_argument("--jobs", default="1", help="runs at a time: a number, or auto (measured with 2 and 3 at once)")
    s.add_argument(
        "--tests",
        choices=tuple(prepare.TIERS) + ("none",),
        default="smoke",
        help="the GPU test tier: smoke (no subprocesses, one compile; default), full (several minutes) or none",
    )
    s.add_argument("--skip-tests", action="store_true", help="the same as --tests none")
    s.add_argument(
        "--tests-timeout", type=float, default=90.0, metavar="S", help="stop the tier after S seconds (default 90)"
    )
    s.add_argument(
        "--calibration-budget",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds for the whole calibration: every mode, and --jobs auto (default 120); "
        "a mode that does not finish in what is left is not chosen",
    )
    s.add_argument(
        "--calibrate-models",
        default=calibrate.MODELS[0],
        help=f"models timed in each mode, comma-separated (default {calibrate.MODELS[0]}; "
        f"{','.join(calibrate.MODELS)} takes twice as long)",
    )
    s.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also time the conventional DataLoader pipeline in the calibration (default: no: it adds epochs)",
    )
    s.add_argument(
        "--calibrate-args",
        default="",
        help=f"benchmarks/throughput.py flags after its short defaults ({' '.join(calibrate.QUICK)}), "
        "e.g. --calibrate-args='--reps 7'",
    )
    s.add_argument(
        "--settle",
        type=float,
        default=120.0,
        metavar="S",
        help="wait at most S seconds for the study to print its plan (default 120)",
    )
    s.add_argument(
        "--limit",
        type=float,
        default=LIMIT_S,
        metavar="S",
        help=f"start returns within S seconds: tests, calibration and waiting get what is left (default {LIMIT_S:.0f})",
    )
    s.add_argument("--commit", help="the commit to record (default: $CONTDEPTH_GIT_COMMIT, git, or CARRY/COMMIT)")

    w = sub.add_parser(
        "watch", allow_abbrev=False, help="print the status every minute; return before SECONDS (collect first)"
    )
    w.add_argument("seconds", type=float)
    w.add_argument("--work", type=Path, default=DEFAULT_WORK, help=work_help)
    w.add_argument("--every", type=float, default=60.0, metavar="S", help="seconds between reports (default 60)")
    w.add_argument(
        "--collect",
        type=Path,
        metavar="DIR",
        help="stop watching --collect-seconds before SECONDS and collect into DIR (the collect options apply)",
    )
    w.add_argument(
        "--collect-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds of SECONDS kept for --collect (default 60)",
    )
    _collect_options(w)

    c = sub.add_parser("collect", allow_abbrev=False, help="pack results, logs, plots and fp16 weights into DIR")
    c.add_argument("dest", type=Path, metavar="DIR")
    c.add_argument("--work", type=Path, default=DEFAULT_WORK, help=work_help)
    _collect_options(c)
    return parser


def _collect_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        default="all",
        help="fp16 weights of these finished runs: all (default), none, or run names NAME,NAME",
    )
    parser.add_argument("--max-files", type=int, default=8, help="files in DIR at most (default 8)")
    parser.add_argument("--max-mib", type=float, default=15.0, help="MiB per file at most (default 15)")
    parser.add_argument("--no-summary", action="store_true", help="do not run `contdepth reproduce --summary` first")


# ---------------------------------------------------------------------------------------------- start
def _child_env(commit: str | None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in paths:
        paths.append(str(REPO))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if commit:
        env[prepare.COMMIT_ENV] = commit
    return env


def _split_flags(rest: Sequence[str], train: Sequence[str]) -> list[str]:
    for flag in rest:
        name = flag.split("=", 1)[0]
        if name in OWN_REPRODUCE_FLAGS and name != "--jobs":
            raise UsageError(
                f"{name} is set by start itself" + (": use --out before the study flags" if name == "--out" else "")
            )
        if name == "--jobs":
            raise UsageError("give --jobs to start (a number or auto); it passes it on")
    for flag in train:
        if flag.split("=", 1)[0] in ("--device", "--data-dir"):
            raise UsageError(f"train flag {flag.split('=', 1)[0]}: give it to start (it passes it on)")
    return list(rest)


def _jobs(text: str) -> int | None:
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--jobs takes a positive number or auto, got {text!r}")


def start(args: argparse.Namespace, reproduce_flags: list[str], train_flags: list[str], already: float = 0.0) -> int:
    t0 = time.monotonic() - already
    if args.limit <= 0 or args.calibration_budget < 0 or args.tests_timeout <= 0 or args.settle < 0:
        raise UsageError("--limit, --tests-timeout take seconds > 0; --calibration-budget, --settle seconds >= 0")

    def left() -> float:
        """Seconds of --limit left, less what starting the study needs."""
        return t0 + args.limit - START_RESERVE_S - time.monotonic()

    work = Work(args.work.resolve()).make()
    out = (args.out or work.root / args.study).resolve()
    data = args.data_dir.resolve()
    jobs = _jobs(args.jobs)
    reproduce_flags = _split_flags(reproduce_flags, train_flags)
    if args.mode != "auto":
        calibrate.check_modes([args.mode])
    calibrated = calibrate.check_modes([m for m in args.modes.split(",") if m])
    models = calibrate.check_models([m for m in args.calibrate_models.split(",") if m])
    tier = "none" if args.skip_tests else args.tests
    if work.state.is_file():
        old = State.load(work)
        if process_alive(old.pid):
            raise UsageError(
                f"the study {old.study} started here still runs (pid {old.pid}): "
                f"watch it, or stop it first (kill {old.pid})"
            )
    cuda = args.device == "cuda"
    steps: dict[str, str] = {}

    commit, source = prepare.resolve_commit(args.commit, REPO, args.carry)
    steps["commit"] = (
        f"{commit} (from {source})"
        if commit
        else f"unknown: pass --commit, set ${prepare.COMMIT_ENV} or write {args.carry / prepare.COMMIT_FILE}"
    )
    _say(f"commit: {steps['commit']}")
    env = _child_env(commit)

    # the runs to do (and a check of every flag) while the set-up goes on: the mode changes neither
    common_flags = ["--device", args.device, "--data-dir", str(data), *train_flags]
    dry_run = launch.start_dry_run(
        launch.reproduce_command(args.study, out, reproduce_flags, common_flags, dry_run=True), env, REPO
    )
    decoding = prepare.start_decoding(data, args.carry, work.logs / "decode.log")
    _say(f"data: {'decoding into ' + str(data) + ' (in the background)' if decoding else str(data) + ' (ready)'}")

    excluded: dict[str, str] = {}
    tests_timeout = min(args.tests_timeout, left())
    if not cuda:
        steps["gpu tests"] = "skipped (--device cpu)"
    elif tier == "none":
        steps["gpu tests"] = "skipped (--tests none)"
    elif importlib.util.find_spec("pytest") is None:
        steps["gpu tests"] = "skipped: pytest is not installed here (carry its wheel to run them)"
    elif tests_timeout < 10:
        steps["gpu tests"] = f"skipped: no time left within --limit {args.limit:.0f}"
        excluded = {m: "the GPU tier did not run" for m in calibrate.MODES if m != calibrate.SAFE}
    else:
        _say(f"gpu tests: pytest -m cuda, {tier} tier (log {work.logs / 'gpu-tests.log'}) ...")
        result = prepare.run_gpu_tier(REPO, work.logs / "gpu-tests.log", tests_timeout, tier=tier)
        steps["gpu tests"] = f"{tier} tier: {result.summary()}"
        excluded = (
            calibrate.excluded_by_tests(result.failed)
            if result.ran
            else {m: "the GPU tier did not run" for m in calibrate.MODES if m != calibrate.SAFE}
        )
    _say(f"gpu tests: {steps['gpu tests']}")

    if decoding is not None:
        if decoding.wait() != 0 or not prepare.data_ready(data):
            raise UsageError(f"decoding the data failed; see {work.logs / 'decode.log'}")
        _say(f"data: decoded into {data}")

    budget = max(0.0, min(args.calibration_budget, left()))
    mode_name, aggregate = _choose_mode(args, cuda, calibrated, models, excluded, work, steps, jobs, data, budget)
    mode = calibrate.MODES[mode_name]
    if jobs is None:
        jobs = calibrate.jobs_from(aggregate) if aggregate else 1
        steps["jobs"] = (
            f"{jobs} (auto: "
            + (", ".join(f"{k} at once {v:.0f} img/s" for k, v in aggregate.items()) or "no measurement")
            + ")"
        )
    else:
        steps["jobs"] = str(jobs)
    _say(f"jobs: {steps['jobs']}")

    run_flags = [*mode.train_flags, *common_flags]
    flags = [*reproduce_flags, "--jobs", str(jobs)]
    names, error = launch.runs_to_do(dry_run)
    if error:
        raise UsageError(f"contdepth reproduce refuses: {error.splitlines()[-1]}")
    command = launch.reproduce_command(args.study, out, flags, run_flags)
    log = work.logs / "reproduce.log"
    state = State(
        study=args.study,
        out=str(out),
        log=str(log),
        command=command,
        mode=mode.name,
        train_flags=run_flags,
        runs=names,
        commit=commit,
        device=args.device,
        started=time.time(),
        steps=steps,
    )
    state.save(work)
    _say(f"starting: {shlex.join(command)}")
    settle = max(1.0, min(args.settle, left() + START_RESERVE_S - 10))
    pid, code, offset = launch.launch(command, log, env, REPO, settle_s=settle)
    running = code is None
    state.pid = pid
    state.save(work)
    plan_text = launch.text_since(log, offset).rstrip()
    summary = [
        f"study {args.study}: {len(names)} runs to do in {out}, mode {mode.name} "
        f"({' '.join(mode.train_flags) or 'eager fp32'}), {jobs} at a time",
        *(f"{k}: {v}" for k, v in steps.items()),
        f"pid {pid} ({'running, detached' if running else f'already ended, exit code {code}'}); log {log}",
        plan_text,
        "",
        f"next: {NEXT} watch SECONDS --collect DIR (status every minute; collected before SECONDS)",
        f"(set-up took {time.monotonic() - t0:.0f} s)",
    ]
    work.plan.write_text("\n".join(summary) + "\n")
    _say("\n".join(summary))
    return 0 if code in (None, 0) else 1


def _choose_mode(
    args: argparse.Namespace,
    cuda: bool,
    calibrated: list[calibrate.Mode],
    models: list[str],
    excluded: dict[str, str],
    work: Work,
    steps: dict[str, str],
    jobs: int | None,
    data: Path,
    budget: float,
) -> tuple[str, dict[int, float]]:
    """The training mode (given, or the fastest calibrated one that passed) and, for --jobs auto, aggregate img/s.

    The calibration takes at most ``budget`` seconds in all: each mode gets what is left of it.
    """
    if args.mode != "auto":
        steps["calibration"] = f"skipped (--mode {args.mode} given)"
        if args.mode in excluded:
            _say(f"warning: --mode {args.mode} although {excluded[args.mode]} failed")
        return args.mode, {}
    if not cuda:
        steps["calibration"] = "skipped (--device cpu): eager fp32"
        return calibrate.SAFE, {}
    extra = [*calibrate.QUICK, *shlex.split(args.calibrate_args)]
    deadline = time.monotonic() + budget
    measured = []
    to_measure = [m for m in calibrated if m.name not in excluded]
    for mode in calibrated:
        if mode.name in excluded:
            measured.append(
                calibrate.Measurement(mode.name, ok=False, note=f"not measured: {excluded[mode.name]} failed")
            )
            continue
        timeout = deadline - time.monotonic()
        if timeout < calibrate.MIN_SECONDS:
            note = f"not measured: the calibration budget ({budget:.0f} s) was spent"
            measured.append(calibrate.Measurement(mode.name, ok=False, note=note))
            continue
        _say(f"calibration: {mode.name} (at most {timeout:.0f} s) ...")
        # the last mode measured (by default the fastest expected) also times the conventional pipeline
        flags = extra + (calibrate.pipeline_flags(mode, data) if mode == to_measure[-1] and args.baseline else [])
        m = calibrate.measure(REPO, mode, work.calibration / mode.name, timeout, flags, models=models)
        measured.append(m)
        _say(
            f"calibration: {mode.name}: "
            + (f"{m.speed:.0f} img/s" if m.ok else m.note or "no result")
            + f" ({m.seconds:.0f} s)"
        )
    best = calibrate.choose(measured, excluded)
    name = best.mode if best else calibrate.SAFE
    steps["calibration"] = ("fastest that passed: " + name) if best else f"no mode measured: {name}"
    aggregate: dict[int, float] = {}
    if jobs is None and best is not None:
        aggregate = {1: best.images_per_s.get(models[0], {}).get("contdepth", 0.0)}
        timeout = deadline - time.monotonic()
        if timeout >= calibrate.MIN_SECONDS:
            aggregate.update(
                calibrate.measure_concurrency(
                    REPO, calibrate.MODES[name], work.calibration / name, (2, 3), timeout, extra, model=models[0]
                )
            )
        else:
            _say(f"jobs auto: no time left in the calibration budget to measure runs at once: {1}")
    table = calibrate.table(measured, excluded, aggregate, models[0])
    (work.calibration / "calibration.txt").write_text(table + "\n")
    _say(table)
    return name, aggregate


# ---------------------------------------------------------------------------------------------- watch
def watch(args: argparse.Namespace, already: float) -> int:
    work = Work(args.work.resolve())
    State.load(work)  # a clear error before the loop when start has not run here
    if args.seconds <= 0 or args.every <= 0:
        raise UsageError("watch takes SECONDS > 0 and --every > 0")
    keep = 0.0
    if args.collect is not None:
        keep = args.collect_seconds
        if not 0 < keep < args.seconds:
            raise UsageError(f"--collect-seconds takes seconds > 0 and below SECONDS ({args.seconds:g})")
        _check_dest(args.collect)  # before watching, not after
    seconds = args.seconds - keep
    status.watch(
        lambda: State.load(work),
        seconds,
        args.every,
        margin=min(5.0, seconds / 10),
        out=_say,
        already=already,
    )
    if args.collect is None:
        return 0
    args.dest = args.collect
    return collect(args, summary_timeout=max(10.0, keep - 20.0))


# -------------------------------------------------------------------------------------------- collect
def _check_dest(dest: Path) -> None:
    problem = unwritable(dest)
    if problem is not None:
        raise UsageError(f"{dest}: {problem}; choose another DIR")


def collect(args: argparse.Namespace, summary_timeout: float = 300.0) -> int:
    from . import finished  # torch, only here

    work = Work(args.work.resolve())
    state = State.load(work)
    out = Path(state.out)
    _check_dest(args.dest)  # before the summary and the weights, not after them
    notes = []
    if not args.no_summary and out.is_dir():
        cmd = [sys.executable, "-m", "contdepth", "reproduce", state.study, "--out", str(out), "--summary"]
        from .procs import run_logged

        code = run_logged(cmd, work.logs / "summary.log", summary_timeout, cwd=REPO, env=_child_env(state.commit))
        done = "written" if code == 0 else f"failed ({'stopped' if code is None else f'exit {code}'})"
        notes.append(f"summary: {done}" + ("" if code == 0 else "; see logs/summary.log"))
    wanted = (
        None if args.weights == "all" else [] if args.weights == "none" else [n for n in args.weights.split(",") if n]
    )
    runs, unknown = finished.choose(out, wanted)
    if unknown:
        notes.append(f"weights: not finished runs, left out: {', '.join(unknown)}")
    if work.weights.is_dir():
        for old in work.weights.glob("*.pt"):
            old.unlink()
    weights = [
        pack.Item(pack.member_name(run / finished.WEIGHTS, work.root, out), finished.weights_of(run, work.weights))
        for run in runs
    ]
    for item in weights:
        item.kind = "weights"
    header = "\n".join([f"study {state.study} in {out.name}; commit {state.commit}", status.report(state)[0], *notes])
    items = pack.gather(work.root, out, []) + weights
    result = pack.pack(items, args.dest, max_files=args.max_files, max_bytes=int(args.max_mib * 2**20), header=header)
    _say(header)
    for path, members in result.archives:
        _say(f"{path} ({path.stat().st_size / 2**20:.2f} MiB, {len(members)} files)")
    _say(
        f"{args.dest / pack.MANIFEST}"
        + (f"; left out: {len(result.left_out)} (listed there)" if result.left_out else "")
    )
    return 0


# ----------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None, already: float = 0.0) -> int:
    """The command; ``already``: seconds this process ran before (``watch`` returns in time counting them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    train_flags: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, train_flags = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.action is None:
        parser.print_help()
        return 2
    if args.action != "start" and (rest or train_flags):
        parser.error(f"unrecognized arguments: {' '.join(rest + train_flags)}")
    try:
        if args.action == "start":
            return start(args, rest, train_flags, already)
        if args.action == "watch":
            return watch(args, already)
        return collect(args)
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"{PROG} {args.action}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a write that failed: a full disk, say
        where = f" ({err.filename})" if err.filename else ""
        print(f"{PROG} {args.action}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(already=process_age()))
