"""Weak convergence on trained networks: does a noise-trained CIFAR net behave as its SDE says?

A net trained with noise (stochastic depth, Gaussian noise, shake-shake) is an Euler–Maruyama
discretisation of an SDE whose state is the feature map (~16k dimensions) and whose noise is
multiplicative. The quantity of interest is the softmax output. For each net, on ``--images`` test
images, it estimates ``E phi`` with ``phi`` = the mean softmax probability of the true class
(a smooth test function of the output), with the noise on and BatchNorm in eval mode:
  * at 1x, 2x and 4x the trained steps per block, against a reference at ``--reference``x;
  * under the trained law and under other standardised laws of the same mean and variance
    (two-point at the net's p or at p = 0.8, Gaussian, Rademacher, uniform): the diffusion ``g``
    stays, only the law of ξ changes.
Each sample is one pass over all the images with fresh noise; ``--samples`` passes per point are split
into ``--batches`` independent batches, the weak error of each batch is the difference of its mean
and the reference's, and the fitted weak order gets its error bar from the jackknife over batches
(``contdepth.analysis.montecarlo.batch_order``). Averaging ``phi`` over the images is the variance
reduction: the draws of different images are independent. Expected from the theory: order ≈ 1 for
Gaussian, Rademacher and uniform noise and ≈ ½ for a two-point law at fixed p ≠ ½ (E ξ³ ≠ 0), unless
the test function hides it; the laws agree in the limit. It also compares, at the trained step count,
the ensemble (mean softmax over the samples), the mean-field net and the deterministic accuracy.

    python3 benchmarks/sde_networks.py --data-dir data [--run DIR ...] [--images 1000] [--out benchmarks/results]

Writes ``sde_networks.json`` and ``sde_networks.png`` (weak error against step size, one panel per net).
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
from refinement import check_runs, fingerprint, previous_models, test_batches

import contdepth as cd
from contdepth.analysis.montecarlo import batch_order
from contdepth.models import noise_at_eval
from contdepth.models.transition import Transition
from contdepth.noise import Bernoulli, Noise
from contdepth.train.rundir import RESULTS
from contdepth.train.weights import load_run_config

DEFAULT_RUNS = [
    ROOT / "results" / "depth-dial-cpu" / "preact_resnet20-sd0.8-s0",
    *sorted((ROOT / "results" / "sde-cpu").glob("*-s[0-9]*")),
]
LAWS = ("trained", "two-point", "gaussian", "rademacher", "uniform")


def trained_law(net: nn.Module) -> str:
    laws = {
        type(m.noise.law).__name__.lower() for m in net.modules() if isinstance(m, (cd.Flow, Transition)) and m.noise
    }
    return "two-point" if laws == {"bernoulli"} else "/".join(sorted(laws))


def swap_law(net: nn.Module, law: str) -> None:
    """Give every flow and transition of ``net`` the standardised ``law`` (same granularity): the diffusion
    ``g`` is kept, so mean and variance of each noise term are too. ``two-point`` keeps a two-point law as it
    is and puts Bernoulli(0.8) (E ξ³ ≈ -1.5) elsewhere."""
    if law == "trained":
        return
    for m in net.modules():
        if isinstance(m, (cd.Flow, Transition)) and m.noise is not None:
            old = m.noise
            if law == "two-point":
                new_law = old.law if isinstance(old.law, Bernoulli) else Bernoulli(0.8)
            else:
                new_law = cd.get_law(law)
            new = Noise(new_law, per=old.per, seed=old.seed)
            m.noise = new
            pieces = m.pieces if isinstance(m, cd.Flow) else (0,)
            table = new.step_table(pieces)
            m._noise_table = None if table is None else table.to(old_device(m))


def old_device(m: nn.Module) -> torch.device:
    return next((p.device for p in m.parameters()), torch.device("cpu"))


def net_at(run: Path, law: str, steps: float) -> nn.Module:
    net = cd.train.load_run(run)
    swap_law(net, law)
    return net.rediscretise(steps_per_block=steps).eval()


@torch.no_grad()
def phi_samples(net: nn.Module, batches, labels: Tensor, samples: int, seed: int) -> tuple[Tensor, Tensor]:
    """``phi`` of each of ``samples`` noisy passes, ``(samples,)``, and the mean softmax ``(images, classes)``."""
    out, mean_probs = [], None
    with torch.random.fork_rng(devices=[]), noise_at_eval(net):
        torch.manual_seed(seed)
        for _ in range(samples):
            probs = torch.cat([net(x).float().softmax(1) for x, _ in batches])
            out.append(probs.gather(1, labels[:, None]).mean())
            mean_probs = probs if mean_probs is None else mean_probs + probs
    assert mean_probs is not None
    return torch.stack(out).double(), mean_probs / samples


def measure(run: Path, batches, labels: Tensor, args, done: dict | None) -> dict:
    """One net's laws; the laws already in ``done`` (an interrupted measurement of the same run in the same
    setting) are kept, so a stopped benchmark continues where it was."""
    cfg = load_run_config(run)
    base = cfg.trained_steps_per_block
    factors = [1, 2, 4]
    info: dict = {
        "run": run.name,
        "fingerprint": fingerprint(run),
        "model": cfg.model,
        "noise": cfg.noise,
        "trained_steps_per_block": base,
        "laws": {},
    }
    kept = done["laws"] if done is not None and done.get("fingerprint") == info["fingerprint"] else {}
    probe = cd.train.load_run(run)
    info["trained_law"] = trained_law(probe)
    with torch.no_grad():  # the deterministic (mean-field) net, as trained
        info["mean_field_acc"] = float(torch.cat([probe(x).argmax(1) for x, _ in batches]).eq(labels).double().mean())
    for law in args.laws:
        if law in kept:
            info["laws"][law] = kept[law]
            continue
        start = time.perf_counter()
        ref, _ = phi_samples(net_at(run, law, base * args.reference), batches, labels, args.samples, args.seed + 1)
        points, ensemble = [], None
        for f in factors:
            phis, probs = phi_samples(net_at(run, law, base * f), batches, labels, args.samples, args.seed + 10 + f)
            if f == 1:
                ensemble = float(probs.argmax(1).eq(labels).double().mean())
            points.append(phis)
        per_batch = [
            [float(p.view(args.batches, -1)[b].mean() - ref.view(args.batches, -1)[b].mean()) for p in points]
            for b in range(args.batches)
        ]
        h = [1.0 / (base * f) for f in factors]
        fit = batch_order(h, per_batch)
        info["laws"][law] = {
            "step_sizes": h,
            "weak_errors": list(fit.errors),
            "weak_error_stderr": list(fit.error_stderr),
            "order": fit.order,
            "order_stderr": fit.stderr,
            "phi_reference": float(ref.mean()),
            "phi_reference_stderr": float(ref.std() / len(ref) ** 0.5),
            "ensemble_acc_trained_steps": ensemble,
            "seconds": time.perf_counter() - start,
        }
        args.checkpoint(info)
        print(f"  {run.name:36s} {law:10s} order {fit.order:5.2f} ± {fit.stderr:.2f}  errors {fit.errors}", flush=True)
    return info


def tables(results: dict) -> str:
    header = ["run", "law", "weak order ± jackknife s.e.", "weak errors at 1x, 2x, 4x", "ensemble acc % (mean field)"]
    rows = []
    for net in results["models"]:
        for law, r in net["laws"].items():
            name = f"{law} (trained)" if law == "trained" else law
            errors = ", ".join(f"{e:.2e}" for e in r["weak_errors"])
            rows.append(
                [
                    net["run"],
                    name.replace("trained (trained)", f"trained: {net['trained_law']}"),
                    f"{r['order']:.2f} ± {r['order_stderr']:.2f}",
                    errors,
                    f"{100 * r['ensemble_acc_trained_steps']:.2f} ({100 * net['mean_field_acc']:.2f})",
                ]
            )
    return markdown_table(header, rows)


def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    nets = results["models"]
    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 4.2), squeeze=False)
    for ax, net in zip(axes[0], nets, strict=True):
        for law, r in net["laws"].items():
            ax.errorbar(r["step_sizes"], r["weak_errors"], yerr=r["weak_error_stderr"], fmt="o-", capsize=3,
                        label=f"{law}: {r['order']:.2f} ± {r['order_stderr']:.2f}")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set(xlabel="step size h", ylabel="weak error |E φ_h - E φ_ref|", title=net["run"])
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--run", type=Path, nargs="+", default=None, help="noise-trained run folders")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--images", type=int, default=1000, help="test images, evenly spaced")
    parser.add_argument("--samples", type=int, default=16, help="noisy passes per point (a multiple of --batches)")
    parser.add_argument("--batches", type=int, default=8, help="independent batches for the error bars")
    parser.add_argument("--reference", type=int, default=8, help="the reference's steps, times the trained ones")
    parser.add_argument("--laws", nargs="+", default=list(LAWS), choices=LAWS)
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples % args.batches or args.batches < 2:
        raise SystemExit("sde_networks: --samples must be a multiple of --batches, and --batches >= 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.run or [r for r in DEFAULT_RUNS if (r / RESULTS).is_file()]
    if not runs:
        raise SystemExit("sde_networks: no noise-trained runs found; train them with `contdepth reproduce sde-cpu`")
    check_runs(runs, args.data_dir)
    batches, labels = test_batches(args.data_dir, args.images, args.eval_batch)
    setting = (
        f"{len(labels)} CIFAR-10 test images; {args.samples} noisy passes per point in {args.batches} "
        f"batches; reference at {args.reference}x the trained steps per block; phi = mean true-class probability"
    )
    path = args.out / "sde_networks.json"
    before = previous_models(path, setting)
    results: dict = {"provenance": provenance(args.seed), "setting": setting, "models": []}

    def checkpoint(info: dict) -> None:  # nothing measured is lost on a stop: the file holds every finished law
        write_json(path, {**results, "models": [*results["models"], info]})

    args.checkpoint = checkpoint
    for run in runs:
        results["models"].append(measure(run, batches, labels, args, before.get(run.name)))
        write_json(path, results)
    results["markdown"] = tables(results)
    write_json(args.out / "sde_networks.json", results)
    plot(results, args.out / "sde_networks.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
