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

By default the nets are the committed seed-0 ``preact_resnet20`` and ``lm_resnet20`` of the CPU study
(``results/cifar10-cpu/``: 30 epochs on all of CIFAR-10, their fp16 weights suffice), evaluated on the
full test set; ``--run DIR [DIR ...]`` takes other trained runs. For LM-ResNet the learned ``k_n``
are recorded with the coefficients of its modified equation ``(1+k) u' + (1-k)/2 h u'' = f(u)``.

    python3 benchmarks/refinement.py --data-dir data [--run DIR ...] [--test-subset 10000] [--out benchmarks/results]
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

import contdepth as cd
from contdepth.analysis import fit_order
from contdepth.analysis.plots import reference_slopes
from contdepth.runs.files import RESULTS
from contdepth.runs.state import RunState, run_state

STEPS = [1, 2, 4, 8]


# ------------------------------------------------------------------------------ runs
#: The trained nets measured by default: the seed-0 pair of the CPU study (`contdepth reproduce lu2018-cifar10-cpu`).
DEFAULT_RUNS = [
    ROOT / "results" / "cifar10-cpu" / "preact_resnet20-s0",
    ROOT / "results" / "cifar10-cpu" / "lm_resnet20-s0",
]


def load_run(run: Path) -> tuple[nn.Module, dict]:
    """A trained run (its committed fp16 weights suffice) and what the tables say about it."""
    from contdepth.runs.weights import read_trained_state
    from contdepth.train.loading import load_run_config
    from contdepth.train.momentum import momentum

    cfg = load_run_config(run)
    model = cd.train.load_run(run)
    info = {
        "run": run.name,
        "model": cfg.model,
        "scheme": model.scheme,
        "epochs": read_trained_state(run).epoch,
        "train_images": cfg.subset or 50000,
        "data_dir": cfg.data_dir,
    }
    ks = momentum(model)
    if ks:  # LM-ResNet: u' = f/(1+k) to first order; (1+k) u' + (1-k)/2 h u'' = f to second
        info["k"] = ks
        info["modified_equation"] = [[{"1+k": 1 + k, "(1-k)/2": (1 - k) / 2} for k in stage] for stage in ks]
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


def check_runs(runs: list[Path], data_dir: Path) -> None:
    """Refuse, in one line, runs that are not there and a data folder without CIFAR-10."""
    prog = Path(sys.argv[0]).stem or "benchmark"
    for run in runs:
        if run_state(run, locks=False) is not RunState.DONE:
            raise SystemExit(
                f"{prog}: {run} is not a finished run (no complete {RESULTS}); finish its training (the command "
                "that started it resumes it with --resume) or pass a finished run with --run"
            )
    if not (data_dir / "cifar-10-batches-py").is_dir():
        raise SystemExit(f"{prog}: no cifar-10-batches-py/ in {data_dir}; pass --data-dir")


def test_batches(data_dir: Path, n: int | None, batch: int, channels_last: bool = False) -> tuple[list, Tensor]:
    from contdepth.data import DeviceLoader, load_cifar

    data = load_cifar("cifar10", data_dir, train=False)
    loader = DeviceLoader(
        data.test.spread(n), batch, train=False, mean=data.mean, std=data.std, channels_last=channels_last
    )
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
    save_figure(fig, path, dpi=110)
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


def add_test_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The data, test-set, dopri5 and thread flags of the benchmarks that evaluate trained runs."""
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--test-subset", type=int, default=10000, help="test images, evenly spaced (default all)")
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--rtol", type=float, default=1e-3, help="dopri5 relative tolerance")
    parser.add_argument("--atol", type=float, default=1e-4, help="dopri5 absolute tolerance")
    parser.add_argument("--threads", type=int, default=None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--run", type=Path, nargs="+", default=DEFAULT_RUNS, help="trained run folders")
    add_test_set_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.run
    check_runs(runs, args.data_dir)
    setting = f"runs {', '.join(r.name for r in runs)}; {args.test_subset} CIFAR-10 test images"
    results: dict = {
        "provenance": provenance(args.seed),
        "setting": setting,
        "rtol": args.rtol,
        "atol": args.atol,
        "models": [],
    }
    batches, labels = test_batches(args.data_dir, args.test_subset, args.eval_batch)
    for run in runs:
        model, info = load_run(run)
        results["models"].append(evaluate(model, info, batches, labels, args))
    results["markdown"] = tables(results)
    write_json(args.out / "refinement.json", results)
    plot(results, args.out / "refinement.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
