"""Training and inference throughput of contdepth's ResNet-56 / LM-ResNet-56 against hand-written PyTorch.

The hand-written twins live in ``reference_nets.py``; the script copies the contdepth weights into
them and checks that outputs agree before timing. Both run in one process, on the same batch and
options, in interleaved repetitions (the order alternates every repetition); the reported ratio is
the median over repetitions of contdepth/hand-written images per second.

Modes (``--modes``, one or more): ``eager``, ``compile`` (torch.compile, mode default),
``reduce-overhead`` (compile + CUDA graphs), each also ``+bf16+cl`` (bf16 autocast + channels_last).
Every compiled mode starts from a fresh compile state (``torch._dynamo.reset()``), and the script
checks that both nets really were compiled. Rows that cannot run on the device (CUDA graphs on a
CPU; bf16 on a CPU) are skipped with the reason recorded. Rows are written to the JSON as they
finish, so a run cut short keeps them.

Memory: on CPU, the bytes of activations autograd saves for backward in one training step
(distinct storages, counted with saved-tensor hooks); on CUDA also the peak allocated memory.

``--pipeline`` times training epochs of the conventional pipeline (a ``torch.utils.data.DataLoader``
over the same uint8 images, per-image random crop + flip in CPU workers, the hand-written net, eager,
fp32) against contdepth's (the data and its augmentation on the device, ``cd.models`` net, in
``--pipeline-mode``), as images/s and their ratio.

    python3 benchmarks/throughput.py [--device cpu|cuda] [--modes eager] [--pipeline] [--out DIR]

Results go to ``--out`` (default ``runs/benchmarks``, git-ignored); ``--out benchmarks/results``
refreshes the committed ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_out_argument, markdown_table, provenance, setup_matplotlib, write_json
from reference_nets import HAND, check_same_map, copy_weights

import contdepth as cd
from contdepth.train.backends import apply_backend_flags, backend_flags
from contdepth.train.compiling import compile_module, mark_step
from contdepth.train.optim import sgd_options

# mode -> (torch.compile mode or None for eager, bf16 autocast, channels_last)
MODES: dict[str, tuple[str | None, bool, bool]] = {
    "eager": (None, False, False),
    "eager+cl": (None, False, True),
    "eager+bf16+cl": (None, True, True),
    "compile": ("default", False, False),
    "compile+cl": ("default", False, True),  # what `contdepth train` picks for long CPU runs
    "compile+bf16+cl": ("default", True, True),
    "reduce-overhead": ("reduce-overhead", False, False),
    "reduce-overhead+bf16+cl": ("reduce-overhead", True, True),
}


def skip_reason(mode: str, device: torch.device) -> str | None:
    """Why ``mode`` is not measured on ``device`` (None: it is)."""
    compile_mode, bf16, _ = MODES[mode]
    if device.type != "cuda" and compile_mode == "reduce-overhead":
        return "CUDA graphs exist on CUDA only"
    if device.type != "cuda" and bf16:
        return "bf16 autocast + channels_last is a GPU setting (on a CPU without bf16 units bf16 is emulated)"
    return None


def compiled_graphs() -> int:
    """Graphs dynamo has compiled since the last ``torch._dynamo.reset()``."""
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


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
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """A model with its optimiser and options; ``step()`` does one training or inference iteration.

    ``compile_mode``: None (eager) or a ``torch.compile`` mode; ``bf16``: autocast; ``channels_last``:
    memory format of the model and the input. SGD is fused on CUDA, as ``contdepth train`` has it.
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        train: bool,
        compile_mode: str | None = None,
        bf16: bool = False,
        channels_last: bool = False,
    ):
        self.model, self.train = model, train
        if channels_last:
            model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.x, self.y = x, y
        self.compile_mode = compile_mode
        self.fn = compile_module(model, compile_mode, x.device)
        self.bf16 = bf16
        self.opt = (
            torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, **sgd_options(x.device))
            if train
            else None
        )

    def _autocast(self):
        return torch.autocast(self.x.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def step(self) -> None:
        mark_step(self.compile_mode, self.x.device)
        if self.train:
            self.model.train()
            with self._autocast():
                loss = F.cross_entropy(self.fn(self.x), self.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        else:
            self.model.eval()
            no_grad = torch.inference_mode() if self.compile_mode is None else torch.no_grad()
            with no_grad, self._autocast():
                self.fn(self.x)

    def timed(self, iters: int) -> float:
        """Seconds for ``iters`` iterations: wall time on CUDA; process CPU time on CPU, which a
        shared machine's other processes do not inflate (the CPU runs use one thread by default)."""
        clock = time.perf_counter if self.x.device.type == "cuda" else time.process_time
        sync(self.x.device)
        start = clock()
        for _ in range(iters):
            self.step()
        sync(self.x.device)
        return clock() - start


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
    torch.manual_seed(args.seed)
    model = cd.models.get(name).to(device)
    hand = HAND[name]().to(device)
    copy_weights(model, hand)
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


# ============================================================================ profiling
def op_profile(name: str, args, device: torch.device, reps: int = 3) -> dict:
    """Where the time goes: self time per aten op (torch.profiler) of contdepth's and the hand-written net,
    in inference and in training, and the Python overhead of a forward at batch 2 (no real compute)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(args.seed)
    model = cd.models.get(name).to(device)
    hand = HAND[name]().to(device)
    copy_weights(model, hand)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    out: dict = {}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for train in (False, True):
        phase = "train" if train else "inference"
        runners = {"contdepth": Runner(model, x, y, train=train), "hand": Runner(hand, x, y, train=train)}
        per: dict = {}
        for key, r in runners.items():
            r.timed(1)
            with profile(activities=activities) as prof:
                r.timed(reps)
            ops = {e.key: (e.count / reps, e.self_cpu_time_total / reps / 1e3) for e in prof.key_averages()}
            per[key] = ops
        differ = {}
        for op in set(per["contdepth"]) | set(per["hand"]):
            c_cd, c_hand = per["contdepth"].get(op, (0, 0.0))[0], per["hand"].get(op, (0, 0.0))[0]
            if op.startswith("aten::") and c_cd != c_hand:
                differ[op] = {"calls_contdepth": c_cd, "calls_hand": c_hand}
        total = {k: sum(ms for _, ms in v.values()) for k, v in per.items()}
        out[phase] = {"self_ms_total": total, "ops_with_different_counts": differ}
    small = torch.randn(2, 3, 32, 32, device=device)
    with torch.inference_mode():
        for key, m in (("contdepth", model.eval()), ("hand", hand.eval())):
            for _ in range(3):
                m(small)
            sync(device)
            start = time.perf_counter()
            for _ in range(20):
                m(small)
            sync(device)
            out[f"{key}_ms_per_forward_batch2"] = 1e3 * (time.perf_counter() - start) / 20
    return out


def step_overhead(steps: int = 8, calls: int = 2000) -> dict:
    """Python cost of one Flow step: euler over identity blocks on a (2, 4) state vs the plain loop ``x + m(x)``."""
    mods = [nn.Identity() for _ in range(steps)]
    flow = cd.Flow(cd.Blocks(mods), "euler", steps=steps).eval()
    x = torch.randn(2, 4)

    def loop(u: Tensor) -> Tensor:
        for m in mods:
            u = u + m(u)
        return u

    out = {}
    with torch.inference_mode():
        for key, fn in (("flow_us_per_step", flow), ("loop_us_per_step", loop)):
            for _ in range(100):
                fn(x)
            start = time.perf_counter()
            for _ in range(calls):
                fn(x)
            out[key] = 1e6 * (time.perf_counter() - start) / calls / steps
    return out


# ============================================================================ pipeline (epoch)
class TransformDataset(torch.utils.data.Dataset):
    """uint8 CHW images with per-sample augmentation in DataLoader workers (torchvision when available)."""

    def __init__(self, images: Tensor, labels: Tensor, mean, std) -> None:
        self.images, self.labels = images, labels
        try:
            import torchvision.transforms as T

            self.transform = T.Compose(
                [
                    T.RandomCrop(32, padding=4),
                    T.RandomHorizontalFlip(),
                    T.ConvertImageDtype(torch.float32),
                    T.Normalize(mean, std),
                ]
            )
            self.kind = "torchvision.transforms"
        except ImportError:
            self.mean = torch.tensor(mean).view(3, 1, 1)
            self.std = torch.tensor(std).view(3, 1, 1)
            self.transform = self._plain
            self.kind = "per-sample torch ops (torchvision not importable)"

    def _plain(self, img: Tensor) -> Tensor:
        padded = F.pad(img, (4, 4, 4, 4))
        i, j = torch.randint(0, 9, (2,)).tolist()
        out = padded[:, i : i + 32, j : j + 32]
        if torch.rand(()) < 0.5:
            out = out.flip(-1)
        return (out.float() / 255.0 - self.mean) / self.std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def pipeline_epoch(args, device: torch.device) -> dict:
    """Images/s of training epochs: the conventional pipeline against contdepth's (see the module docstring)."""
    from contdepth.data import DeviceLoader, load_cifar, write_fake_cifar

    if args.data:
        data = load_cifar("cifar10", args.data)
        source = str(args.data)
    else:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="contdepth_fake_cifar_"))
        write_fake_cifar(tmp, train=max(args.subset or 512, args.pipeline_batch), test=10)
        data = load_cifar("cifar10", tmp)
        source = "synthetic (write_fake_cifar)"
    train = data.train.head(args.subset)
    name = args.pipeline_model
    compile_mode, bf16, channels_last = MODES[args.pipeline_mode]
    if compile_mode is not None:
        torch._dynamo.reset()
    results = {
        "data": source,
        "images": len(train),
        "batch": args.pipeline_batch,
        "model": name,
        "contdepth_mode": args.pipeline_mode,
    }

    def trainer(model: nn.Module, mode: str | None, low: bool, cl: bool, ours: bool):
        model.to(device).train()
        if cl:
            model.to(memory_format=torch.channels_last)
        net = compile_module(model, mode, device)
        opt = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **(sgd_options(device) if ours else {})
        )  # contdepth train fuses SGD on CUDA

        def step(x: Tensor, y: Tensor) -> None:
            mark_step(mode, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    torch.manual_seed(args.seed)
    cd_model = cd.models.get(name)
    hand = HAND[name]()
    copy_weights(cd_model, hand)
    dataset = TransformDataset(train.images, train.labels, data.mean, data.std)
    dl = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.pipeline_batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    dev_loader = DeviceLoader(
        train,
        args.pipeline_batch,
        train=True,
        mean=data.mean,
        std=data.std,
        device=device,
        seed=args.seed,
        channels_last=channels_last,
    )
    pipelines = {  # name -> (batches of one epoch, training step)
        "conventional": (lambda: dl, trainer(hand, None, False, False, ours=False)),
        "contdepth": (lambda: dev_loader, trainer(cd_model, compile_mode, bf16, channels_last, ours=True)),
    }

    def epoch(key: str) -> float:
        batches, step = pipelines[key]
        sync(device)
        start = time.perf_counter()
        for x, y in batches():
            step(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        sync(device)
        return time.perf_counter() - start

    warm = {key: epoch(key) for key in pipelines}  # the first epoch: workers start, graphs compile
    times: dict[str, list[float]] = {key: [] for key in pipelines}
    keys = list(pipelines)
    for rep in range(args.pipeline_reps):
        for key in keys if rep % 2 == 0 else keys[::-1]:
            times[key].append(epoch(key))
    n = len(dev_loader) * args.pipeline_batch
    ips = {k: [n / t for t in v] for k, v in times.items()}
    ratios = [c / b for c, b in zip(ips["contdepth"], ips["conventional"], strict=True)]
    results.update(
        {
            "conventional": f"torch DataLoader, {args.workers} workers, {dataset.kind}; "
            f"hand-written {name}, eager, fp32",
            "contdepth": f"DeviceLoader (data and augmentation on {device.type}); "
            f"cd.models {name}, {args.pipeline_mode}",
            "clock": "wall",
            "first_epoch_s": warm,
            "images_per_s": {k: statistics.median(v) for k, v in ips.items()},
            "ratio_median": statistics.median(ratios),
            "ratios": ratios,
        }
    )
    print(
        f"  pipeline: conventional {results['images_per_s']['conventional']:.1f} img/s, contdepth "
        f"{results['images_per_s']['contdepth']:.1f} img/s, ratio {results['ratio_median']:.2f} ({n} images/epoch)",
        flush=True,
    )
    return results


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
    fig.savefig(path, dpi=110)
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
    if results.get("profile"):
        rows = []
        for name, p in results["profile"].items():
            for phase in ("inference", "train"):
                q = p[phase]
                diff = sorted(
                    q["ops_with_different_counts"].items(),
                    key=lambda kv: -abs(kv[1]["calls_contdepth"] - kv[1]["calls_hand"]),
                )
                listed = ", ".join(
                    f"{op.replace('aten::', '')} {v['calls_contdepth'] - v['calls_hand']:+.0f}" for op, v in diff[:6]
                )
                rows.append(
                    [
                        name,
                        phase,
                        f"{q['self_ms_total']['contdepth']:.1f} / {q['self_ms_total']['hand']:.1f}",
                        listed or "none",
                    ]
                )
        text += "\n\n" + markdown_table(
            [
                "model",
                "phase",
                "aten self ms per iteration (cd / hand)",
                "aten ops called a different number of times (cd - hand, per iteration)",
            ],
            rows,
        )
        so = results["step_overhead"]
        text += (
            f"\n\nPython cost of a Flow step (euler, identity blocks, (2, 4) state): {so['flow_us_per_step']:.1f} us, "
            f"against {so['loop_us_per_step']:.1f} us for the plain loop `x = x + m(x)`."
        )
    if results.get("pipeline"):
        p = results["pipeline"]
        text += "\n\n" + markdown_table(
            [
                f"pipeline ({p['model']} training epochs of {p['images']} images, batch {p['batch']})",
                "images/s",
                "ratio to conventional, median [min, max]",
            ],
            [
                [p["conventional"], f"{p['images_per_s']['conventional']:.1f}", "1"],
                [
                    p["contdepth"],
                    f"{p['images_per_s']['contdepth']:.1f}",
                    f"{p['ratio_median']:.2f} [{min(p['ratios']):.2f}, {max(p['ratios']):.2f}]",
                ],
            ],
        )
    if results.get("skipped"):
        text += "\n\nNot measured here: " + "; ".join(f"{s['mode']} ({s['reason']})" for s in results["skipped"]) + "."
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
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
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default 1 on CPU: the ratio is steadier on a shared machine; 0 = torch's default)",
    )
    parser.add_argument(
        "--pipeline", action="store_true", help="also time training epochs: the conventional pipeline vs contdepth's"
    )
    parser.add_argument(
        "--pipeline-mode",
        choices=list(MODES),
        default=None,
        help="contdepth's mode in --pipeline (default: reduce-overhead+bf16+cl on CUDA, compile+cl on a CPU, as "
        "`contdepth train` picks there)",
    )
    parser.add_argument("--pipeline-model", choices=sorted(HAND), default="resnet56")
    parser.add_argument(
        "--data", type=Path, default=None, help="CIFAR folder for --pipeline (default: synthetic images)"
    )
    parser.add_argument("--subset", type=int, default=None, help="training images for --pipeline (default all)")
    parser.add_argument("--pipeline-batch", type=int, default=128)
    parser.add_argument("--pipeline-reps", type=int, default=3)
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="DataLoader workers of the conventional pipeline (default: min(4, cores))",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the per-op profile")
    parser.add_argument(
        "--allocator",
        choices=["both", "default", "keep-freed"],
        default="both",
        help="CPU: glibc malloc as is, told to keep freed memory (mallopt), or both in turn (default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="more repetitions and iterations")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    threads = args.threads if args.threads is not None else (0 if cuda else 1)
    if threads:
        torch.set_num_threads(threads)
    args.batch = args.batch or (128 if cuda else 32)
    args.iters = args.iters or (50 if cuda else 1) * (2 if args.full else 1)
    args.reps = args.reps or (7 if cuda else 21)
    args.warmup = args.warmup if args.warmup is not None else (20 if cuda else 1)
    if args.full:
        args.reps *= 2
    args.pipeline_mode = args.pipeline_mode or ("reduce-overhead+bf16+cl" if cuda else "compile+cl")
    apply_backend_flags(backend_flags(device.type, deterministic=False))  # as `contdepth train` has them
    requested = args.modes or (list(MODES) if cuda else ["eager"])
    modes, skipped = [], []
    for mode in MODES:  # the modes this device cannot run are recorded as skipped, asked for or not
        reason = skip_reason(mode, device)
        if reason is None and mode in requested:
            modes.append(mode)
        elif reason is not None:
            skipped.append({"mode": mode, "reason": reason})
            print(f"  skipping {mode}: {reason}", flush=True)
    if args.pipeline and skip_reason(args.pipeline_mode, device):
        parser.error(f"--pipeline-mode {args.pipeline_mode}: {skip_reason(args.pipeline_mode, device)}")
    stem = "throughput" if not cuda else "throughput_cuda"
    path = args.out / f"{stem}.json"
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
    if not args.no_profile:
        results["profile"] = {name: op_profile(name, args, device) for name in args.models}
        results["step_overhead"] = step_overhead()
        write_json(path, results)
    if args.pipeline:
        results["pipeline"] = pipeline_epoch(args, device)
        write_json(path, results)
    results["markdown"] = tables(results)
    results["complete"] = True
    write_json(path, results)
    if results["comparisons"]:
        plot(results, args.out / f"{stem}.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
