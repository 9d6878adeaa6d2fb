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
The fixed-step rows run in bf16 autocast on a CPU with bf16 units (``--amp``, as ``contdepth eval``;
each net records its ``fixed_step_amp`` and is finished in it when continued elsewhere), dopri5 always in
float32 (its error control needs more than bf16's 8 bits). Nets and images are in channels_last memory
format, which oneDNN's CPU convolutions run faster than NCHW (as in training: :mod:`contdepth.train.speed`).
Nets trained at k > 1 steps per block are also measured under euler at 2k, 4k and 8k: the summary
asks whether a net keeps its trained accuracy (within 1 point) at 2x, 4x, 8x its trained steps, under
dopri5 and, for depth-continuous nets, at ½x, and records per net what can stop it: how much the
weights jump from block to block and the largest |hλ| of its trained steps.

Every finished row is written at once; rerun with the same settings and it continues where it stopped.

    python3 benchmarks/depth_dial.py --data-dir data [--run DIR ...] [--test-subset 10000] [--out benchmarks/results]

Writes ``depth_dial.json`` and ``depth_dial.png`` (accuracy against branch evaluations, one line per net; after
every net, and with ``--figure-only`` from the JSON alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ROOT,
    Measurements,
    add_out_argument,
    add_replace_argument,
    fingerprint,
    markdown_table,
    save_figure,
    setup_matplotlib,
)
from refinement import add_test_set_arguments, check_runs, continuous_forward, test_batches

import contdepth as cd
from contdepth.runs.files import RESULTS
from contdepth.train.amp import AMP_CHOICES, autocast, resolve_amp
from contdepth.train.evaluate import recalibration_batches
from contdepth.train.loading import load_run_config
from contdepth.train.stepping import eval_steps_at

SCHEMES = ("euler", "heun", "rk4")
STEPS = (1, 2, 4, 8)
#: multiples of the trained step count that the summary judges a net at
MULTIPLES = (2, 4, 8)
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
    net = net.rediscretise(scheme=scheme, steps_per_block=steps).eval()
    return net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def accuracy(forward, batches, labels: Tensor) -> tuple[float, float]:
    start = time.perf_counter()
    with torch.no_grad():
        predicted = torch.cat([forward(x).argmax(1) for x, _ in batches])
    return (predicted == labels).double().mean().item(), time.perf_counter() - start


def planned(cfg) -> list[tuple[str, float]]:
    """The (scheme, steps per block) rows of one net: every scheme at ½ (depth-continuous nets only),
    1, 2, 4 and 8, plus euler at 2, 4 and 8 times (and ½ of) the trained step count where those are
    not among them."""
    linear = cfg.depth_basis == "linear"
    steps = ((0.5,) if linear else ()) + STEPS
    k = cfg.trained_steps_per_block
    extra = sorted({k * m for m in ((0.5,) if linear else ()) + MULTIPLES} - set(steps))
    return [(scheme, s) for scheme in SCHEMES for s in steps] + [("euler", s) for s in extra]


def measure(
    run: Path, batches, labels: Tensor, calibration: list[Tensor], args, done: dict | None, verdict_only: bool = False
) -> dict:
    """One net's rows; rows already in ``done`` (a previous, interrupted measurement of the same run
    in the same setting) are kept, so a stopped benchmark continues where it was. ``verdict_only``: measure
    only the rows the verdict needs (euler and dopri5), keeping the others measured before."""
    cfg = load_run_config(run)
    info = {
        "run": run.name,
        "fingerprint": fingerprint(run),
        "model": cfg.model,
        "depth_basis": cfg.depth_basis,
        "recipe": recipe(cfg),
        "trained_steps_per_block": cfg.trained_steps_per_block,
        "training_steps_per_block": training_steps(cfg),
        "fixed_step_amp": args.amp,  # dopri5 runs in float32
        "rows": [],
    }
    kept = {}
    if done is not None and done.get("fingerprint") == info["fingerprint"]:
        kept = {(r["scheme"], r["steps_per_block"]): r for r in done["rows"]}
        info["diagnostics"] = done.get("diagnostics")
        info["fixed_step_amp"] = done.get("fixed_step_amp", args.amp)  # a net is finished in the precision it began
    amp = info["fixed_step_amp"]
    if not info.get("diagnostics"):
        info["diagnostics"] = diagnostics(run, batches[0][0][: args.spectra_images], args.seed)
        args.checkpoint(info)

    def fixed_step_row(scheme: str, s: float, new: bool = True) -> None:
        if (scheme, s) in kept:
            info["rows"].append(kept[(scheme, s)])
            return
        if not new:
            return
        row: dict = {"scheme": scheme, "steps_per_block": s}
        for recal in (False, True):
            net = fresh(run, scheme, s)
            seconds = 0.0
            with autocast(amp, torch.device("cpu")):
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
        args.checkpoint(info)
        print(f"  {run.name:40s} {scheme:5s} {s:>4} step/block  {_cell(row)}", flush=True)

    rows = planned(cfg)
    for scheme, s in (r for r in rows if r[0] == "euler"):  # the verdict's rows first: euler, then dopri5
        fixed_step_row(scheme, s)
    if has_ode_limit(cfg):
        continuous_rows(run, cfg.trained_steps_per_block, kept, info, calibration, batches, labels, args)
    for scheme, s in (r for r in rows if r[0] != "euler"):
        fixed_step_row(scheme, s, new=not verdict_only)
    return info


def has_ode_limit(cfg) -> bool:
    """Whether the dopri5 row applies: a net trained under its model's default scheme or euler, and not
    with shake-shake's law (whose random mixing of two branches has no drift to integrate)."""
    return cfg.scheme in (None, "euler") and not (cfg.noise and "shake" in cfg.noise)


def continuous_rows(
    run: Path, trained_steps: int, kept: dict, info: dict, calibration, batches, labels: Tensor, args
) -> None:
    """The dopri5 row, as trained and then recalibrated, each half written as it is done."""
    row = dict(kept.get(("dopri5", None), {"scheme": "dopri5", "steps_per_block": None}))
    info["rows"].append(row)  # filled in place, and written after each half: the row takes the longest
    for recal in (False, True):
        key = "recalibrated" if recal else "as_trained"
        if key in row:
            continue
        net = fresh(run, "euler", trained_steps)
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
        row[key] = {"test_acc": acc, "seconds": t, "recalibration_seconds": seconds}
        args.checkpoint(info)
    print(f"  {run.name:40s} dopri5            {_cell(row)}", flush=True)


def diagnostics(run: Path, images: Tensor, seed: int) -> dict:
    """What can stop a net from being a discretisation, measured on the net as trained:

    * ``roughness``: per stage, the mean over neighbouring blocks of ``|θ_{m+1} - θ_m| / |θ_m|``, the
      relative jump of all a block's parameters (convolutions and BatchNorm affine) from one block to
      the next (0 for weights constant in depth; a smooth ``θ(t)`` sampled at ``M`` blocks gives ``O(1/M)``);
    * ``max_abs_h_lambda``: per stage, the largest ``|h λ|`` over the steps and the ``images`` of the
      leading eigenvalue of the step Jacobian ``h ∂f/∂u`` (:func:`contdepth.analysis.block_spectra`):
      a step sits in the region where refinement changes little only when it is well below 1.
    """
    from contdepth.analysis import block_spectra

    net = fresh(run, "euler", load_run_config(run).trained_steps_per_block)
    roughness = []
    for stage in net.stages:
        flow = stage.active_flow
        blocks = getattr(flow.field, "blocks", None) if flow is not None else None
        if blocks is None or len(blocks) < 2:
            roughness.append(None)
            continue
        vecs = [torch.cat([p.detach().flatten() for p in b.parameters()]) for b in blocks]
        jumps = [((b - a).norm() / a.norm()).item() for a, b in zip(vecs, vecs[1:], strict=False)]
        roughness.append(sum(jumps) / len(jumps))
    spectra = block_spectra(net, images.float(), n_eigs=1, seed=seed)
    lam = [max(float(np.nanmax(s.spectral_radius)) for s in spectra.stage(i)) for i in spectra.stages]
    return {"roughness": roughness, "max_abs_h_lambda": lam, "spectra_images": int(images.shape[0])}


def training_steps(cfg) -> float:
    """The steps per block a training image went through, on average over the epochs: the recipe's training cost
    in units of one step per block (random step counts at their expected value)."""
    if cfg.train_steps:
        return sum(cfg.train_steps) / len(cfg.train_steps)
    return sum(eval_steps_at(cfg.steps_per_block, cfg.refine_at, e) for e in range(1, cfg.epochs + 1)) / cfg.epochs


def recipe(cfg) -> str:
    parts = [f"{cfg.steps_per_block} step{'s' if cfg.steps_per_block != 1 else ''}/block"]
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
    """``contdepth eval --recalibrate-bn n``'s images, kept for every row."""
    from contdepth.data import load_cifar

    batches = recalibration_batches(load_cifar("cifar10", data_dir), n, seed)
    return [x.contiguous(memory_format=torch.channels_last) for x in batches]


def summary(net: dict) -> dict:
    """The trained accuracy (euler at the trained steps per block, BatchNorm as trained) and, at 2x, 4x and 8x
    the trained steps, under dopri5 and (depth-continuous nets) at ½x, the drop from it in points, with the
    better of BatchNorm as trained and recalibrated (None until both are measured, unless the half measured
    is already within 1 point); ``dial`` says whether every drop is within 1 point, ``decided`` whether the
    rows in so far settle that (all measured, or one drop already above 1 point): a net's verdict comes before
    its heun and rk4 rows."""
    rows = net["rows"]
    k = net["trained_steps_per_block"]
    euler = {r["steps_per_block"]: r for r in rows if r["scheme"] == "euler"}
    if k not in euler:
        return {"trained_acc": None, "drop_points": {}, "worst_drop_points": None, "dial": False, "decided": False}
    trained = euler[k]["as_trained"]["test_acc"]

    def drop(row: dict | None) -> float | None:
        if row is None:
            return None
        points = 100 * (trained - max(row[half]["test_acc"] for half in ("as_trained", "recalibrated") if half in row))
        # the half still to come can only lower the drop: one already within 1 point settles the column
        return points if "recalibrated" in row or points <= 1.0 + 1e-9 else None

    drops = {f"{m}x": drop(euler.get(k * m)) for m in MULTIPLES}
    drops["dopri5"] = drop(next((r for r in rows if r["scheme"] == "dopri5"), None))
    if net["depth_basis"] == "linear":
        drops["0.5x"] = drop(euler.get(k * 0.5))
    measured = [d for d in drops.values() if d is not None]
    failed = any(d > 1.0 + 1e-9 for d in measured)  # 1e-9: rounding
    every = len(measured) == len(drops)
    return {
        "trained_acc": trained,
        "drop_points": drops,
        "worst_drop_points": max(measured) if measured else None,
        "dial": every and not failed,
        "decided": every or failed,
    }


def tables(results: dict) -> str:
    header = ["run", "recipe", "trained acc %", "drop at 2x / 4x / 8x (points)", "dopri5", "½x", "dial?"]
    header += ["BN-recal. gain at 8x (points)", "roughness per stage", "max ρ(h ∂f/∂u) per stage"]
    rows = []

    def pts(d: float | None) -> str:
        return "-" if d is None else f"{d:+.2f}"

    for net in results["models"]:
        s = net.get("summary") or {}
        if s.get("trained_acc") is None:
            rows.append([net["run"], net["recipe"], f"(measuring: {len(net['rows'])} rows so far)"] + [""] * 7)
            continue
        d, diag = s["drop_points"], net.get("diagnostics") or {}
        k = net["trained_steps_per_block"]
        eight = next((r for r in net["rows"] if r["scheme"] == "euler" and r["steps_per_block"] == 8 * k), None)
        gain = (
            "-"
            if eight is None or "recalibrated" not in eight
            else f"{100 * (eight['recalibrated']['test_acc'] - eight['as_trained']['test_acc']):+.1f}"
        )
        rows.append(
            [
                net["run"],
                net["recipe"],
                f"{100 * s['trained_acc']:.2f}",
                " / ".join(pts(d.get(f"{m}x")) for m in MULTIPLES),
                pts(d.get("dopri5")),
                pts(d.get("0.5x")),
                "yes" if s["dial"] else "no" if s.get("decided", net.get("complete")) else "(measuring)",
                gain,
                ", ".join("-" if r is None else f"{r:.2f}" for r in diag.get("roughness", [])),
                ", ".join(f"{x:.2f}" for x in diag.get("max_abs_h_lambda", [])),
            ]
        )
    return markdown_table(header, rows)


def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    fig, ax = plt.subplots(figsize=(11, 5))
    for net in results["models"]:
        euler = sorted((r for r in net["rows"] if r["scheme"] == "euler"), key=lambda r: r["steps_per_block"])
        x = [r["branch_evals_per_image"] for r in euler]
        (line,) = ax.plot(x, [100 * r["recalibrated"]["test_acc"] for r in euler], "o-", label=f"{net['run']}")
        ax.plot(x, [100 * r["as_trained"]["test_acc"] for r in euler], "o:", color=line.get_color(), alpha=0.5)
        for r in net["rows"]:
            if r["scheme"] == "dopri5":  # as trained too (hollow): the collapse of a net that is no discretisation
                ax.plot(
                    [r["branch_evals_per_image"]],
                    [100 * r["as_trained"]["test_acc"]],
                    "*",
                    mfc="none",
                    color=line.get_color(),
                    ms=9,
                )
            if r["scheme"] != "euler" and "recalibrated" in r:
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
        title="accuracy against cost: euler (dotted: BatchNorm as trained), heun ▲, rk4 ■, dopri5 ★ (recalibrated; "
        "hollow ☆: dopri5 as trained)",
    )
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the axes hold every point
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    add_replace_argument(parser)
    parser.add_argument(
        "--run", type=Path, nargs="+", default=None, help="trained run folders (default: study + control)"
    )
    add_test_set_arguments(parser)
    parser.add_argument("--recalibrate", type=int, default=5000, help="training images for BatchNorm recalibration")
    parser.add_argument("--spectra-images", type=int, default=8, help="test images for the |hλ| diagnostic")
    parser.add_argument("--seed", type=int, default=0, help="seeds the recalibration images' augmentation")
    parser.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        default="auto",
        help="the fixed-step rows' precision of a net measured anew (auto: bf16 autocast on a CPU with bf16 "
        "units); a net begun before is finished in its own; dopri5 runs in float32",
    )
    parser.add_argument(
        "--verdicts-first",
        action="store_true",
        help="measure every net's verdict rows (euler, dopri5) before any net's heun and rk4 rows",
    )
    parser.add_argument(
        "--figure-only",
        action="store_true",
        help="measure nothing: draw depth_dial.png from the nets in --out's depth_dial.json (after a stopped run)",
    )
    args = parser.parse_args(argv)
    if args.figure_only:
        path = args.out / "depth_dial.json"
        if not path.is_file():
            raise SystemExit(f"depth_dial: --figure-only needs {path}; measure some nets first")
        plot(json.loads(path.read_text()), args.out / "depth_dial.png")
        return 0
    args.amp = resolve_amp(args.amp, "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.run or default_runs()
    check_runs(runs, args.data_dir)
    batches, labels = test_batches(args.data_dir, args.test_subset, args.eval_batch, channels_last=True)
    calibration = calibration_images(args.data_dir, args.recalibrate, args.seed)
    setting = (
        f"{len(labels)} CIFAR-10 test images; BatchNorm recalibrated on {args.recalibrate} augmented "
        f"training images; fixed steps in each net's `fixed_step_amp` (bf16 autocast or float32), "
        f"dopri5 in float32 at rtol {args.rtol:g}, atol {args.atol:g}"
    )
    store = Measurements(args.out / "depth_dial.json", setting, args.seed, args.replace)
    store.results["multiples"] = list(MULTIPLES)
    args.checkpoint = lambda net: store.checkpoint({**net, "summary": summary(net)})  # the verdict so far
    for verdict_only in (True, False) if args.verdicts_first else (False,):
        for run in runs:
            if verdict_only and (store.latest(run.name) or {}).get("complete"):
                continue
            net = measure(run, batches, labels, calibration, args, store.latest(run.name), verdict_only)
            if verdict_only:
                args.checkpoint(net)
            else:
                store.add({**net, "summary": summary(net)}, "rows")
            plot(store.results, args.out / "depth_dial.png")  # after every net: a stopped run leaves a figure
    results = store.results
    store.finish(tables(results))
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
