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
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, add_out_argument, markdown_table, provenance, write_json

from contdepth.train.rundir import RESULTS, read_results
from contdepth.train.speed import usable_cores

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--models", default="preact_resnet20,lm_resnet20", help="comma-separated model names")
    parser.add_argument("--subset", type=int, default=6400, help="training images per epoch (default 6400)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is not timed (default 3)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of every row, order alternating (default 2)")
    parser.add_argument("--concurrent", type=int, default=2, help="runs at once in the last rows (default 2)")
    add_out_argument(parser, "cpu_training.json and .md")
    args = parser.parse_args(argv)
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
