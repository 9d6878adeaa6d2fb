"""Instructions per training / inference iteration: contdepth's ResNet-56 / LM-ResNet-56 against hand-written PyTorch.

Timings on a shared CPU scatter by several per cent (see ``throughput.py``), too much to settle a
"within 3%" target. Instruction counts do not: valgrind's callgrind counts every instruction the
process executes, the same number for the same program and inputs whatever else the machine is
doing (two runs here agreed to 2 parts in 10^7). Each net runs in a child process under callgrind
with instrumentation off through imports, set-up and W warm-up iterations per phase; then each of K
measured iterations is counted alone (instrumentation switched on, counters zeroed, one iteration,
counters dumped). Both nets compute the same map (the weights of contdepth's net are copied into the
hand-written one of ``reference_nets.py`` and the logits compared).

Switching instrumentation from inside the process needs callgrind's client requests, which have no
Python binding: a four-line C shim is compiled at run time (gcc and valgrind's headers, Debian
package ``valgrind``) and loaded with ctypes.

Counts are instructions, not seconds: they weigh a Python bytecode and a vectorised multiply-add
alike, so they bound the *overhead* contdepth adds (Python bookkeeping, extra tensor ops) rather
than predict a time ratio; for that, ``throughput.py``. One thread (``OMP_NUM_THREADS=1``), so
that no spinning worker threads add uncounted noise.

    python3 benchmarks/instructions.py [--batch 8] [--iters 2] [--warmup 2] [--jobs 2]   # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PHASES = ("train", "inference")
IMPLS = ("contdepth", "hand")


SHIM_C = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void cg_stop(const char *name) { CALLGRIND_DUMP_STATS_AT(name); CALLGRIND_STOP_INSTRUMENTATION; }
"""


def build_shim(workdir: Path, cc: str = "gcc") -> Path:
    """Compile the callgrind client-request shim into ``workdir``; a clear error when it cannot be built."""
    src, lib = workdir / "cgshim.c", workdir / "cgshim.so"
    src.write_text(SHIM_C)
    proc = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"could not build the callgrind shim with {cc} (needs valgrind's headers, Debian package "
            f"valgrind):\n{proc.stderr.strip()}"
        )
    return lib


# ============================================================================ child: the measured program
def child(model_name: str, impl: str, shim: str, iters: int, warmup: int, batch: int, seed: int) -> None:
    """Build both nets, copy weights, warm ``impl`` up in both phases, then count each measured iteration alone."""
    import ctypes

    import torch
    from _timing import Runner
    from reference_nets import HAND, check_same_map, copy_weights

    import contdepth as cd

    cg = ctypes.CDLL(shim)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = cd.models.get(model_name)
    hand = HAND[model_name]()
    copy_weights(model, hand)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    check_same_map(model, hand, x)
    net = model if impl == "contdepth" else hand
    opts = dict(compile_mode=None, bf16=False, channels_last=False)
    runners = {"train": Runner(net, x, y, train=True, **opts), "inference": Runner(net, x, y, train=False, **opts)}
    for r in runners.values():
        for _ in range(warmup):
            r.step()
    for phase, r in runners.items():
        for i in range(iters):
            cg.cg_start()
            r.step()
            cg.cg_stop(f"{phase}-{i}".encode())


# ============================================================================ parent: run children under callgrind
def read_dumps(out_file: Path) -> dict[str, tuple[int, Path]]:
    """Instructions (Ir) and file of every client-request dump ``out_file.N``, by the name given to the dump."""
    dumps = {}
    for part in sorted(out_file.parent.glob(out_file.name + ".*")):
        text = part.read_text()
        name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^totals:\s+(\d+)", text, re.M) or re.search(r"^summary:\s+(\d+)", text, re.M)
        if name and total:
            dumps[name.group(1)] = (int(total.group(1)), part)
    return dumps


GROUPS = ("torch kernels", "torch bindings + c10", "python interpreter", "libc", "other")


def by_library(part: Path) -> dict[str, int]:
    """Instructions of one dump grouped by where they ran: torch's kernels (libtorch_cpu and the code
    oneDNN generates at run time, which callgrind shows as ``???:0x...``), torch's Python bindings and
    c10 (dispatch), the Python interpreter, libc (malloc)."""
    proc = subprocess.run(["callgrind_annotate", "--threshold=100", str(part)], capture_output=True, text=True)
    groups = dict.fromkeys(GROUPS, 0)
    for line in proc.stdout.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        count, where = int(m.group(1).replace(",", "")), m.group(2)
        if where.startswith("???:0x") or "libtorch_cpu" in where:
            groups["torch kernels"] += count
        elif "libtorch_python" in where or "libc10" in where:
            groups["torch bindings + c10"] += count
        elif "libpython" in where or "/Python-" in where:
            groups["python interpreter"] += count
        elif "libc.so" in where or "/malloc/" in where:
            groups["libc"] += count
        else:
            groups["other"] += count
    return groups


def run_counted(args, model_name: str, impl: str, shim: Path, workdir: Path) -> Path:
    """Run one net's child under callgrind; returns its output file (dumps are ``<file>.N``)."""
    tag = f"{model_name}-{impl}"
    out_file = workdir / f"{tag}.callgrind"
    for stale in workdir.glob(out_file.name + "*"):  # a kept folder's earlier dumps would mix with this run's
        stale.unlink()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = [
        args.valgrind,
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        model_name,
        impl,
        str(shim),
        "--iters",
        str(args.iters),
        "--warmup",
        str(args.warmup),
        "--batch",
        str(args.batch),
        "--seed",
        str(args.seed),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{tag} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"  {tag:24s} done ({time.perf_counter() - start:.0f} s under callgrind)", flush=True)
    return out_file


def collect(out_file: Path, iters: int) -> dict:
    """Instructions of each measured iteration by phase, and where the last one ran (by library)."""
    dumps = read_dumps(out_file)
    missing = [f"{p}-{i}" for p in PHASES for i in range(iters) if f"{p}-{i}" not in dumps]
    if missing:
        raise RuntimeError(f"{out_file}: no callgrind dump for {missing}")
    counts: dict = {phase: [dumps[f"{phase}-{i}"][0] for i in range(iters)] for phase in PHASES}
    if shutil.which("callgrind_annotate"):
        counts["by_library"] = {p: by_library(dumps[f"{p}-{iters - 1}"][1]) for p in PHASES}
    return counts


def measure(args) -> list[dict]:
    """For every model and phase, instructions per iteration of contdepth's net and the hand-written one."""
    jobs = [(name, impl) for name in args.models for impl in IMPLS]
    if args.dumps is not None:
        counts = {job: collect(args.dumps / f"{job[0]}-{job[1]}.callgrind", args.iters) for job in jobs}
    else:
        with tempfile.TemporaryDirectory(prefix="contdepth-callgrind-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
            workdir = args.keep if args.keep is not None else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            shim = build_shim(Path(tmp))
            files = dict(zip(jobs, pool.map(lambda j: run_counted(args, *j, shim, workdir), jobs), strict=True))
            counts = {job: collect(f, args.iters) for job, f in files.items()}
    rows = []
    for name in args.models:
        for phase in PHASES:
            each = {impl: counts[(name, impl)][phase] for impl in IMPLS}
            per_iter = {impl: statistics.median(v) for impl, v in each.items()}
            rows.append(
                {
                    "model": name,
                    "phase": phase,
                    "batch": args.batch,
                    "instructions_per_iter": per_iter,
                    "instructions_each_iter": each,
                    "ratio_contdepth_over_hand": per_iter["contdepth"] / per_iter["hand"],
                    "extra_instructions_per_iter": per_iter["contdepth"] - per_iter["hand"],
                }
            )
            if all("by_library" in counts[(name, impl)] for impl in IMPLS):
                rows[-1]["by_library"] = {impl: counts[(name, impl)]["by_library"][phase] for impl in IMPLS}
    return rows


def plot(rows: list[dict], path: Path) -> None:
    from _common import save_figure, setup_matplotlib

    plt = setup_matplotlib()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    labels = [f"{r['model']}\n{r['phase']}" for r in rows]
    excess = [100 * (r["ratio_contdepth_over_hand"] - 1) for r in rows]
    bars = ax.bar(labels, excess, color=["C0" if r["phase"] == "train" else "C1" for r in rows])
    for bar, value in zip(bars, excess, strict=True):
        ax.annotate(
            f"{value:+.2f}%",
            (bar.get_x() + bar.get_width() / 2, value),
            ha="center",
            va="bottom" if value >= 0 else "top",
            fontsize=9,
        )
    ax.axhline(3, color="grey", ls="--", lw=1, label="target: within 3%")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("extra instructions per iteration (%)\ncontdepth vs hand-written")
    ax.set_title(f"callgrind instruction counts, batch {rows[0]['batch']}, 1 thread", fontsize=10)
    ax.set_ylim(min(0.0, min(excess) * 1.3), max(3.0, max(excess)) * 1.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    """Totals per iteration, and where the difference ran (contdepth - hand-written, by library)."""
    from _common import markdown_table

    def split(r: dict) -> str:
        lib = r.get("by_library")
        if lib is None:
            return ""
        return ", ".join(f"{g} {lib['contdepth'][g] - lib['hand'][g]:+.3g}" for g in GROUPS)

    return markdown_table(
        [
            "model",
            "phase",
            "contdepth instructions / iter",
            "hand-written instructions / iter",
            "ratio",
            "extra / iter",
            "extra by library (contdepth - hand)",
        ],
        [
            [
                r["model"],
                r["phase"],
                f"{r['instructions_per_iter']['contdepth']:.4g}",
                f"{r['instructions_per_iter']['hand']:.4g}",
                f"{r['ratio_contdepth_over_hand']:.4f}",
                f"{r['extra_instructions_per_iter']:+.3g}",
                split(r),
            ]
            for r in rows
        ],
    )


def main(argv=None) -> int:
    from _common import add_out_argument

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "IMPL", "SHIM"), help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="+", default=["resnet56", "lm_resnet56"], choices=["resnet56", "lm_resnet56"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=2, help="measured iterations per phase")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted iterations per phase before the measured ones")
    parser.add_argument("--jobs", type=int, default=2, help="callgrind processes at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    add_out_argument(parser)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the callgrind files in this folder (for callgrind_annotate / kcachegrind)",
    )
    parser.add_argument(
        "--dumps",
        type=Path,
        default=None,
        help="no new runs: re-read the files an earlier run kept with --keep (same --iters)",
    )
    args = parser.parse_args(argv)
    if args.child:
        name, impl, shim = args.child
        child(name, impl, shim, args.iters, args.warmup, args.batch, args.seed)
        return 0
    if args.dumps is not None and not args.dumps.is_dir():
        parser.error(f"--dumps {args.dumps}: no such folder")
    if args.dumps is None and shutil.which(args.valgrind) is None:
        parser.error(f"valgrind not found ({args.valgrind!r}); install it (Debian: apt-get install valgrind)")
    if args.iters < 1 or args.warmup < 1:
        parser.error("--iters and --warmup must be at least 1")

    from _common import provenance, write_json

    if args.dumps is None:
        print(f"callgrind: {len(args.models) * 2} child processes, {args.jobs} at a time", flush=True)
    rows = measure(args)
    print()
    print(table(rows))
    result = {
        "provenance": provenance(args.seed),
        "method": "callgrind Ir of each measured iteration alone (instrumentation on, counters zeroed, "
        "one iteration, dump), after uncounted warm-ups; median over iterations",
        "dumps_reread_from": None if args.dumps is None else str(args.dumps),
        "batch": args.batch,
        "iters": args.iters,
        "warmup": args.warmup,
        "threads": 1,
        "rows": rows,
    }
    json_path = write_json(args.out / "instructions.json", result)
    plot(rows, args.out / "instructions.png")
    print(f"\nwrote {json_path} and {args.out / 'instructions.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
