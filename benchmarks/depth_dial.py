"""Depth as a dial: does a trained net keep its accuracy at other step counts and schemes?

For each trained run (the depth-dial study's recipes and, as the negative control, the CPU study's
h = 1 Euler net), on the CIFAR-10 test set, it measures test accuracy
  * under euler, heun and rk4 at 1, 2, 4 and 8 steps per block, and at ½ (one step per two blocks,
    after compressing the knots by projection) for nets whose weights are continuous in depth;
  * under dopri5 (``cd.odeint`` on every stage flow, rtol/atol given);
each as loaded and after BatchNorm recalibration (``cd.models.recalibrate_bn`` on ``--recalibrate``
augmented training images: per-step statistics for the fixed-step schemes, one set per BatchNorm for
dopri5, whose times change from batch to batch), with the cost in residual-branch evaluations per image
(counted by hooks; dopri5's from torchdiffeq's count) and in seconds on the machine named in the JSON.

    python3 benchmarks/depth_dial.py --data-dir data [--run DIR ...] [--test-subset 10000] [--out benchmarks/results]

Writes ``depth_dial.json`` and ``depth_dial.png`` (accuracy against branch evaluations, one line per net).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, add_out_argument, markdown_table, provenance, save_figure, setup_matplotlib, write_json
from refinement import add_test_set_arguments, check_runs, continuous_forward, test_batches

import contdepth as cd
from contdepth.train.rundir import RESULTS
from contdepth.train.weights import load_run_config

SCHEMES = ("euler", "heun", "rk4")
STEPS = (1, 2, 4, 8)
STUDY = ROOT / "results" / "depth-dial-cpu"
CONTROL = ROOT / "results" / "cifar10-cpu" / "preact_resnet20-s0"


def default_runs() -> list[Path]:
    """The control and every finished run of the depth-dial study that is committed."""
    return [CONTROL, *sorted(p for p in STUDY.glob("*-s*") if (p / RESULTS).is_file())]


class BranchCounter:
    """Counts evaluations of the residual branches (field blocks and transition branches) per forward."""

    def __init__(self, model: nn.Module) -> None:
        self.calls = 0
        branches = [m for f in model.modules() if isinstance(f, (cd.Blocks, cd.Interpolated)) for m in f.blocks]
        self._handles = [b.register_forward_hook(self._hook) for b in branches]

    def _hook(self, *_: object) -> None:
        self.calls += 1

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def fresh(run: Path, scheme: str, steps: float) -> nn.Module:
    """The run's trained net at ``scheme`` and ``steps`` per block (½: knots compressed first)."""
    net = cd.train.load_run(run)
    if steps < 1:
        net.reknot(steps)
    return net.rediscretise(scheme=scheme, steps_per_block=steps).eval()


def accuracy(forward, batches, labels: Tensor) -> tuple[float, float]:
    start = time.perf_counter()
    with torch.no_grad():
        predicted = torch.cat([forward(x).argmax(1) for x, _ in batches])
    return (predicted == labels).double().mean().item(), time.perf_counter() - start


def measure(run: Path, batches, labels: Tensor, calibration: list[Tensor], args) -> dict:
    cfg = load_run_config(run)
    linear = cfg.depth_basis == "linear"
    info = {"run": run.name, "model": cfg.model, "depth_basis": cfg.depth_basis, "recipe": recipe(cfg), "rows": []}
    steps = ((0.5,) if linear else ()) + STEPS
    for scheme in SCHEMES:
        for s in steps:
            row: dict = {"scheme": scheme, "steps_per_block": s}
            for recal in (False, True):
                net = fresh(run, scheme, s)
                seconds = 0.0
                if recal:
                    start = time.perf_counter()
                    cd.models.recalibrate_bn(net, calibration, per_step=True)
                    seconds = time.perf_counter() - start
                counter = BranchCounter(net)
                acc, t = accuracy(net, batches, labels)
                counter.close()
                key = "recalibrated" if recal else "as_trained"
                row[key] = {"test_acc": acc, "seconds": t, "recalibration_seconds": seconds}
                row["branch_evals_per_image"] = counter.calls / len(batches)
            info["rows"].append(row)
            print(f"  {run.name:40s} {scheme:5s} {s:>4} step/block  {_cell(row)}", flush=True)
    if cfg.scheme not in (None, "euler") or cfg.noise and "shake" in cfg.noise:
        return info
    row = {"scheme": "dopri5", "steps_per_block": None}
    for recal in (False, True):
        net = fresh(run, "euler", cfg.trained_steps_per_block)
        nfe: list[int] = []

        def forward(x: Tensor, net: nn.Module = net, nfe: list[int] = nfe) -> Tensor:
            return continuous_forward(net, x, args.rtol, args.atol, nfe)

        seconds = 0.0
        if recal:
            start = time.perf_counter()
            cd.models.recalibrate_bn(net, calibration, per_step=False, forward=forward)
            seconds = time.perf_counter() - start
        nfe.clear()
        acc, t = accuracy(forward, batches, labels)
        transitions = sum(1 for st in net.stages if st.transition is not None)
        row["branch_evals_per_image"] = sum(nfe) / len(batches) + transitions
        row["recalibrated" if recal else "as_trained"] = {
            "test_acc": acc,
            "seconds": t,
            "recalibration_seconds": seconds,
        }
    info["rows"].append(row)
    print(f"  {run.name:40s} dopri5            {_cell(row)}", flush=True)
    return info


def recipe(cfg) -> str:
    parts = [f"{cfg.steps_per_block} step/block"]
    if cfg.train_steps:
        parts = [f"steps per batch from {{{','.join(map(str, cfg.train_steps))}}}"]
    if cfg.refine_at:
        parts.append(f"doubled after epochs {','.join(map(str, cfg.refine_at))}")
    if cfg.noise:
        parts.append(f"noise {cfg.noise}")
    if cfg.depth_basis != "blocks":
        parts.append(f"{cfg.depth_basis} in depth")
    return ", ".join(parts)


def _cell(row: dict) -> str:
    a, b = row["as_trained"]["test_acc"], row["recalibrated"]["test_acc"]
    return f"{100 * a:6.2f}% / {100 * b:6.2f}% recalibrated  ({row['branch_evals_per_image']:.0f} branch evals)"


def calibration_images(data_dir: Path, n: int, seed: int) -> list[Tensor]:
    from contdepth.data import DeviceLoader, load_cifar

    data = load_cifar("cifar10", data_dir)
    loader = DeviceLoader(data.train.spread(n), min(200, n), train=True, seed=seed, mean=data.mean, std=data.std)
    loader.begin_epoch()
    return [x for x, _ in loader.batches()]


def summary(net: dict) -> dict:
    """The trained accuracy and the worst drop from it over 2x, 4x, 8x the trained steps and dopri5 (recalibrated)."""
    rows = net["rows"]
    base = next(r for r in rows if r["scheme"] == "euler" and r["steps_per_block"] == 1)
    trained = base["as_trained"]["test_acc"]
    finer = [r for r in rows if r["scheme"] == "euler" and (r["steps_per_block"] or 0) > 1] + [
        r for r in rows if r["scheme"] == "dopri5"
    ]
    half = [r for r in rows if r["steps_per_block"] == 0.5 and r["scheme"] == "euler"]
    best = [max(r["as_trained"]["test_acc"], r["recalibrated"]["test_acc"]) for r in finer + half]
    return {"trained_acc": trained, "worst_drop_points": 100 * (trained - min(best)) if best else None}


def tables(results: dict) -> str:
    header = ["run", "recipe", "trained acc %", "worst drop (points), 2x-8x + dopri5" + " (+½)", "dopri5 % (recal.)"]
    rows = []
    for net in results["models"]:
        dop = next((r for r in net["rows"] if r["scheme"] == "dopri5"), None)
        s = net["summary"]
        rows.append(
            [
                net["run"],
                net["recipe"],
                f"{100 * s['trained_acc']:.2f}",
                "-" if s["worst_drop_points"] is None else f"{s['worst_drop_points']:.2f}",
                "-"
                if dop is None
                else f"{100 * dop['as_trained']['test_acc']:.2f} ({100 * dop['recalibrated']['test_acc']:.2f})",
            ]
        )
    return markdown_table(header, rows)


def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    fig, ax = plt.subplots(figsize=(9, 5))
    for net in results["models"]:
        euler = [r for r in net["rows"] if r["scheme"] == "euler"]
        x = [r["branch_evals_per_image"] for r in euler]
        (line,) = ax.plot(x, [100 * r["recalibrated"]["test_acc"] for r in euler], "o-", label=f"{net['run']}")
        ax.plot(x, [100 * r["as_trained"]["test_acc"] for r in euler], "o:", color=line.get_color(), alpha=0.5)
        for r in net["rows"]:
            if r["scheme"] != "euler":
                marker = {"heun": "^", "rk4": "s", "dopri5": "*"}[r["scheme"]]
                ax.plot(
                    [r["branch_evals_per_image"]],
                    [100 * r["recalibrated"]["test_acc"]],
                    marker,
                    color=line.get_color(),
                    ms=7,
                )
    ax.set_xscale("log", base=2)
    ax.set(
        xlabel="residual-branch evaluations per image",
        ylabel="test accuracy (%)",
        title="accuracy against cost: euler (dotted: BatchNorm as trained), heun ▲, rk4 ■, dopri5 ★ (recalibrated)",
    )
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument(
        "--run", type=Path, nargs="+", default=None, help="trained run folders (default: study + control)"
    )
    add_test_set_arguments(parser)
    parser.add_argument("--recalibrate", type=int, default=5000, help="training images for BatchNorm recalibration")
    parser.add_argument("--seed", type=int, default=0, help="seeds the recalibration images' augmentation")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.run or default_runs()
    check_runs(runs, args.data_dir)
    batches, labels = test_batches(args.data_dir, args.test_subset, args.eval_batch)
    calibration = calibration_images(args.data_dir, args.recalibrate, args.seed)
    results: dict = {
        "provenance": provenance(args.seed),
        "setting": f"{len(labels)} CIFAR-10 test images; BatchNorm recalibrated on {args.recalibrate} augmented "
        f"training images; dopri5 rtol {args.rtol:g}, atol {args.atol:g}",
        "models": [],
    }
    for run in runs:
        net = measure(run, batches, labels, calibration, args)
        net["summary"] = summary(net)
        results["models"].append(net)
        write_json(args.out / "depth_dial.json", results)  # each net as it is measured: nothing lost on a stop
    results["markdown"] = tables(results)
    write_json(args.out / "depth_dial.json", results)
    plot(results, args.out / "depth_dial.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
