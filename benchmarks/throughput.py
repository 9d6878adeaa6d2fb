"""Training and inference throughput of contdepth's ResNet-56 / LM-ResNet-56 against hand-written PyTorch.

The hand-written twins live in ``reference_nets.py``; the script copies the contdepth weights into
them and checks that outputs agree before timing. Both run in one process, on the same batch and
options, in interleaved repetitions (the order alternates every repetition); the reported ratio is
the median over repetitions of contdepth/hand-written images per second.

Modes (``--modes``, one or more, listed in ``_timing.MODES``): ``eager``, ``compile`` (torch.compile,
mode default), ``reduce-overhead`` (compile + CUDA graphs), with ``+cl`` (channels_last) or
``+bf16+cl`` (bf16 autocast + channels_last).
Every compiled mode starts from a fresh compile state (``torch._dynamo.reset()``), and the script
checks that both nets really were compiled. Rows that cannot run on the device (CUDA graphs on a
CPU; bf16 on a CPU) are skipped with the reason recorded. Rows are written to the JSON as they
finish, so a run cut short keeps them.

Memory: on CPU, the bytes of activations autograd saves for backward in one training step
(distinct storages, counted with saved-tensor hooks); on CUDA also the peak allocated memory.

The op profile, the Python cost of a Flow step and the training pipeline are separate scripts:
``op_profile.py``, ``step_overhead.py`` and ``pipeline.py``. ``--pipeline`` here also runs the
latter (its options, e.g. ``--pipeline-mode``, ``--data``, ``--subset``, are accepted here too) and
writes its ``pipeline.json`` beside this script's JSON.

    python3 benchmarks/throughput.py [--device cpu|cuda] [--modes eager] [--pipeline] [--out DIR]

Results go to ``--out`` (default ``runs/benchmarks``, git-ignored); ``--out benchmarks/results``
refreshes the committed ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline
from _common import add_out_argument, markdown_table, provenance, save_figure, setup_matplotlib, write_json
from _timing import MODES, Runner, add_device_arguments, compiled_graphs, set_up, skip_reason, stem, sync, twin_nets
from reference_nets import HAND, check_same_map


# ============================================================================ CPU allocator
def keep_freed_memory() -> bool:
    """Tell glibc malloc to keep freed memory (no heap trimming, no mmap for blocks up to 32 MB).

    By default glibc returns freed activation buffers to the OS and every reuse page-faults; how
    often depends on how long a net keeps tensors alive, so it can favour one implementation of the
    same math over another. PyTorch's CPU tuning guide suggests jemalloc/tcmalloc for the same reason.
    Returns False where mallopt is unavailable (not glibc).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 1 << 30)) and bool(libc.mallopt(m_mmap_threshold, 32 << 20))
    except (OSError, AttributeError):
        return False


def minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ============================================================================ measuring
def saved_activation_bytes(model: nn.Module, x: Tensor, y: Tensor) -> int:
    """Bytes of distinct storages autograd saves for backward in one training forward."""
    seen: dict[int, int] = {}

    def pack(t: Tensor):
        try:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def peak_cuda_bytes(runner: Runner) -> int | None:
    dev = runner.x.device
    if dev.type != "cuda":
        return None
    sync(dev)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    runner.step()
    sync(dev)
    return torch.cuda.max_memory_allocated(dev)


def compare(name: str, args, device: torch.device, mode: str, train: bool, allocator: str = "default") -> dict:
    """Interleaved timing of contdepth's net and the hand-written one under one option set."""
    compile_mode, bf16, channels_last = MODES[mode]
    if compile_mode is not None:
        torch._dynamo.reset()  # a fresh compile state: earlier modes' graphs neither count nor crowd this one out
    model, hand = twin_nets(name, args.seed, device)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(device)
    max_diff = check_same_map(model, hand, x)
    opts = dict(train=train, compile_mode=compile_mode, bf16=bf16, channels_last=channels_last)
    runners = {"contdepth": Runner(model, x, y, **opts), "hand": Runner(hand, x, y, **opts)}
    graphs = {}
    for key, r in runners.items():  # warm-up (and compilation: a recompile on a later call is warmed up too)
        before = compiled_graphs()
        r.timed(args.warmup if compile_mode is None else max(args.warmup, 3))
        graphs[key] = compiled_graphs() - before
        if compile_mode is not None and graphs[key] == 0:
            raise RuntimeError(f"{name} {key} in mode {mode}: torch.compile produced no graph (running eager?)")
    settled = compiled_graphs()
    times: dict[str, list[float]] = {k: [] for k in runners}
    faults = {k: 0 for k in runners}
    keys = list(runners)
    for rep in range(args.reps):
        order = keys if rep % 2 == 0 else keys[::-1]
        for key in order:
            f0 = minor_faults()
            times[key].append(runners[key].timed(args.iters))
            faults[key] += minor_faults() - f0
    if compiled_graphs() != settled:
        raise RuntimeError(f"{name} in mode {mode}: recompiled while being timed")
    ips = {k: [args.batch * args.iters / t for t in v] for k, v in times.items()}
    ratios = [c / h for c, h in zip(ips["contdepth"], ips["hand"], strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    out = {
        "model": name,
        "mode": mode,
        "phase": "train" if train else "inference",
        "batch": args.batch,
        "allocator": allocator,
        "page_faults_per_iter": {k: v / (args.reps * args.iters) for k, v in faults.items()},
        "images_per_s": {k: statistics.median(v) for k, v in ips.items()},
        "best_images_per_s": {k: max(v) for k, v in ips.items()},
        "ratio_median": statistics.median(ratios),
        "ratio_q1": q1,
        "ratio_q3": q3,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_best": max(ips["contdepth"]) / max(ips["hand"]),
        "ratios": ratios,
        "max_logit_diff": max_diff,
        "clock": "wall" if device.type == "cuda" else "process CPU time",
        "compiled_graphs": graphs if compile_mode is not None else None,
    }
    if train:
        out["saved_activation_MB"] = {
            k: saved_activation_bytes(m, x, y) / 2**20 for k, m in (("contdepth", model), ("hand", hand))
        }
    if device.type == "cuda":
        out["peak_cuda_MB"] = {k: peak_cuda_bytes(r) / 2**20 for k, r in runners.items()}
    print(
        f"  {name:12s} {mode:23s} {allocator:9s} {out['phase']:9s} "
        f"contdepth {out['images_per_s']['contdepth']:8.1f} img/s, "
        f"hand {out['images_per_s']['hand']:8.1f} img/s, ratio {out['ratio_median']:.3f} "
        f"(IQR {out['ratio_q1']:.3f}-{out['ratio_q3']:.3f}, best-of {out['ratio_best']:.3f})",
        flush=True,
    )
    return out


# ============================================================================ report
def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    rows = results["comparisons"]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.5 * len(rows)), 4.4))
    xs = list(range(len(rows)))
    width = 0.7
    med = [r["ratio_median"] for r in rows]
    err = [[r["ratio_median"] - r["ratio_q1"] for r in rows], [r["ratio_q3"] - r["ratio_median"] for r in rows]]
    ax.bar(xs, med, width, yerr=err, capsize=3, color="tab:blue", alpha=0.85, label="contdepth / hand-written")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhspan(0.97, 1.03, color="tab:green", alpha=0.15, label="within 3%")
    ax.set_xticks(
        xs, [f"{r['model']}\n{r['mode']}, {r.get('allocator', 'default')}\n{r['phase']}" for r in rows], fontsize=7
    )
    ax.set_ylim(min(0.85, min(r["ratio_q1"] for r in rows) - 0.02), max(1.06, max(r["ratio_q3"] for r in rows) + 0.02))
    ax.set_ylabel("throughput ratio contdepth / hand-written")
    ax.set_title(
        f"{results['provenance']['device']}\nbatch {results['batch']}, "
        f"median and IQR over {results['reps']} interleaved repetitions",
        fontsize=8,
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def tables(results: dict) -> str:
    rows = []
    for r in results["comparisons"]:
        mem = r.get("peak_cuda_MB") or r.get("saved_activation_MB")
        mem_s = "" if mem is None else f"{mem['contdepth']:.1f} / {mem['hand']:.1f}"
        pf = r.get("page_faults_per_iter")
        pf_s = "" if pf is None else f"{pf['contdepth']:.0f} / {pf['hand']:.0f}"
        rows.append(
            [
                r["model"],
                r["mode"],
                r.get("allocator", "default"),
                r["phase"],
                f"{r['images_per_s']['contdepth']:.1f}",
                f"{r['images_per_s']['hand']:.1f}",
                f"{r['ratio_median']:.3f} [{r['ratio_q1']:.3f}, {r['ratio_q3']:.3f}]",
                f"{r['ratio_best']:.3f}",
                pf_s,
                mem_s,
            ]
        )
    mem_head = "peak CUDA MB (cd / hand)" if results["device_type"] == "cuda" else "saved activations MB (cd / hand)"
    text = markdown_table(
        [
            "model",
            "mode",
            "malloc",
            "phase",
            "contdepth img/s",
            "hand-written img/s",
            "ratio, median [IQR]",
            "ratio, best-of",
            "page faults / iter (cd / hand)",
            mem_head,
        ],
        rows,
    )
    if results.get("skipped"):
        text += "\n\nNot measured here: " + "; ".join(f"{s['mode']} ({s['reason']})" for s in results["skipped"]) + "."
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    add_device_arguments(parser)
    parser.add_argument("--models", nargs="+", default=["resnet56", "lm_resnet56"], choices=sorted(HAND))
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 32 on CPU, 128 on CUDA)")
    parser.add_argument(
        "--iters", type=int, default=None, help="iterations per timed repetition (default 1 CPU, 50 CUDA)"
    )
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 21 CPU, 7 CUDA)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed iterations first (default 1 CPU, 20 CUDA; compiled modes at least 3)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=None,
        choices=list(MODES),
        help="one or more (default: eager on CPU; every mode on CUDA)",
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="also run pipeline.py: training epochs, the conventional DataLoader pipeline vs contdepth's",
    )
    pipeline.add_arguments(parser)
    # the op profile used to run here unless --no-profile; it is op_profile.py now, the flag is kept for old commands
    parser.add_argument("--no-profile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--allocator",
        choices=["both", "default", "keep-freed"],
        default="both",
        help="CPU: glibc malloc as is, told to keep freed memory (mallopt), or both in turn (default)",
    )
    parser.add_argument("--full", action="store_true", help="more repetitions and iterations")
    args = parser.parse_args(argv)
    device = set_up(args)
    cuda = device.type == "cuda"
    args.batch = args.batch or (128 if cuda else 32)
    args.iters = args.iters or (50 if cuda else 1) * (2 if args.full else 1)
    args.reps = args.reps or (7 if cuda else 21)
    args.warmup = args.warmup if args.warmup is not None else (20 if cuda else 1)
    if args.full:
        args.reps *= 2
    if args.pipeline:
        pipeline.resolve_mode(args, device, parser)
    requested = args.modes or (list(MODES) if cuda else ["eager"])
    modes, skipped = [], []
    for mode in MODES:  # the modes this device cannot run are recorded as skipped, asked for or not
        reason = skip_reason(mode, device)
        if reason is None and mode in requested:
            modes.append(mode)
        elif reason is not None:
            skipped.append({"mode": mode, "reason": reason})
            print(f"  skipping {mode}: {reason}", flush=True)
    path = args.out / f"{stem('throughput', device)}.json"
    results: dict = {
        "provenance": provenance(args.seed, device),
        "device_type": device.type,
        "batch": args.batch,
        "iters": args.iters,
        "reps": args.reps,
        "threads": torch.get_num_threads(),
        "complete": False,
        "skipped": skipped,
        "comparisons": [],
    }
    allocators = (
        ["default", "keep-freed"]
        if (args.allocator == "both" and not cuda)
        else [args.allocator if not cuda else "default"]
    )
    for allocator in allocators:
        if allocator == "keep-freed" and not keep_freed_memory():
            print("mallopt unavailable (not glibc): skipping the keep-freed allocator runs")
            continue
        for mode in modes:
            for name in args.models:
                for train in (True, False):
                    results["comparisons"].append(compare(name, args, device, mode, train, allocator))
                    write_json(path, results)  # each row as it finishes: a run cut short keeps them
    results["markdown"] = tables(results)
    results["complete"] = True
    write_json(path, results)
    if results["comparisons"]:
        plot(results, path.with_suffix(".png"))
    print(results["markdown"])
    if args.pipeline:
        print("\n" + pipeline.run(args, device)["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
