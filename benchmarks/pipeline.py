"""Training epochs: contdepth's pipeline against the conventional DataLoader one, in images/s.

The conventional pipeline: a ``torch.utils.data.DataLoader`` over uint8 CIFAR images, per-image random
crop + flip in ``--workers`` CPU workers, the hand-written net (``reference_nets.py``), eager, fp32.
contdepth's: the data and its augmentation on the device (``DeviceLoader``), the ``cd.models`` net in
``--pipeline-mode`` (a mode of ``_timing.MODES``; default ``reduce-overhead+bf16+cl`` on CUDA and
``compile+cl`` on a CPU, as ``contdepth train`` picks there). Both start from the same weights; after
one untimed epoch each (workers start, graphs compile), ``--pipeline-reps`` epochs each are timed on
the wall clock, the order alternating; the ratio is the median of contdepth/conventional images/s.

    python3 benchmarks/pipeline.py [--device cpu|cuda] [--data DATA_DIR] [--subset N] [--pipeline-model NAME]

``--data``: a CIFAR-10 folder (default: synthetic images written to a temporary folder). Results go
to ``--out`` (default ``runs/benchmarks``, git-ignored) as ``pipeline.json`` (``pipeline_cuda.json``
on CUDA); ``--out benchmarks/results`` refreshes the committed one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_out_argument, markdown_table, provenance, write_json
from _timing import MODES, add_device_arguments, set_up, skip_reason, stem, sync, twin_nets
from reference_nets import HAND

from contdepth.train.compiling import compile_module, mark_step
from contdepth.train.optim import sgd_options


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The pipeline's options (``throughput.py --pipeline`` takes them too)."""
    parser.add_argument(
        "--pipeline-mode",
        choices=list(MODES),
        default=None,
        help="contdepth's mode (default: reduce-overhead+bf16+cl on CUDA, compile+cl on a CPU, as "
        "`contdepth train` picks there)",
    )
    parser.add_argument("--pipeline-model", choices=sorted(HAND), default="resnet56")
    parser.add_argument("--data", type=Path, default=None, help="CIFAR-10 folder (default: synthetic images)")
    parser.add_argument("--subset", type=int, default=None, help="training images (default all)")
    parser.add_argument("--pipeline-batch", type=int, default=128)
    parser.add_argument("--pipeline-reps", type=int, default=3, help="timed epochs of each pipeline")
    parser.add_argument("--profile-steps", type=int, default=20, help="steps timed by phase for the profile")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="DataLoader workers of the conventional pipeline (default: min(4, cores))",
    )


def resolve_mode(args: argparse.Namespace, device: torch.device, parser: argparse.ArgumentParser) -> None:
    """Fill in ``--pipeline-mode``'s device default; a mode the device cannot run is a usage error."""
    args.pipeline_mode = args.pipeline_mode or ("reduce-overhead+bf16+cl" if device.type == "cuda" else "compile+cl")
    reason = skip_reason(args.pipeline_mode, device)
    if reason:
        parser.error(f"--pipeline-mode {args.pipeline_mode}: {reason}")


class TrainStep:
    """One SGD step of ``model`` on ``device`` in two parts, ``forward_backward(x, y)`` and ``update()``;
    ``fused_sgd``: the optimiser options ``contdepth train`` uses."""

    def __init__(
        self, model: nn.Module, device: torch.device, mode: str | None, bf16: bool, channels_last: bool, fused_sgd: bool
    ) -> None:
        model.to(device).train()
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.net = compile_module(model, mode, device)
        self.mode, self.device, self.bf16 = mode, device, bf16
        self.opt = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **(sgd_options(device) if fused_sgd else {})
        )

    def forward_backward(self, x: Tensor, y: Tensor) -> None:
        mark_step(self.mode, self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = F.cross_entropy(self.net(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()

    def update(self) -> None:
        self.opt.step()

    def __call__(self, x: Tensor, y: Tensor) -> None:
        self.forward_backward(x, y)
        self.update()


def where_time_goes(batches: Callable[[], Iterable], step: TrainStep, device: torch.device, steps: int) -> dict:
    """Seconds per step of contdepth's pipeline by phase (data, forward+backward, optimiser), timed on the wall
    clock, and forward+backward split by operator kind from a ``torch.profiler`` pass over the same steps."""
    phases = {"data": 0.0, "forward+backward": 0.0, "optimiser": 0.0}
    batch_iter = iter(batches())
    done = 0
    for _ in range(steps):
        sync(device)
        t0 = time.perf_counter()
        try:
            x, y = next(batch_iter)
        except StopIteration:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        sync(device)
        t1 = time.perf_counter()
        step.forward_backward(x, y)
        sync(device)
        t2 = time.perf_counter()
        step.update()
        sync(device)
        t3 = time.perf_counter()
        phases["data"] += t1 - t0
        phases["forward+backward"] += t2 - t1
        phases["optimiser"] += t3 - t2
        done += 1
    from torch.profiler import ProfilerActivity, profile

    profiled = list(itertools.islice(batches(), min(done, 10)))  # the first batches only, not a whole epoch
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        sync(device)
        start = time.perf_counter()
        for x, y in profiled:
            step.forward_backward(x.to(device), y.to(device))
        sync(device)
        total = time.perf_counter() - start
    conv = bn = 0.0
    for event in prof.key_averages():
        if "conv" in event.key:
            conv += event.self_cpu_time_total / 1e6
        elif "batch_norm" in event.key:
            bn += event.self_cpu_time_total / 1e6
    n = max(len(profiled), 1)
    return {
        "steps": done,
        "seconds_per_step": {k: v / max(done, 1) for k, v in phases.items()},
        "forward_backward_profiled_seconds_per_step": {
            "convolutions (forward and backward)": conv / n,
            "batch norm (aten operators)": bn / n,
            "everything else": (total - conv - bn) / n,
        },
        "note": "the profiled pass (profiler on, so a little slower) splits forward+backward by the operators' self "
        "CPU time; kernels torch.compile generates itself (batch norm, ReLU and additions, fused) are not aten "
        "operators and count as 'everything else', as do Python and the autograd engine",
    }


def pipeline_epoch(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Images/s of training epochs: the conventional pipeline against contdepth's (see the module docstring)."""
    from contdepth.data import DeviceLoader, load_cifar, write_fake_cifar

    if args.data:
        data = load_cifar("cifar10", args.data)
        source = str(args.data)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="contdepth_fake_cifar_"))
        write_fake_cifar(tmp, train=max(args.subset or 512, args.pipeline_batch), test=10)
        data = load_cifar("cifar10", tmp)
        source = "synthetic (write_fake_cifar)"
    train = data.train.head(args.subset)
    name = args.pipeline_model
    compile_mode, bf16, channels_last = MODES[args.pipeline_mode]
    if compile_mode is not None:
        torch._dynamo.reset()
    results: dict[str, Any] = {
        "data": source,
        "images": len(train),
        "batch": args.pipeline_batch,
        "model": name,
        "contdepth_mode": args.pipeline_mode,
    }
    cd_model, hand = twin_nets(name, args.seed)
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
    pipelines: dict[str, tuple[Callable[[], Iterable], TrainStep]] = {
        # name -> (batches of one epoch, training step); contdepth train fuses SGD on CUDA
        "conventional": (lambda: dl, TrainStep(hand, device, None, False, False, fused_sgd=False)),
        "contdepth": (
            lambda: dev_loader,
            TrainStep(cd_model, device, compile_mode, bf16, channels_last, fused_sgd=True),
        ),
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
            "where_time_goes": {key: where_time_goes(*pipelines[key], device, args.profile_steps) for key in pipelines},
        }
    )
    print(
        f"  pipeline: conventional {results['images_per_s']['conventional']:.1f} img/s, contdepth "
        f"{results['images_per_s']['contdepth']:.1f} img/s, ratio {results['ratio_median']:.2f} ({n} images/epoch)",
        flush=True,
    )
    return results


def table(p: dict[str, Any]) -> str:
    return markdown_table(
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


def profile_table(p: dict[str, Any]) -> str:
    """Milliseconds per training step by phase, and forward+backward by operator kind, per pipeline."""
    rows = []
    for key, w in p.get("where_time_goes", {}).items():
        ms = {k: 1000 * v for k, v in w["seconds_per_step"].items()}
        split = {k: 1000 * v for k, v in w["forward_backward_profiled_seconds_per_step"].items()}
        rows.append(
            [key, f"{ms['data']:.1f}", f"{ms['forward+backward']:.1f}", f"{ms['optimiser']:.1f}"]
            + [f"{v:.1f}" for v in split.values()]
        )
    if not rows:
        return ""
    first = next(iter(p["where_time_goes"].values()))
    kinds = list(first["forward_backward_profiled_seconds_per_step"])
    header = ["ms per step", "data", "forward+backward", "optimiser", *[f"profiled: {k}" for k in kinds]]
    return markdown_table(header, rows) + "\n\n" + first["note"]


def run(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Time the pipelines and write ``pipeline.json`` into ``args.out``; returns what it wrote."""
    results: dict[str, Any] = {
        "provenance": provenance(args.seed, device),
        "device_type": device.type,
        "threads": torch.get_num_threads(),
        "pipeline": pipeline_epoch(args, device),
    }
    results["markdown"] = table(results["pipeline"]) + "\n\n" + profile_table(results["pipeline"])
    write_json(args.out / f"{stem('pipeline', device)}.json", results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser, "JSON")
    add_device_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    device = set_up(args)
    resolve_mode(args, device, parser)
    print(run(args, device)["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
