"""How fast `contdepth train` trains on a CPU: memory format, torch.compile, and threads against concurrent runs.

Runs the real command (``contdepth train --device cpu``, batch 128, data and augmentation on the
CPU) for each model in ``--models`` under four settings, one run at a time with every core:
``eager`` (NCHW), ``eager+cl`` (channels_last), ``compile`` (``--compile-mode default``: inductor's
C++ kernels) and ``compile+cl``. Then it starts ``--concurrent`` runs of each compiled setting at
once, each with ``cores / concurrent`` threads, and sums their images per second: one run with all
threads against several with fewer each. Every row is repeated ``--reps`` times, the order of the rows
alternating between repetitions, and the median is reported, so a busy spell of the machine does not
decide a comparison. Speeds are the ``results.json`` medians over the epochs
after the first (which compiles and warms up); compile seconds are reported apart.

    python3 benchmarks/cpu_training.py --data-dir data [--subset 6400] [--epochs 3] [--out benchmarks/results]

Writes ``cpu_training.json`` and ``cpu_training.md`` into ``--out`` (default runs/benchmarks).
Run it on an otherwise idle machine: every row shares the same cores.

``--vs-loop`` measures instead ``contdepth train`` (``--loop-model``, compiled, channels_last) against the
plainest compiled loop over the same model and data (``_minimal_loop.py``), in float32 and bf16 autocast,
the four runs interleaved over ``--reps`` repetitions, each with ``--threads`` threads. Both time their
epochs after the first; the ratio contdepth / minimal loop is given in images per wall second (as the runs
report them) and per process CPU second (steadier on a shared machine), beside where a step's time goes
(``_phase_timer.py``). Writes ``cpu_training_loop.json`` and ``cpu_training_loop.md``:

    python3 benchmarks/cpu_training.py --vs-loop --data-dir data [--subset 3840] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, add_out_argument, markdown_table, provenance, write_json

from contdepth.provenance import device_name
from contdepth.runs.files import RESULTS
from contdepth.runs.records import read_results
from contdepth.train.speed import usable_cores

HERE = Path(__file__).resolve().parent
LOOPS = ("contdepth", "minimal")
LOOP_AMPS = ("none", "bf16")

SETTINGS: dict[str, list[str]] = {
    "eager": ["--no-compile", "--no-channels-last"],
    "eager+cl": ["--no-compile", "--channels-last"],
    "compile": ["--compile-mode", "default", "--no-channels-last"],
    "compile+cl": ["--compile-mode", "default", "--channels-last"],
}


def _start(model: str, setting: str, args: argparse.Namespace, out: Path, threads: int) -> subprocess.Popen:
    argv = [
        sys.executable, "-m", "contdepth", "train", "--model", model, "--device", "cpu",
        "--data-dir", str(args.data_dir), "--epochs", str(args.epochs), "--subset", str(args.subset),
        "--test-subset", "500", "--seed", "0", "--no-progress", "--out", str(out), *SETTINGS[setting],
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CONTDEPTH_CONCURRENT_RUNS": "1"}
    log = open(out.with_suffix(".log"), "w")  # noqa: SIM115 (closed with the process by the caller)
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _speed(out: Path) -> dict[str, Any]:
    res = read_results(out, strict=True)
    if res is None:
        raise SystemExit(f"cpu_training: {out.name} wrote no {RESULTS}; see {out.with_suffix('.log')}")
    return {k: res[k] for k in ("images_per_s", "epoch_seconds", "compile_seconds", "timed_epochs")}


def _run(procs: list[tuple[subprocess.Popen, Path]]) -> list[dict[str, Any]]:
    for proc, out in procs:
        if proc.wait() != 0:
            raise SystemExit(f"cpu_training: {out.name} failed; see {out.with_suffix('.log')}")
    return [_speed(out) for _, out in procs]


def _row(model: str, setting: str, runs: int, threads: int, reps: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """One table row from its repetitions (each a list of concurrent runs' speeds): medians over repetitions."""
    totals = [sum(s["images_per_s"] for s in rep) for rep in reps]
    return {
        "model": model,
        "setting": setting,
        "runs": runs,
        "threads": threads,
        "images_per_s": statistics.median(totals),
        "images_per_s_reps": totals,
        "compile_seconds": statistics.median(max(s["compile_seconds"] for s in rep) for rep in reps),
        "per_run": reps,
    }


def _loop_argv(loop: str, amp: str, args: argparse.Namespace, out: Path) -> list[str]:
    """The command of one ``--vs-loop`` run: ``contdepth train`` under the phase timer, or the minimal loop."""
    common = ["--data-dir", str(args.data_dir), "--epochs", str(args.epochs), "--subset", str(args.subset)]
    if loop == "minimal":
        return [
            sys.executable, str(HERE / "_minimal_loop.py"), "--model", args.loop_model, *common, "--amp", amp,
            "--seed", "0", "--out", str(out.with_suffix(".json")),
        ]  # fmt: skip
    return [
        sys.executable, str(HERE / "_phase_timer.py"), str(out.with_suffix(".json")), "train",
        "--model", args.loop_model, "--device", "cpu", *common, "--test-subset", "500", "--seed", "0",
        "--no-progress", "--out", str(out), "--compile-mode", "default", "--channels-last", "--amp", amp,
    ]  # fmt: skip


def _loop_run(loop: str, amp: str, args: argparse.Namespace, out: Path, threads: int) -> dict[str, Any]:
    """Run one loop to the end; its images/s (wall and CPU), compile seconds and ms per step of each phase."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CONTDEPTH_CONCURRENT_RUNS": "1"}
    with open(out.with_suffix(".log"), "w") as log:
        done = subprocess.run(_loop_argv(loop, amp, args, out), cwd=ROOT, env=env, stdout=log, stderr=log)
    if done.returncode != 0:
        raise SystemExit(f"cpu_training: {out.name} failed; see {out.with_suffix('.log')}")
    got = json.loads(out.with_suffix(".json").read_text())
    if loop == "contdepth":
        got = {**_speed(out), **got}
    keep = ("images_per_s", "images_per_cpu_s", "compile_seconds", "timed_epochs", "ms_per_step", "cpu_ms_per_step")
    return {**{k: got[k] for k in keep}, "profiled_steps": got["steps"]}


def _median_phases(reps: list[dict[str, Any]], key: str) -> dict[str, float]:
    return {k: statistics.median(r[key][k] for r in reps) for k in reps[0][key]}


def vs_loop(args: argparse.Namespace) -> int:
    """``--vs-loop``: contdepth train against the minimal loop, float32 and bf16, interleaved repetitions."""
    threads = args.threads or usable_cores()
    wanted = [(loop, amp) for amp in LOOP_AMPS for loop in LOOPS]
    reps: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in wanted}
    with tempfile.TemporaryDirectory(prefix="contdepth_cpu_loop_") as tmp:
        for rep in range(args.reps):  # A B A B ..., the order reversed every other repetition
            for loop, amp in wanted if rep % 2 == 0 else wanted[::-1]:
                got = _loop_run(loop, amp, args, Path(tmp) / f"{loop}-{amp}-{rep}", threads)
                reps[(loop, amp)].append(got)
                print(f"{loop:<10} {amp:<5} {got['images_per_s']:.0f} img/s", flush=True)
    rows = []
    for loop, amp in wanted:
        runs = reps[(loop, amp)]
        rows.append(
            {
                "loop": loop,
                "amp": amp,
                "images_per_s": statistics.median(r["images_per_s"] for r in runs),
                "images_per_cpu_s": statistics.median(r["images_per_cpu_s"] for r in runs),
                "compile_seconds": statistics.median(r["compile_seconds"] for r in runs),
                "ms_per_step": _median_phases(runs, "ms_per_step"),
                "cpu_ms_per_step": _median_phases(runs, "cpu_ms_per_step"),
                "reps": runs,
            }
        )
    ratios = []
    for amp in LOOP_AMPS:
        cd_reps, plain_reps = reps[("contdepth", amp)], reps[("minimal", amp)]
        paired = {
            key: [a[key] / b[key] for a, b in zip(cd_reps, plain_reps, strict=True)]
            for key in ("images_per_s", "images_per_cpu_s")
        }
        ratios.append(
            {
                "amp": amp,
                "wall": statistics.median(paired["images_per_s"]),
                "cpu": statistics.median(paired["images_per_cpu_s"]),
                "wall_reps": paired["images_per_s"],
                "cpu_reps": paired["images_per_cpu_s"],
            }
        )
    prov = provenance(0)
    payload = {
        "provenance": prov,
        "what": f"{args.loop_model}, batch 128, compile (default) + channels_last, {args.subset} training images "
        f"per epoch, {args.epochs} epochs, {threads} thread(s) per run: contdepth train against the minimal loop "
        f"(benchmarks/_minimal_loop.py); images/s of epochs 2..{args.epochs} (median), {args.reps} interleaved "
        "repetitions; ratio = median over repetitions of contdepth / minimal",
        "setting": args.setting,
        "cpu": device_name("cpu"),
        "threads": threads,
        "rows": rows,
        "ratios": ratios,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "cpu_training_loop.json", payload)
    text = loop_tables(payload)
    (args.out / "cpu_training_loop.md").write_text(
        f"{payload['what']}; {prov['device']}, torch {prov['torch']}, commit {prov['git_commit']}\n\n{text}\n"
    )
    print(text)
    return 0


def loop_tables(payload: dict[str, Any]) -> str:
    """The ratios and the per-step split of a ``--vs-loop`` result, as Markdown tables."""
    ratios = markdown_table(
        ["amp", "contdepth / minimal, wall", "repetitions", "contdepth / minimal, CPU time", "repetitions"],
        [
            [
                r["amp"],
                f"{r['wall']:.3f}",
                ", ".join(f"{v:.3f}" for v in r["wall_reps"]),
                f"{r['cpu']:.3f}",
                ", ".join(f"{v:.3f}" for v in r["cpu_reps"]),
            ]
            for r in payload["ratios"]
        ],
    )
    phases = ["data", "forward_backward", "optimiser", "bookkeeping"]
    split = markdown_table(
        ["loop", "amp", "images/s", "images/CPU s", *(f"{p} ms (CPU ms)" for p in phases), "compile s"],
        [
            [
                r["loop"],
                r["amp"],
                f"{r['images_per_s']:.0f}",
                f"{r['images_per_cpu_s']:.0f}",
                *(f"{r['ms_per_step'][p]:.2f} ({r['cpu_ms_per_step'][p]:.2f})" for p in phases),
                f"{r['compile_seconds']:.0f}",
            ]
            for r in payload["rows"]
        ],
    )
    return f"{ratios}\n\n{split}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--models", default="preact_resnet20,lm_resnet20", help="comma-separated model names")
    parser.add_argument("--subset", type=int, default=6400, help="training images per epoch (default 6400)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is not timed (default 3)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of every row, order alternating (default 2)")
    parser.add_argument("--concurrent", type=int, default=2, help="runs at once in the last rows (default 2)")
    parser.add_argument("--vs-loop", action="store_true", help="contdepth train against the minimal loop instead")
    parser.add_argument("--loop-model", default="resnet20", help="model of --vs-loop (default resnet20)")
    parser.add_argument("--threads", type=int, default=0, help="threads per --vs-loop run (default: every core)")
    parser.add_argument(
        "--setting", default="", help="how the machine was during the run (--vs-loop; e.g. other jobs running)"
    )
    add_out_argument(parser, "cpu_training.json and .md (--vs-loop: cpu_training_loop.json and .md)")
    args = parser.parse_args(argv)
    if args.vs_loop:
        return vs_loop(args)
    cores = usable_cores()
    threads = max(1, cores // args.concurrent)
    # (model, setting, runs): every setting alone with all cores, the two compiled ones also as concurrent runs
    rows_wanted = [(m, s, 1) for m in args.models.split(",") for s in SETTINGS]
    rows_wanted += [(m, s, args.concurrent) for m in args.models.split(",") for s in ("compile", "compile+cl")]
    reps: dict[tuple[str, str, int], list[list[dict[str, Any]]]] = {key: [] for key in rows_wanted}
    with tempfile.TemporaryDirectory(prefix="contdepth_cpu_training_") as tmp:
        for rep in range(args.reps):  # alternating order: a slow spell of the machine hits every row alike
            for model, setting, runs in rows_wanted if rep % 2 == 0 else rows_wanted[::-1]:
                outs = [Path(tmp) / f"{model}-{setting}-{runs}-{rep}-{i}" for i in range(runs)]
                n_threads = cores if runs == 1 else threads
                speeds = _run([(_start(model, setting, args, out, n_threads), out) for out in outs])
                reps[(model, setting, runs)].append(speeds)
                total = sum(sp["images_per_s"] for sp in speeds)
                print(f"{model:<16} {setting:<11} {runs} x {n_threads} threads: {total:.0f} img/s", flush=True)
    rows = [_row(m, s, r, cores if r == 1 else threads, reps[(m, s, r)]) for m, s, r in rows_wanted]
    for r in rows:
        base = next(b for b in rows if b["model"] == r["model"] and b["setting"] == "eager" and b["runs"] == 1)
        r["vs_eager"] = r["images_per_s"] / base["images_per_s"]
    prov = provenance(0)
    payload = {
        "provenance": prov,
        "what": f"contdepth train --device cpu, batch 128, {args.subset} training images per epoch, "
        f"median images/s of epochs 2..{args.epochs}, median of {args.reps} interleaved repetitions",
        "cores": cores,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "cpu_training.json", payload)
    table = markdown_table(
        ["model", "setting", "runs x threads", "images/s (all runs)", "repetitions", "vs eager", "compile s"],
        [
            [
                r["model"],
                r["setting"],
                f"{r['runs']} x {r['threads']}",
                f"{r['images_per_s']:.0f}",
                ", ".join(f"{v:.0f}" for v in r["images_per_s_reps"]),
                f"{r['vs_eager']:.2f}",
                f"{r['compile_seconds']:.0f}",
            ]
            for r in rows
        ],
    )
    (args.out / "cpu_training.md").write_text(
        f"{payload['what']}; {prov['device']}, torch {prov['torch']}, commit {prov['git_commit']}\n\n{table}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
