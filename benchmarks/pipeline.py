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


def train_step(
    model: nn.Module, device: torch.device, mode: str | None, bf16: bool, channels_last: bool, fused_sgd: bool
) -> Callable[[Tensor, Tensor], None]:
    """One SGD step of ``model`` on ``device``; ``fused_sgd``: the optimiser options ``contdepth train`` uses."""
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = compile_module(model, mode, device)
    opt = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **(sgd_options(device) if fused_sgd else {})
    )

    def step(x: Tensor, y: Tensor) -> None:
        mark_step(mode, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


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
    pipelines: dict[str, tuple[Callable[[], Iterable], Callable[[Tensor, Tensor], None]]] = {
        # name -> (batches of one epoch, training step); contdepth train fuses SGD on CUDA
        "conventional": (lambda: dl, train_step(hand, device, None, False, False, fused_sgd=False)),
        "contdepth": (
            lambda: dev_loader,
            train_step(cd_model, device, compile_mode, bf16, channels_last, fused_sgd=True),
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


def run(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Time the pipelines and write ``pipeline.json`` into ``args.out``; returns what it wrote."""
    results: dict[str, Any] = {
        "provenance": provenance(args.seed, device),
        "device_type": device.type,
        "threads": torch.get_num_threads(),
        "pipeline": pipeline_epoch(args, device),
    }
    results["markdown"] = table(results["pipeline"])
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
