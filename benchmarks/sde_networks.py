"""Weak convergence on trained networks: does a noise-trained CIFAR net behave as its SDE says?

A net trained with noise (stochastic depth, Gaussian noise, shake-shake) is an Euler–Maruyama
discretisation of an SDE whose state is the feature map (~16k dimensions) and whose noise is
multiplicative. The quantity of interest is the softmax output. For each net, on ``--images`` test
images, it estimates ``E phi`` with ``phi`` = the mean softmax probability of the true class
(a smooth test function of the output), with the noise on and BatchNorm in eval mode:
  * at 1x, 2x, 4x, ... the trained steps per block, up to a reference at ``--reference``x (8: 1x, 2x, 4x, 8x);
  * under the trained law and under other standardised laws of the same mean and variance
    (two-point at the net's p or at p = 0.8, Gaussian, Rademacher, uniform): the diffusion ``g``
    stays, only the law of ξ changes.
Each sample is one pass over all the images; the passes are coupled across step counts and laws:
pass ``j`` at every step count and under every law is driven by the same Gaussians (a coarse step gets
the normalised sum of the fine steps' Gaussians, other laws the inverse transform of it: ``CoupledLaw``),
so each level keeps its exact law while the differences that estimate the weak errors vary little.
``--samples`` passes per point are split into ``--batches`` batches. The weak order is fitted to the
successive differences ``E φ_h - E φ_h/2 ≈ C (1 - 2^-p) h^p`` (1x-2x, 2x-4x, 4x-8x), which the
reference's own error does not bias, and also to the errors against the reference; each gets its
error bar from the jackknife over batches (``contdepth.analysis.montecarlo.batch_order``). Averaging ``phi``
over the images reduces the variance further: the draws of different images are independent.
Expected from the theory: order ≈ 1 for Gaussian, Rademacher and uniform noise and ≈ ½ for a
two-point law at fixed p ≠ ½ (E ξ³ ≠ 0), unless the test function hides it; the laws agree in the
limit. It also compares the ensemble (mean softmax over 1, 2, 4, ... passes at the trained step count)
with the mean-field (deterministic) net at 1, 2, 4 and 8 times the trained steps: accuracy at equal cost.

    python3 benchmarks/sde_networks.py --data-dir data [--run DIR ...] [--images 1000] [--out benchmarks/results]

Writes ``sde_networks.json`` and ``sde_networks.png`` (weak error against step size, one panel per net).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import torch
from scipy.stats import t as student_t
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
from refinement import check_runs, test_batches

import contdepth as cd
from contdepth.analysis.montecarlo import batch_order
from contdepth.models import noise_at_eval
from contdepth.models.sampling import noisy_parts
from contdepth.models.transition import Transition
from contdepth.noise import Bernoulli, Gaussian, Noise, NoiseLaw, Rademacher, Uniform
from contdepth.runs.files import RESULTS
from contdepth.train.loading import load_run_config

DEFAULT_RUNS = [
    ROOT / "results" / "depth-dial-cpu" / "preact_resnet20-sd0.8-s0",
    *sorted(p for p in (ROOT / "results" / "sde-cpu").glob("*-s[0-9]*") if "-val-" not in p.name),
]  # the -val runs only choose the Gaussian level
LAWS = ("trained", "two-point", "gaussian", "rademacher", "uniform")


def trained_law(net: nn.Module) -> str:
    laws = {
        type(m.noise.law).__name__.lower() for m in net.modules() if isinstance(m, (cd.Flow, Transition)) and m.noise
    }
    return "two-point" if laws == {"bernoulli"} else "/".join(sorted(laws))


class Draws:
    """The Gaussians behind every noise draw of one pass of a net, shared by all step counts and laws.

    Calls are numbered in the order the net makes them (stage by stage, batch by batch), which is the
    same at every step count; call ``k`` of pass ``j`` draws from a generator seeded by ``(j, k)``.
    """

    def __init__(self) -> None:
        self.pass_seed = 0
        self.calls = 0

    def start(self, pass_seed: int) -> None:
        self.pass_seed, self.calls = pass_seed, 0

    def gaussians(self, shape: tuple[int, ...]) -> Tensor:
        gen = torch.Generator().manual_seed(self.pass_seed * 1_000_003 + self.calls)
        self.calls += 1
        return torch.randn(shape, generator=gen, dtype=torch.float64)


class CoupledLaw(NoiseLaw):
    """``law``'s ξ as a function of shared Gaussians: coupled paths across step counts and laws.

    A step made of ``sub`` steps of the finest level gets ``Z = (Z_1 + ... + Z_sub) / sqrt(sub)``, the
    Brownian increment of the fine steps it covers, so its ξ is the fine path's noise summed (exactly so
    for Gaussian ξ); any other law gets ``ξ = Q(Φ(Z))`` with ``Q`` its quantile function (inverse
    transform). Each step's ξ has exactly ``law``'s distribution, independent across steps, so every
    level's expectation is unchanged, while coarse and fine paths, and paths under different laws,
    move together: the differences whose means are the weak errors have a far smaller variance than
    independent runs give (multilevel Monte Carlo's coupling; the torchsde/diffrax Brownian objects do
    this for Gaussian increments only).
    """

    def __init__(self, law: NoiseLaw, draws: Draws, sub: int) -> None:
        self.law, self.draws, self.sub = law, draws, sub
        self.name = law.name

    def pieces(self) -> int | None:
        return self.law.pieces()

    def step_table(self, pieces):
        return self.law.step_table(pieces)

    def third_moment(self, piece: int = 0) -> float:
        return self.law.third_moment(piece)

    def sample_steps(self, shape, like, generator, pieces, table=None) -> Tensor:
        steps = len(pieces)
        z = self.draws.gaussians((steps, self.sub, *shape)).sum(1) / math.sqrt(self.sub)
        return quantile(self.law, z, pieces, table).to(device=like.device, dtype=like.dtype)

    def sample(self, shape, like, generator=None, piece: int = 0) -> Tensor:
        return self.sample_steps(shape, like, generator, [piece])[0]


def quantile(law: NoiseLaw, z: Tensor, pieces, table: Tensor | None) -> Tensor:
    """``Q(Φ(z))`` for the standardised ``law``: a draw of ``law`` from standard Gaussians ``z``, ``(steps, ...)``."""
    if isinstance(law, Gaussian):
        return z
    u = torch.special.ndtr(z)
    if isinstance(law, Rademacher):
        return torch.where(u < 0.5, -1.0, 1.0).to(z.dtype)
    if isinstance(law, Uniform):
        return (u - 0.5) * math.sqrt(12.0)
    if isinstance(law, Bernoulli):
        rows = (law.step_table(pieces) if table is None else table).to(z.dtype)
        p, kept, dropped = rows.view(3, len(pieces), *([1] * (z.dim() - 1))).unbind(0)
        return torch.where(u >= 1 - p, kept, dropped)  # increasing in Z, as every other law here
    raise TypeError(f"no quantile function for the {type(law).__name__} law")


def couple(net: nn.Module, law: str, draws: Draws, finest: int, steps: int) -> None:
    """Give every flow and transition of ``net`` the standardised ``law`` (same granularity), coupled
    through ``draws`` for a net at ``steps`` per block whose finest level is ``finest`` per block; the
    diffusion ``g`` is kept, so mean and variance of each noise term are too. ``trained`` keeps the
    trained law; ``two-point`` keeps a two-point law as it is and puts Bernoulli(0.8) (E ξ³ ≈ -1.5)
    elsewhere. Transitions are one step at every step count (``sub`` 1)."""
    for m in noisy_parts(net):
        if m.noise is not None:
            old = m.noise
            base = old.law
            if law == "two-point":
                base = old.law if isinstance(old.law, Bernoulli) else Bernoulli(0.8)
            elif law != "trained":
                base = cd.get_law(law)
            sub = finest // steps if isinstance(m, cd.Flow) else 1
            new = Noise(CoupledLaw(base, draws, sub), per=old.per)
            m.noise = new
            pieces = m.pieces if isinstance(m, cd.Flow) else (0,)
            table = new.step_table(pieces)
            m._noise_table = None if table is None else table.to(old_device(m))


def old_device(m: nn.Module) -> torch.device:
    return next((p.device for p in m.parameters()), torch.device("cpu"))


def net_at(run: Path, law: str, steps: int, finest: int, draws: Draws) -> nn.Module:
    net = cd.train.load_run(run).rediscretise(steps_per_block=steps).eval()
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # as in depth_dial.py
    couple(net, law, draws, finest, steps)
    return net


@torch.no_grad()
def phi_samples(
    net: nn.Module, draws: Draws, batches, labels: Tensor, samples: int, seed: int
) -> tuple[Tensor, dict[str, float]]:
    """``phi`` of each of ``samples`` noisy passes, ``(samples,)``, and the ensemble's accuracy (argmax of the
    mean softmax) after 1, 2, 4, ... passes. Pass ``j`` draws its noise from ``draws`` started at
    ``seed + j``: the same Gaussians at every step count."""
    out, mean_probs, ensemble = [], None, {}
    with noise_at_eval(net):
        for j in range(samples):
            draws.start(seed + j)
            probs = torch.cat([net(x).float().softmax(1) for x, _ in batches])
            out.append(probs.gather(1, labels[:, None]).mean())
            mean_probs = probs if mean_probs is None else mean_probs + probs
            if (j + 1) & j == 0:  # a power of two
                ensemble[str(j + 1)] = float(mean_probs.argmax(1).eq(labels).double().mean())
    return torch.stack(out).double(), ensemble


def fits(h: list[float], means: list[list[float]]) -> dict:
    """The weak-order fits of one law from its per-batch level means ``means[b] = [φ at h[0], h[1], ..., φ_ref]``
    (each level halves the step of the one before): against the reference, and to the successive differences
    ``φ_h - φ_h/2 ≈ C (1 - 2^-p) h^p``, which the finest level's own error does not bias. Each order has its
    jackknife standard error over the batches and a 95% interval from Student's t with batches - 1 degrees."""
    t = float(student_t.ppf(0.975, len(means) - 1))
    fit = batch_order(h, [[row[i] - row[-1] for i in range(len(h))] for row in means])
    succ = batch_order(h, [[row[i] - row[i + 1] for i in range(len(h))] for row in means])
    return {
        "weak_errors": list(fit.errors),
        "weak_error_stderr": list(fit.error_stderr),
        "order": fit.order,
        "order_stderr": fit.stderr,
        "order_ci95": [fit.order - t * fit.stderr, fit.order + t * fit.stderr],
        "successive_differences": list(succ.errors),
        "successive_difference_stderr": list(succ.error_stderr),
        "order_successive": succ.order,
        "order_successive_stderr": succ.stderr,
        "order_successive_ci95": [succ.order - t * succ.stderr, succ.order + t * succ.stderr],
        # the slope between neighbouring differences: does the order settle as h shrinks?
        "local_orders_successive": [
            math.log2(a / b) if a > 0 and b > 0 else None for a, b in itertools.pairwise(succ.errors)
        ],
    }


def measure(run: Path, batches, labels: Tensor, args, done: dict | None) -> dict:
    """One net's laws; the laws already in ``done`` (an interrupted measurement of the same run in the same
    setting) are kept, so a stopped benchmark continues where it was."""
    cfg = load_run_config(run)
    base = cfg.trained_steps_per_block
    factors = [2**i for i in range(args.reference.bit_length() - 1)]  # 1, 2, ..., reference / 2
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
    with torch.no_grad():  # the deterministic (mean-field) net, as trained and at the costs of 2, 4, 8 passes
        info["mean_field_acc"] = {}
        for f in (1, 2, 4, 8):
            net = probe.rediscretise(steps_per_block=base * f)
            info["mean_field_acc"][f] = float(
                torch.cat([net(x).argmax(1) for x, _ in batches]).eq(labels).double().mean()
            )
    draws = Draws()
    finest = base * args.reference
    for law in args.laws:
        if law in kept:  # refitted: a fit added since is filled in from the kept level means
            again = fits(kept[law]["step_sizes"], kept[law]["phi_batch_means"])
            info["laws"][law] = {**kept[law], **again}
            continue
        if law == info["trained_law"] and "trained" in info["laws"]:
            info["laws"][law] = {**info["laws"]["trained"], "same_as": "trained"}  # the same paths: not run twice
            continue
        start = time.perf_counter()
        ref, _ = phi_samples(net_at(run, law, finest, finest, draws), draws, batches, labels, args.samples, args.seed)
        points, ensemble = [], None
        for f in factors:
            net = net_at(run, law, base * f, finest, draws)
            phis, by_passes = phi_samples(net, draws, batches, labels, args.samples, args.seed)
            if f == 1:
                ensemble = by_passes
            points.append(phis)
        levels = [*points, ref]  # coupled: pass j of every level saw the same Gaussians
        means = [[float(p.view(args.batches, -1)[b].mean()) for p in levels] for b in range(args.batches)]
        h = [1.0 / (base * f) for f in factors]
        info["laws"][law] = {
            "step_sizes": h,
            "phi_batch_means": means,  # per batch, per level (1x, 2x, ..., the reference): every fit can be redone
            **fits(h, means),
            "phi_reference": float(ref.mean()),
            "phi_reference_stderr": float(ref.std() / len(ref) ** 0.5),
            "ensemble_acc_by_passes": ensemble,  # at the trained steps per block
            "seconds": time.perf_counter() - start,
        }
        args.checkpoint(info)
        r = info["laws"][law]
        print(f"  {run.name:36s} {law:10s} order {_order(r, 'order_successive')}", flush=True)
    trained = info["laws"].get("trained")
    for law, r in info["laws"].items():
        if trained is not None and law != "trained" and not r.get("same_as"):
            r["gap_to_trained"] = law_gap(trained, r)
    return info


def law_gap(trained: dict, other: dict) -> dict:
    """How far apart two laws' ``E φ`` are at every level, the reference included: ``E φ^other_h - E φ^trained_h``
    per batch (the paths are coupled across laws, so the differences vary little), its standard error, and the
    order at which it closes as h shrinks, with a jackknife 95% interval. The laws share their limit, so the gap
    must close: at order ½ where their third moments differ (E ξ³ enters the weak error at h^½), else at 1."""
    h = [*trained["step_sizes"], trained["step_sizes"][-1] / 2]  # the reference halves the finest level's step
    diffs = [
        [a - b for a, b in zip(row_o, row_t, strict=True)]
        for row_o, row_t in zip(other["phi_batch_means"], trained["phi_batch_means"], strict=True)
    ]
    n = len(diffs)
    fit = batch_order(h, diffs)  # its errors are |gap|; the signed means are taken here
    t = float(student_t.ppf(0.975, n - 1))
    return {
        "step_sizes": h,
        "gaps": [sum(c) / n for c in zip(*diffs, strict=True)],
        "gap_stderr": list(fit.error_stderr),
        "order": fit.order,
        "order_stderr": fit.stderr,
        "order_ci95": [fit.order - t * fit.stderr, fit.order + t * fit.stderr],
    }


def tables(results: dict) -> str:
    header = ["run", "law", "weak order ± jackknife s.e. [95% CI] (successive differences)", "vs reference"]
    header += ["weak errors against the reference, coarsest first"]
    header += ["ensemble acc % (1 / 16 passes)", "mean field acc % (1x / 8x steps)"]
    rows = []
    for net in results["models"]:
        for law, r in net["laws"].items():
            if r.get("same_as"):  # the trained law under its own name: the same paths
                continue
            name = f"{law} (trained)" if law == "trained" else law
            errors = ", ".join(f"{e:.2e}" for e in r["weak_errors"])
            rows.append(
                [
                    net["run"],
                    name.replace("trained (trained)", f"trained: {net['trained_law']}"),
                    _order(r, "order_successive"),
                    _order(r, "order"),
                    errors,
                    _first_last(r["ensemble_acc_by_passes"]),
                    _first_last(net["mean_field_acc"]),
                ]
            )
    return markdown_table(header, rows)


def _order(r: dict, key: str) -> str:
    lo, hi = r[f"{key}_ci95"]
    return f"{r[key]:.2f} ± {r[f'{key}_stderr']:.2f} [{lo:.2f}, {hi:.2f}]"


def _first_last(acc: dict[str, float]) -> str:
    """``"a / b"``: the accuracies (%) at the smallest and the largest key (JSON keys: counts as strings)."""
    keys = sorted(acc, key=int)
    return f"{100 * acc[keys[0]]:.2f} / {100 * acc[keys[-1]]:.2f}"


def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    nets = results["models"]
    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 4.2), squeeze=False)
    for ax, net in zip(axes[0], nets, strict=True):
        for law, r in net["laws"].items():
            if r.get("same_as"):
                continue
            ax.errorbar(r["step_sizes"], r["successive_differences"], yerr=r["successive_difference_stderr"],
                        fmt="o-", capsize=3,
                        label=f"{law}: {r['order_successive']:.2f} ± {r['order_successive_stderr']:.2f}")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set(xlabel="step size h", ylabel="|E φ_h - E φ_h/2|", title=net["run"])
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    add_replace_argument(parser)
    parser.add_argument("--run", type=Path, nargs="+", default=None, help="noise-trained run folders")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--images", type=int, default=1000, help="test images, evenly spaced")
    parser.add_argument("--samples", type=int, default=16, help="noisy passes per point (a multiple of --batches)")
    parser.add_argument("--batches", type=int, default=8, help="independent batches for the error bars")
    parser.add_argument(
        "--reference",
        type=int,
        default=8,
        help="the finest level's steps, times the trained ones: a power of 2 >= 4; the levels are 1, 2, 4, ... "
        "times the trained steps up to it",
    )
    parser.add_argument("--laws", nargs="+", default=list(LAWS), choices=LAWS)
    parser.add_argument("--eval-batch", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.reference < 4 or args.reference & (args.reference - 1):
        raise SystemExit(f"sde_networks: --reference must be a power of 2 >= 4, got {args.reference}")
    if args.samples % args.batches or args.batches < 2:
        raise SystemExit("sde_networks: --samples must be a multiple of --batches, and --batches >= 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.run or [r for r in DEFAULT_RUNS if (r / RESULTS).is_file()]
    if not runs:
        raise SystemExit("sde_networks: no noise-trained runs found; train them with `contdepth reproduce sde-cpu`")
    check_runs(runs, args.data_dir)
    batches, labels = test_batches(args.data_dir, args.images, args.eval_batch, channels_last=True)
    setting = (
        f"{len(labels)} CIFAR-10 test images; {args.samples} noisy passes per point in {args.batches} "
        f"batches, coupled across step counts and laws; orders from successive differences; "
        f"reference at {args.reference}x the trained steps per block; "
        "phi = mean true-class probability"
    )
    store = Measurements(args.out / "sde_networks.json", setting, args.seed, args.replace)
    args.checkpoint = store.checkpoint
    for run in runs:
        store.add(measure(run, batches, labels, args, store.before.get(run.name)), "laws")
    results = store.results
    store.finish(tables(results))
    plot(results, args.out / "sde_networks.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
