"""The plainest compiled CIFAR training loop, to measure ``contdepth train`` against (``cpu_training.py --vs-loop``).

The same model (``contdepth.models.get``) and data (CIFAR read by ``contdepth.data.load_cifar``, the first
``--subset`` training images), written as a tutorial would: per-sample pad 4 + random 32x32 crop + flip in
Python, SGD (momentum 0.9, weight decay 1e-4, no Nesterov) at lr 0.1 divided by 10 at half and three
quarters of the epochs, ``torch.compile`` (mode default) + channels_last, optional bf16 autocast; no
meters, no divergence watch, no progress, no evaluation. Timed as ``contdepth train`` times itself: images
per second of each epoch's training loop, the median over the epochs after the first (which compiles).

Each step's time is split, in wall and in process CPU seconds (a CPU computes synchronously), into ``data``
(the batch), ``forward_backward``, ``optimiser`` (step and zero_grad) and ``bookkeeping`` (the rest: the
learning rate, the order, the loop), summed over the timed epochs, as ``_phase_timer.py`` splits
``contdepth train``'s.

    python3 benchmarks/_minimal_loop.py --data-dir data --subset 2560 --epochs 3 --amp bf16 --out x.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _phase_timer import Phases, now

import contdepth as cd
from contdepth.data import load_cifar


def crop_flip(padded: Tensor, index: list[int], offsets: list[list[int]], flips: list[bool]) -> Tensor:
    """Per-sample random crops of 32x32 from the zero-padded uint8 ``padded`` (N, 3, 40, 40), mirrored where drawn."""
    out = torch.empty(len(index), 3, 32, 32, dtype=torch.uint8)
    for k, (i, (dy, dx), flip) in enumerate(zip(index, offsets, flips, strict=True)):
        crop = padded[i, :, dy : dy + 32, dx : dx + 32]
        out[k] = crop.flip(2) if flip else crop
    return out


def lr_at(epoch: int, epochs: int, lr: float = 0.1) -> float:
    """The step schedule of ``contdepth train``'s default: lr / 10 from half the epochs on, / 100 from 3/4 on."""
    milestones = sorted({max(1, round(epochs / 2)), max(1, round(3 * epochs / 4))})
    return lr * 0.1 ** sum(epoch > m for m in milestones)


def train(
    model_name: str,
    data_dir: str,
    *,
    subset: int,
    epochs: int,
    batch_size: int = 128,
    bf16: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Train and time; returns images/s (median of epochs 2..), each epoch's seconds, compile seconds and the split."""
    torch.manual_seed(seed)
    data = load_cifar("cifar10", data_dir)
    images, labels = data.train.images[:subset], data.train.labels[:subset]
    padded = F.pad(images, (4, 4, 4, 4))
    mean = torch.tensor(data.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(data.std).view(1, 3, 1, 1) * 255
    model = cd.models.get(model_name).to(memory_format=torch.channels_last)
    net = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=False)
    steps = subset // batch_size
    seconds, cpu_seconds, phases = [], [], Phases()
    compile_seconds = 0.0
    model.train()
    for epoch in range(1, epochs + 1):
        timed = epoch > 1
        start = t0 = now()
        for group in opt.param_groups:
            group["lr"] = lr_at(epoch, epochs)
        order = torch.randperm(subset).tolist()
        for step in range(steps):
            index = order[step * batch_size : (step + 1) * batch_size]
            offsets = torch.randint(0, 9, (len(index), 2)).tolist()
            flips = (torch.rand(len(index)) < 0.5).tolist()
            x = (crop_flip(padded, index, offsets, flips).float() - mean) / std
            x = x.contiguous(memory_format=torch.channels_last)
            y = labels[index]
            t1 = now()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x), y)
            loss.backward()
            t2 = now()
            opt.step()
            opt.zero_grad(set_to_none=True)
            t3 = now()
            if timed:
                phases.add("data", t0, t1)
                phases.add("forward_backward", t1, t2)
                phases.add("optimiser", t2, t3)
                phases.steps += 1
            elif step == 0:
                compile_seconds = t2[0] - t1[0]
            t0 = now()
        end = now()
        seconds.append(end[0] - start[0])
        cpu_seconds.append(end[1] - start[1])
        if timed:  # the epoch's time less its steps' phases: the learning rate, the order, the loop itself
            phases.add("bookkeeping", start, end)
    for clock in (phases.wall, phases.cpu):
        clock["bookkeeping"] -= clock["data"] + clock["forward_backward"] + clock["optimiser"]
    images = steps * batch_size
    return {
        "images_per_s": statistics.median(images / s for s in seconds[1:] or seconds),
        "images_per_cpu_s": statistics.median(images / s for s in cpu_seconds[1:] or cpu_seconds),
        "epoch_seconds": seconds,
        "epoch_cpu_seconds": cpu_seconds,
        "compile_seconds": compile_seconds,
        "timed_epochs": max(len(seconds) - 1, 1),
        **phases.summary(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--subset", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--amp", choices=("none", "bf16"), default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    result = train(
        args.model, args.data_dir, subset=args.subset, epochs=args.epochs, bf16=args.amp == "bf16", seed=args.seed
    )
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"minimal loop {args.model} {args.amp}: {result['images_per_s']:.0f} img/s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
