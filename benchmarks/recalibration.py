"""Which BatchNorm recalibration leaves a trained net where it was, and recovers it at a finer step?

Running statistics estimated at one step count are wrong at another, so ``cd.models.recalibrate_bn``
re-estimates them at the new one. Done naively (statistics reset, then the training EMA over un-augmented
images) it costs accuracy at the trained step, where nothing changed. This benchmark varies one choice at
a time from the default of ``contdepth eval --recalibrate-bn`` and ``depth_dial.py`` (augmented as in
training, per-step statistics, a cumulative average, 5,000 images in batches of 200) and measures the
test accuracy of each trained net at its trained step and at 8 times as many Euler steps:

  * augmentation off (the images as they are);
  * one set of statistics per BatchNorm instead of one per evaluation of a block;
  * 600, 2,000 and all 50,000 images; batches of 50 and 1,000;
  * the training EMA (momentum 0.1) after the reset instead of a cumulative average;
  * the naive recipe: 2,000 un-augmented images in batches of 200, one set per BatchNorm;
  * the default with other seeds (other images' augmentation), for the spread of the default itself.

    python3 benchmarks/recalibration.py --data-dir data [--run DIR ...] [--out benchmarks/results]

Writes ``recalibration.json``; fixed steps run in bf16 autocast on a CPU with bf16 units (``--amp``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Measurements, add_out_argument, add_replace_argument, fingerprint, markdown_table
from depth_dial import accuracy, fresh
from refinement import add_test_set_arguments, check_runs, test_batches

import contdepth as cd
from contdepth.models.batchnorm import batchnorms
from contdepth.train.amp import AMP_CHOICES, autocast, resolve_amp
from contdepth.train.evaluate import recalibration_batches

CONTROL = ROOT / "results" / "cifar10-cpu" / "preact_resnet20-s0"
MULTIPLE = 8  # the finer step, in trained steps per block


@dataclass(frozen=True)
class Recipe:
    """How the running statistics are re-estimated."""

    images: int = 5000
    batch: int = 200
    augment: bool = True
    per_step: bool = True
    ema: bool = False  # the training EMA (momentum 0.1) instead of a cumulative average
    seed: int = 0


DEFAULT = Recipe()
VARIANTS: dict[str, Recipe | None] = {
    "as trained (no recalibration)": None,
    "default": DEFAULT,
    "un-augmented": replace(DEFAULT, augment=False),
    "one set per BatchNorm": replace(DEFAULT, per_step=False),
    "600 images": replace(DEFAULT, images=600),  # three whole batches: augmentation drops a partial one
    "2,000 images": replace(DEFAULT, images=2000),
    "all 50,000 images": replace(DEFAULT, images=50000),
    "batches of 50": replace(DEFAULT, batch=50),
    "batches of 1,000": replace(DEFAULT, batch=1000),
    "the training EMA (momentum 0.1) after the reset": replace(DEFAULT, ema=True),
    "naive: 2,000 un-augmented, one set per BatchNorm": Recipe(2000, 200, augment=False, per_step=False),
    "default, seed 1": replace(DEFAULT, seed=1),
    "default, seed 2": replace(DEFAULT, seed=2),
}


def calibration(data, recipe: Recipe) -> list[Tensor]:
    """The recalibration images of ``recipe``: evenly spaced training images, augmented or not, in batches."""
    return list(recalibration_batches(data, recipe.images, recipe.seed, batch=recipe.batch, augment=recipe.augment))


@torch.no_grad()
def ema_recalibration(net: nn.Module, batches: list[Tensor]) -> None:
    """The naive way: statistics reset, then the training EMA (each BatchNorm's own momentum) in train mode."""
    layers = batchnorms(net)
    for bn in layers:
        bn.reset_running_stats()
    net.eval()
    for bn in layers:
        bn.train()
    for x in batches:
        net(x)
    net.eval()


def measure(run: Path, data, batches, labels: Tensor, args, done: dict | None) -> dict:
    cfg = cd.train.loading.load_run_config(run)
    k = cfg.trained_steps_per_block
    info: dict = {"run": run.name, "fingerprint": fingerprint(run), "trained_steps_per_block": k, "rows": []}
    kept = {}
    if done is not None and done.get("fingerprint") == info["fingerprint"]:
        kept = {(r["variant"], r["steps_per_block"]): r for r in done["rows"]}
    for name, recipe in VARIANTS.items():
        for steps in (k, k * MULTIPLE):
            if (name, steps) in kept:
                row = kept[(name, steps)]
                if recipe is not None and "images_seen" not in row:  # rows measured before it was recorded
                    row["images_seen"] = sum(len(x) for x in calibration(data, recipe))
                info["rows"].append(row)
                continue
            net = fresh(run, "euler", steps)
            seconds, seen = 0.0, None
            with autocast(args.amp, torch.device("cpu")):
                if recipe is not None:
                    images = calibration(data, recipe)
                    seen = sum(len(x) for x in images)
                    start = time.perf_counter()
                    if recipe.ema:
                        ema_recalibration(net, images)
                    else:
                        cd.models.recalibrate_bn(net, images, per_step=recipe.per_step)
                    seconds = time.perf_counter() - start
                acc, t = accuracy(net, batches, labels)
            info["rows"].append(
                {
                    "variant": name,
                    "recipe": None if recipe is None else asdict(recipe),
                    "steps_per_block": steps,
                    "images_seen": seen,
                    "test_acc": acc,
                    "recalibration_seconds": seconds,
                    "eval_seconds": t,
                }
            )
            args.checkpoint(info)
            print(f"  {run.name:32s} {name:56s} {steps:>3} step/block  {100 * acc:6.2f}%", flush=True)
    return info


def tables(results: dict) -> str:
    parts = []
    for net in results["models"]:
        k = net["trained_steps_per_block"]
        acc = {(r["variant"], r["steps_per_block"]): r["test_acc"] for r in net["rows"]}
        secs = {(r["variant"], r["steps_per_block"]): r["recalibration_seconds"] for r in net["rows"]}
        head = ["recalibration", f"{k} step/block (trained) %", f"{k * MULTIPLE} steps/block %", "seconds at 8x"]
        rows = [
            [
                name,
                f"{100 * acc[(name, k)]:.2f}" if (name, k) in acc else "…",
                f"{100 * acc[(name, k * MULTIPLE)]:.2f}" if (name, k * MULTIPLE) in acc else "…",
                f"{secs[(name, k * MULTIPLE)]:.1f}" if (name, k * MULTIPLE) in secs else "…",
            ]
            for name in VARIANTS
        ]
        parts.append(f"{net['run']}\n\n{markdown_table(head, rows)}")
    return "\n\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    add_replace_argument(parser)
    parser.add_argument(
        "--run", type=Path, nargs="+", default=[CONTROL], help="trained run folders (default: the h = 1 control)"
    )
    add_test_set_arguments(parser)
    parser.add_argument(
        "--amp", choices=AMP_CHOICES, default="auto", help="auto: bf16 autocast on a CPU with bf16 units"
    )
    parser.add_argument("--seed", type=int, default=0, help="recorded; the variants carry their own seeds")
    args = parser.parse_args(argv)
    args.amp = resolve_amp(args.amp, "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    check_runs(args.run, args.data_dir)
    from contdepth.data import load_cifar

    data = load_cifar("cifar10", args.data_dir)
    batches, labels = test_batches(args.data_dir, args.test_subset, args.eval_batch)
    precision = "bf16 autocast" if args.amp == "bf16" else "float32"
    setting = f"{len(labels)} CIFAR-10 test images; fixed Euler steps in {precision}"
    store = Measurements(args.out / "recalibration.json", setting, args.seed, args.replace)
    args.checkpoint = store.checkpoint
    for run in args.run:
        store.add(measure(run, data, batches, labels, args, store.before.get(run.name)), "rows")
    store.finish(tables(store.results))
    print(store.results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
