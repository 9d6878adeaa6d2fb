"""A trained network in the continuous limit: does a trained ResNet discretise an ODE?

Takes CIFAR-10 models trained with ``euler`` (a pre-activation ResNet) and with ``lm2`` (LM-ResNet),
and evaluates test accuracy with the same weights under
  * the trained scheme at 1, 2, 4, 8 steps per block (``model.rediscretise``; LM keeps its trained k),
  * ``euler`` at 1, 2, 4, 8 steps per block (for LM: of its continuous limit ``u' = f / (1 + k)``),
  * ``rk4`` at 1 step per block, and
  * torchdiffeq ``dopri5`` on every stage flow (``cd.odeint``; adaptive, rtol/atol given),
and measures how far each discretisation's logits are from the dopri5 ones. The first block of each
stage is a change of space (an Euler step of size 1 with a projection) and is never refined.
An LM stage seeds its two-step history with the transition's shortcut (one block back); a refined
flow interpolates it to one step back, so lm2 refined converges to the limit ``cd.odeint`` integrates.

By default the models are trained here, briefly, on CPU (``contdepth train`` on a subset of CIFAR-10;
short training, so absolute accuracies are low); ``--run DIR [DIR ...]`` evaluates trained runs instead.
The CIFAR copy is made with ``python3 ../shared/tools/cifar10_from_jpeg.py data`` (done automatically
when ``--data-dir`` is missing and the tool is found).

    python3 benchmarks/refinement.py [--run DIR ...] [--subset 5000] [--epochs 6] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, add_out_argument, markdown_table, provenance, setup_matplotlib, write_json

import contdepth as cd
from contdepth.analysis import fit_order
from contdepth.analysis.plots import reference_slopes

STEPS = [1, 2, 4, 8]


# ------------------------------------------------------------------------------ runs
def ensure_data(data_dir: Path) -> None:
    if (data_dir / "cifar-10-batches-py").is_dir():
        return
    tool = ROOT.parent / "shared" / "tools" / "cifar10_from_jpeg.py"
    if not tool.is_file():
        raise SystemExit(f"no CIFAR-10 in {data_dir}; put cifar-10-batches-py/ there or pass --run DIR")
    print(f"writing CIFAR-10 to {data_dir} with {tool}", flush=True)
    subprocess.run([sys.executable, str(tool), str(data_dir)], check=True)


def finished(run: Path, epochs: int) -> bool:
    from contdepth.train import checkpoint as ckpt

    path = run / ckpt.CHECKPOINT
    return path.is_file() and int(ckpt.load(path)["epoch"]) >= epochs


def train(model: str, run: Path, args) -> None:
    """``contdepth train`` in a subprocess (CPU), unless ``run`` already holds the finished run."""
    if finished(run, args.epochs) and not args.retrain:
        print(f"reusing {run}", flush=True)
        return
    cmd = [
        sys.executable,
        "-m",
        "contdepth",
        "train",
        "--model",
        model,
        "--data-dir",
        str(args.data_dir),
        "--out",
        str(run),
        "--epochs",
        str(args.epochs),
        "--subset",
        str(args.subset),
        "--test-subset",
        str(args.test_subset),
        "--device",
        args.device,
        "--seed",
        str(args.seed),
        "--no-progress",
        "--lr",
        str(args.lr),
        "--batch-size",
        str(args.batch_size),
        "--schedule",
        args.schedule,
    ]
    if args.retrain and run.exists():
        import shutil

        shutil.rmtree(run)
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    print("$ " + " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def load_run(run: Path) -> tuple[nn.Module, dict]:
    from contdepth.train import checkpoint as ckpt
    from contdepth.train.build import model_from_config
    from contdepth.train.evaluate import load_run_config

    cfg = load_run_config(run)
    state = ckpt.load(run / ckpt.CHECKPOINT)
    model = model_from_config(cfg)
    model.load_state_dict(state["model"])
    info = {
        "run": str(run),
        "model": cfg.model,
        "scheme": model.scheme,
        "epochs": int(state["epoch"]),
        "subset": cfg.subset,
        "data_dir": cfg.data_dir,
    }
    return model.eval(), info


# ------------------------------------------------------------------------------ evaluation
def continuous_forward(model: nn.Module, x: Tensor, rtol: float, atol: float, nfe: list[int]) -> Tensor:
    """The net with every stage flow replaced by dopri5 on its continuous field (LM: u' = f/(1+k))."""
    x = model.stem(x)
    for stage in model.stages:
        if stage.transition is not None:
            x, _ = stage.transition(x)
        flow = stage.active_flow
        if flow is not None:
            x, stats = cd.odeint(flow, x, rtol=rtol, atol=atol, return_stats=True)
            nfe.append(stats["nfe"])
    return model.head(x)


def logits_of(fn, batches: list[tuple[Tensor, Tensor]]) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(x) for x, _ in batches])


def evaluate(model: nn.Module, info: dict, batches, labels: Tensor, args) -> dict:
    trained = info["scheme"]
    has_post = any(f.post_step is not None for f in model.flows())
    rows: list[dict] = []

    def record(label: str, scheme: str, s: int | None, logits: Tensor, seconds: float, extra: dict | None = None):
        acc = (logits.argmax(1) == labels).double().mean().item()
        rows.append(
            {
                "label": label,
                "scheme": scheme,
                "steps_per_block": s,
                "test_acc": acc,
                "seconds": seconds,
                "logits": logits,
                **(extra or {}),
            }
        )
        print(f"  {info['model']:16s} {label:28s} acc {100 * acc:6.2f}%  ({seconds:.1f} s)", flush=True)

    schemes = [trained] + (["euler"] if trained != "euler" else [])
    for scheme in schemes:
        for s in STEPS:
            model.rediscretise(scheme=scheme, steps_per_block=s)
            start = time.perf_counter()
            logits = logits_of(model, batches)
            record(f"{scheme}, {s} step/block", scheme, s, logits, time.perf_counter() - start)
    model.rediscretise(scheme="rk4", steps_per_block=1)
    start = time.perf_counter()
    record("rk4, 1 step/block", "rk4", 1, logits_of(model, batches), time.perf_counter() - start)
    model.rediscretise(scheme=trained, steps_per_block=1)
    if has_post:
        print("  (post-activation net: a ReLU after every step is not an ODE; dopri5 skipped)")
        reference = None
    else:
        nfe: list[int] = []
        start = time.perf_counter()
        reference = logits_of(lambda x: continuous_forward(model, x, args.rtol, args.atol, nfe), batches)
        record(
            f"dopri5 (rtol {args.rtol:g})",
            "dopri5",
            None,
            reference,
            time.perf_counter() - start,
            {"nfe_per_batch": sum(nfe) / len(batches)},
        )

    def dist(a: Tensor, b: Tensor) -> float:
        return ((a - b).norm(dim=1) / b.norm(dim=1)).mean().item()

    for row in rows:
        logits = row.pop("logits")
        if reference is not None:
            row["logit_distance_to_dopri5"] = dist(logits, reference)
            row["agreement_with_dopri5"] = (logits.argmax(1) == reference.argmax(1)).double().mean().item()

    out = {**info, "post_activation": has_post, "rows": rows}
    if reference is not None:  # order of convergence to the continuous limit, per refined scheme
        out["orders_to_dopri5"] = {}
        for scheme in schemes:
            sub = [r for r in rows if r["scheme"] == scheme and r["steps_per_block"]]
            d = [r["logit_distance_to_dopri5"] for r in sub]
            if all(v > 0 for v in d):
                fit = fit_order([1.0 / r["steps_per_block"] for r in sub], d)
                out["orders_to_dopri5"][scheme] = {"order": fit.order, "stderr": fit.stderr}

    return out


def test_batches(data_dir: Path, n: int | None, batch: int) -> tuple[list, Tensor]:
    from contdepth.data import DeviceLoader, load_cifar

    data = load_cifar("cifar10", data_dir, train=False)
    loader = DeviceLoader(data.test.spread(n), batch, train=False, mean=data.mean, std=data.std)
    batches = list(loader.batches())
    return batches, torch.cat([y for _, y in batches])


# ------------------------------------------------------------------------------ report
def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.8))
    for net in results["models"]:
        rows = net["rows"]
        for scheme in dict.fromkeys(r["scheme"] for r in rows if r["steps_per_block"] and r["scheme"] != "rk4"):
            sub = [r for r in rows if r["scheme"] == scheme]
            (line,) = ax1.plot(
                [r["steps_per_block"] for r in sub],
                [100 * r["test_acc"] for r in sub],
                "o-",
                label=f"{net['model']}: {scheme}",
            )
            if "logit_distance_to_dopri5" in sub[0]:
                h = [1.0 / r["steps_per_block"] for r in sub]
                ax2.loglog(
                    h,
                    [r["logit_distance_to_dopri5"] for r in sub],
                    "o-",
                    color=line.get_color(),
                    label=f"{net['model']}: {scheme}",
                )

        for r in rows:
            if r["scheme"] == "rk4":
                ax1.plot(
                    [1],
                    [100 * r["test_acc"]],
                    "s",
                    mfc="none",
                    ms=9,
                    color=line.get_color(),
                    label=f"{net['model']}: rk4",
                )
            if r["scheme"] == "dopri5":
                ax1.axhline(100 * r["test_acc"], ls="--", lw=1, color=line.get_color(), label=f"{net['model']}: dopri5")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(STEPS, [str(s) for s in STEPS])
    ax1.set(
        xlabel="steps per residual block (step size 1/s)",
        ylabel="test accuracy (%)",
        title="same trained weights, different discretisations",
    )
    ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    hs = [1.0 / s for s in STEPS]
    first = [r for net in results["models"] for r in net["rows"] if r.get("logit_distance_to_dopri5")]
    if first:
        reference_slopes(ax2, hs, [1], anchor=max(r["logit_distance_to_dopri5"] for r in first))
    ax2.set(
        xlabel="step size h = 1/s",
        ylabel="mean relative logit distance to dopri5",
        title="convergence to the continuous limit",
    )
    ax2.legend(fontsize=7, loc="lower right")
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    ax2.xaxis.set_major_locator(FixedLocator(hs))
    ax2.xaxis.set_major_formatter(FixedFormatter(["1"] + [f"1/{s}" for s in STEPS[1:]]))
    ax2.xaxis.set_minor_locator(NullLocator())
    fig.suptitle(
        "Does a trained ResNet discretise an ODE? The same weights under finer steps, rk4 and dopri5\n"
        + results["setting"],
        fontsize=9,
    )
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.12, top=0.84, wspace=0.62)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(results: dict) -> str:
    nets = results["models"]
    rank = {"euler": 0, "lm2": 1, "rk4": 2, "dopri5": 3}
    all_rows = sorted(
        (r for n in nets for r in n["rows"]), key=lambda r: (rank.get(r["scheme"], 1), r["steps_per_block"] or 0)
    )
    labels = list(dict.fromkeys(r["label"] for r in all_rows))
    header = ["discretisation"] + [f"{n['model']} (trained: {n['scheme']}): acc % / dist. to dopri5" for n in nets]
    rows = []
    for label in labels:
        cells = [label]
        for n in nets:
            r = next((r for r in n["rows"] if r["label"] == label), None)
            if r is None:
                cells.append("")
            else:
                cell = f"{100 * r['test_acc']:.2f}"
                if r.get("logit_distance_to_dopri5") is not None:
                    cell += f" / {r['logit_distance_to_dopri5']:.3f}"
                cells.append(cell)
        rows.append(cells)
    return markdown_table(header, rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--run", type=Path, nargs="+", default=None, help="trained run directories (skip training)")
    parser.add_argument("--models", nargs="+", default=["preact_resnet20", "lm_resnet20"], help="models to train")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "refinement", help="where the short runs go")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--subset", type=int, default=5000, help="training images for the short run")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--schedule", default="cosine", help="learning-rate schedule of the short run (step or cosine)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--test-subset", type=int, default=1000, help="test images (evenly spaced)")
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--rtol", type=float, default=1e-3, help="dopri5 relative tolerance")
    parser.add_argument("--atol", type=float, default=1e-4, help="dopri5 absolute tolerance")
    parser.add_argument("--device", default="cpu", help="training device for the short runs")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--retrain", action="store_true", help="train again even if a finished run exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="all 50k training images, 30 epochs, full test set")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.full:
        args.subset, args.epochs, args.test_subset = 50000, 30, 10000
    runs = args.run
    if runs is None:
        ensure_data(args.data_dir)
        runs = []
        for model in args.models:
            run = args.runs_dir / f"{model}-n{args.subset}-e{args.epochs}-{args.schedule}-seed{args.seed}"
            train(model, run, args)
            runs.append(run)
        setting = (
            f"trained here: {args.epochs} epochs ({args.schedule} lr from {args.lr:g}) "
            f"on {args.subset} CIFAR-10 images (CPU); "
            f"{args.test_subset} test images"
        )
    else:
        setting = f"runs {', '.join(str(r) for r in runs)}; {args.test_subset} test images"
    results: dict = {
        "provenance": provenance(args.seed),
        "setting": setting,
        "rtol": args.rtol,
        "atol": args.atol,
        "models": [],
    }
    for run in runs:
        model, info = load_run(run)
        data_dir = args.data_dir if args.run is None else Path(info["data_dir"])
        if args.run is not None and not (data_dir / "cifar-10-batches-py").is_dir():
            data_dir = args.data_dir
        batches, labels = test_batches(data_dir, args.test_subset, args.eval_batch)
        results["models"].append(evaluate(model, info, batches, labels, args))
    results["markdown"] = tables(results)
    write_json(args.out / "refinement.json", results)
    plot(results, args.out / "refinement.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
