"""ATen operators dispatched per training step (forward, backward, SGD step) of contdepth models.

Every operator an eager step calls costs a kernel launch on a GPU and some Python and dispatcher
work on any device, so fewer operators per step is a speed gain that a CPU can count exactly
(the count does not depend on the batch or image size). Counted with a ``TorchDispatchMode``.

    python3 benchmarks/op_counts.py                      # seconds
    python3 benchmarks/op_counts.py --label before --out /tmp/ops
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import add_out_argument, markdown_table, provenance, write_json

import contdepth as cd

MODELS = ("resnet56", "lm_resnet56", "preact_resnet56")
NOISES = ("none", "sd:0.8")


class OpCounter(TorchDispatchMode):
    """Counts every ATen operator dispatched while active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))


def count_step(name: str, noise: str, batch: int, size: int, seed: int) -> Counter[str]:
    """Operators of one SGD training step of model ``name`` with ``noise`` (after one warm-up step)."""
    torch.manual_seed(seed)
    model = cd.models.get(name, noise=noise).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # momentum buffers exist from here on
    counter = OpCounter()
    with counter:
        step()
    return counter.ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser, "the JSON")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=cd.models.available(), metavar="MODEL")
    parser.add_argument("--noises", nargs="+", default=list(NOISES), help="noise specs (none, sd:0.8, gaussian:0.001)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=16, help="image side (the counts do not depend on it)")
    parser.add_argument("--label", default="op_counts", help="name of the JSON file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, results = [], []
    for name in args.models:
        for noise in args.noises:
            ops = count_step(name, noise, args.batch, args.size, args.seed)
            total = sum(ops.values())
            top = dict(ops.most_common(8))
            results.append({"model": name, "noise": noise, "ops_per_step": total, "by_op": dict(sorted(ops.items()))})
            rows.append([name, noise, total, ", ".join(f"{k} {v}" for k, v in top.items())])
    print(markdown_table(["model", "noise", "aten ops / training step", "most frequent"], rows))
    path = write_json(
        args.out / f"{args.label}.json",
        {
            "provenance": provenance(args.seed),
            "batch": args.batch,
            "size": args.size,
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
