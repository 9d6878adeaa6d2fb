"""Weak (and strong) convergence of Euler–Maruyama under interchangeable noise laws, measured.

Weak error ``|E phi(X_N) - E phi(X(T))|`` versus step count for ``euler_maruyama`` with Gaussian,
Rademacher, uniform (shake-shake) and two-point (stochastic depth, survival p) noise, all of mean 0
and variance 1, on
  (a) geometric Brownian motion ``dX = mu X dt + sigma X dW`` (exact moments; the scheme's own
      expectation ``E X_N^3`` is also computed exactly, which cross-checks the Monte Carlo), and
  (b) the nonlinear SDE ``dX = -sin X cos^3 X dt + cos^2 X dW`` against a fine torchsde reference
      (Milstein, Richardson-extrapolated; the SDE's exact solution ``arctan(W + tan x0)`` checks it).
with ``phi(x) = x^3``, whose third derivative makes E xi^3 matter. A two-point law with fixed p far
from 1/2 has E xi^3 = (1-2p)/sqrt(p(1-p)) = O(1) and weak order drops to 1/2; scaling p so that
1 - 2p = O(sqrt h) (Sun, Tao, Du) restores order 1. Strong error for Gaussian noise: order 1/2.

Variance reduction: every law is driven by the same Brownian increments through its quantile map
(xi = F^-1(Phi(dW / sqrt h)), which has exactly that law), and each error is the mean of the
difference phi(X_N) - phi(X_ref) along one coupled path, with control variates of known mean
(the noise walk S = sum sqrt(h) xi and W(T): S, S^2 - T, S^3 - E S^3, W, W^2 - T, W^3; coefficients
fitted by least squares in each batch). The paths are split into independent batches: error bars on
each point are batch standard errors, on each order the jackknife over batches.

    python3 benchmarks/weak_convergence.py [--out benchmarks/results] [--full]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchsde._brownian.brownian_base import BaseBrownian

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # problems with exact solutions
from _common import add_out_argument, markdown_table, provenance, save_figure, setup_matplotlib, write_json
from problems import gbm_field, gbm_moment

import contdepth as cd
from contdepth.analysis import fit_order
from contdepth.analysis.montecarlo import batch_order
from contdepth.analysis.plots import reference_slopes
from contdepth.noise import Bernoulli, NoiseLaw, get_law

DTYPE = torch.float64


# ----------------------------------------------------------------------------- noise laws
@dataclass(frozen=True)
class LawSpec:
    """A noise law as a function of the step size (the scaled two-point law changes with h)."""

    label: str
    name: str
    p: float | None = None  # survival probability of a fixed two-point law
    p_scaled: float | None = None  # two-point law with 1 - 2p = (1 - 2 p_scaled) sqrt(h / h0)

    def law(self, h: float, h0: float) -> NoiseLaw:
        if self.p is not None:
            return Bernoulli(self.p)
        if self.p_scaled is not None:
            return Bernoulli(scaled_p(self.p_scaled, h, h0))
        return get_law(self.name)


def scaled_p(p0: float, h: float, h0: float) -> float:
    """Survival probability with ``1 - 2p`` shrinking like sqrt(h), equal to ``p0`` at ``h0``."""
    return 0.5 + (p0 - 0.5) * math.sqrt(h / h0)


def quantile_xi(law: NoiseLaw, z: torch.Tensor) -> torch.Tensor:
    """Exactly ``law``-distributed xi from a standard normal z: ``F^-1(Phi(z))`` (a monotone coupling)."""
    if law.name == "gaussian":
        return z
    if law.name == "rademacher":
        return torch.sign(z)
    u = torch.special.ndtr(z)
    if law.name == "uniform":
        return (u - 0.5) * math.sqrt(12.0)
    if isinstance(law, Bernoulli):
        p = law.prob()
        return ((u < p).to(z.dtype) - p) / math.sqrt(p * (1.0 - p))  # same map as Bernoulli.sample
    raise ValueError(f"no quantile map for {law!r}")


class Replay(NoiseLaw):
    """Hands pre-drawn xi to a contdepth scheme, one tensor per step, in order; moments of ``base``."""

    def __init__(self, base: NoiseLaw) -> None:
        self.base = base
        self.name = base.name
        self._queue: list[torch.Tensor] = []

    def load(self, xis: list[torch.Tensor]) -> None:
        self._queue = list(xis)

    def sample(self, shape, like, generator=None, piece=0):
        xi = self._queue.pop(0)
        if tuple(xi.shape) != tuple(shape):
            raise ValueError(f"replayed noise has shape {tuple(xi.shape)}, the scheme asked for {tuple(shape)}")
        return xi

    def third_moment(self, piece=0):
        return self.base.third_moment(piece)


class GridBrownian(BaseBrownian):
    """A Brownian motion given by its increments on a fixed grid, for torchsde (no Lévy area)."""

    def __init__(self, dw: torch.Tensor, t0: float, t1: float) -> None:
        self._w = torch.cat([torch.zeros_like(dw[:1]), dw.cumsum(0)])
        self._t0, self._dt = t0, (t1 - t0) / dw.shape[0]

    def _index(self, t) -> int:
        pos = (float(t) - self._t0) / self._dt
        i = round(pos)
        if abs(pos - i) > 1e-6:
            raise ValueError(f"time {float(t)} is not on the Brownian grid (dt = {self._dt})")
        return i

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        if return_U or return_A:
            raise ValueError("GridBrownian has no Lévy area: use a method that needs none (euler, milstein)")
        if tb is None:
            return self._w[self._index(ta)]
        return self._w[self._index(tb)] - self._w[self._index(ta)]

    def __repr__(self):
        return f"GridBrownian(steps={self._w.shape[0] - 1}, shape={tuple(self.shape)})"

    @property
    def dtype(self):
        return self._w.dtype

    @property
    def device(self):
        return self._w.device

    @property
    def shape(self):
        return self._w.shape[1:]

    @property
    def levy_area_approximation(self):
        return "none"


# ----------------------------------------------------------------------------- problems
@dataclass
class Problem:
    key: str
    description: str
    field: cd.Tied
    x0: float
    t1: float
    exact_mean: float  # E phi(X(T))
    exact_path: Callable[[torch.Tensor], torch.Tensor]  # X(T) from W(T)
    reference_steps: int  # 0: use the exact solution as the coupled reference


def phi(x: torch.Tensor) -> torch.Tensor:
    return x**3


def gbm(mu: float, sigma: float, x0: float, t1: float) -> Problem:
    return Problem(
        "gbm",
        f"GBM dX = {mu:g} X dt + {sigma:g} X dW, x0 = {x0:g}, T = {t1:g}, phi = x^3",
        gbm_field(mu, sigma),
        x0,
        t1,
        exact_mean=gbm_moment(mu, sigma, x0, t1, 3),
        exact_path=lambda w: x0 * torch.exp((mu - 0.5 * sigma**2) * t1 + sigma * w),
        reference_steps=0,
    )


def arctan_sde(x0: float, t1: float, reference_steps: int) -> Problem:
    field = cd.Tied(lambda t, u: -torch.sin(u) * torch.cos(u) ** 3, diffusion=lambda t, u: torch.cos(u) ** 2)
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)  # E g(Z), Z ~ N(0, 1)
    exact = float(np.sum(weights * np.arctan(math.sqrt(t1) * nodes + math.tan(x0)) ** 3) / math.sqrt(2 * math.pi))
    return Problem(
        "nonlinear",
        f"dX = -sin X cos^3 X dt + cos^2 X dW, x0 = {x0:g}, T = {t1:g}, phi = x^3",
        field,
        x0,
        t1,
        exact_mean=exact,
        exact_path=lambda w: torch.atan(w + math.tan(x0)),
        reference_steps=reference_steps,
    )


def two_point_values(law: NoiseLaw) -> tuple[list[float], list[float]]:
    """Support and probabilities of a two-point law (Rademacher or Bernoulli)."""
    if law.name == "rademacher":
        return [1.0, -1.0], [0.5, 0.5]
    p = law.prob()
    scale = math.sqrt(p * (1.0 - p))
    return [(1.0 - p) / scale, -p / scale], [p, 1.0 - p]


def tree_mean(problem: Problem, law: NoiseLaw, steps: int) -> float:
    """Exact ``E phi(X_N)`` of Euler–Maruyama with a two-point law, summing over all 2^N noise paths."""
    values, probs = two_point_values(law)
    v = torch.tensor(values, dtype=DTYPE)
    pr = torch.tensor(probs, dtype=DTYPE)
    h = problem.t1 / steps
    x = torch.tensor([problem.x0], dtype=DTYPE)
    w = torch.ones(1, dtype=DTYPE)
    for n in range(steps):
        t = n * h
        drift = x + h * problem.field.drift(t, x)
        x = (drift[:, None] + math.sqrt(h) * problem.field.diffusion(t, x)[:, None] * v[None, :]).reshape(-1)
        w = (w[:, None] * pr[None, :]).reshape(-1)
    return float((w * phi(x)).sum())


def gbm_discrete_mean(mu: float, sigma: float, x0: float, t1: float, steps: int, third_moment: float) -> float:
    """Exact ``E X_N^3`` of Euler–Maruyama on GBM for any law with mean 0, variance 1, E xi^3 given."""
    h = t1 / steps
    a = 1.0 + mu * h
    factor = a**3 + 3.0 * a * sigma**2 * h + sigma**3 * h**1.5 * third_moment
    return x0**3 * factor**steps


# ----------------------------------------------------------------------------- Monte Carlo
def controlled_mean(d: torch.Tensor, controls: list[torch.Tensor]) -> tuple[float, float]:
    """Mean of ``d`` with mean-zero ``controls`` regressed out; also the variance reduction factor."""
    d = d.reshape(-1)
    a = torch.stack([c.reshape(-1) for c in controls], 1)
    a_c = a - a.mean(0)
    beta = torch.linalg.lstsq(a_c, d - d.mean(), driver="gelsd").solution  # gelsd: S = W for Gaussian noise
    adjusted = d - a @ beta
    return adjusted.mean().item(), (d.var() / adjusted.var().clamp_min(1e-300)).item()


def em_endpoint(problem: Problem, law: NoiseLaw, xis: list[torch.Tensor], x0: torch.Tensor) -> torch.Tensor:
    """X_N of contdepth's euler_maruyama with the given xi, one per step."""
    replay = Replay(law)
    flow = cd.Flow(
        problem.field, cd.schemes.get("euler_maruyama", noise=replay), steps=len(xis), t1=problem.t1, noise_at_eval=True
    )
    replay.load(xis)
    return flow(x0)


def torchsde_reference(problem: Problem, dw: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """phi at T from torchsde Milstein on the fine grid and on every other point, Richardson-combined."""
    out = []
    for stride in (1, 2):
        steps = dw.shape[0] // stride
        coarse = dw.view(steps, stride, *dw.shape[1:]).sum(1)
        bm = GridBrownian(coarse, 0.0, problem.t1)
        x = cd.sdeint(
            problem.field,
            x0,
            t1=problem.t1,
            method="milstein",
            dt=problem.t1 / steps,
            per="element",
            bm=bm,
            options={"grad_free": True},
        )
        out.append(x)
    return 2 * phi(out[0]) - phi(out[1]), out[0]


def run_batches(problem: Problem, laws: list[LawSpec], steps: list[int], batches: int, paths: int, seed: int) -> dict:
    """Per-batch signed weak errors (and Gaussian strong errors) for every law and step count."""
    n_fine = max(max(steps), problem.reference_steps)
    h0 = problem.t1 / min(steps)
    weak = {spec.label: [[0.0] * len(steps) for _ in range(batches)] for spec in laws}
    reduction = {spec.label: [[0.0] * len(steps) for _ in range(batches)] for spec in laws}
    strong = [[0.0] * len(steps) for _ in range(batches)]
    ref_bias, ref_strong = [], []
    x0 = torch.full((paths, 1), problem.x0, dtype=DTYPE)
    for b in range(batches):
        gen = torch.Generator().manual_seed(seed * 100_003 + b)
        dw = torch.randn(n_fine, paths, 1, generator=gen, dtype=DTYPE) * math.sqrt(problem.t1 / n_fine)
        w_t = dw.sum(0)
        exact_x = problem.exact_path(w_t)
        t1 = problem.t1
        if problem.reference_steps:
            ref_phi, ref_x = torchsde_reference(problem, dw, x0)
            ref_bias.append((ref_phi - phi(exact_x)).mean().item())
            ref_strong.append((ref_x - exact_x).abs().mean().item())
        else:
            ref_phi, ref_x = phi(exact_x), exact_x
        for i, n in enumerate(steps):
            h = problem.t1 / n
            z = dw.view(n, n_fine // n, paths, 1).sum(1) / math.sqrt(h)
            for spec in laws:
                law = spec.law(h, h0)
                xis = [quantile_xi(law, z[j]) for j in range(n)]
                xn = em_endpoint(problem, law, xis, x0)
                walk = math.sqrt(h) * torch.stack(xis).sum(0)
                controls = [walk, walk**2 - t1, walk**3 - n * h**1.5 * law.third_moment(), w_t, w_t**2 - t1, w_t**3]
                weak[spec.label][b][i], reduction[spec.label][b][i] = controlled_mean(phi(xn) - ref_phi, controls)
                if spec.name == "gaussian":
                    strong[b][i] = (xn - ref_x).abs().mean().item()
    return {
        "weak": weak,
        "variance_reduction": reduction,
        "strong": strong,
        "reference_bias": ref_bias,
        "reference_strong": ref_strong,
    }


def library_sampler_check(
    mu: float, sigma: float, problem: Problem, laws: list[LawSpec], steps: int, h0: float, paths: int, seed: int
) -> list[dict]:
    """contdepth's own samplers (no coupling) against the exact discrete expectation E X_N^3 on GBM."""
    rows = []
    x0 = torch.full((paths, 1), problem.x0, dtype=DTYPE)
    h = problem.t1 / steps
    for i, spec in enumerate(laws):
        law = spec.law(h, h0)
        scheme = cd.schemes.get("euler_maruyama", noise=law, seed=seed + i)
        xn = cd.Flow(problem.field, scheme, steps=steps, t1=problem.t1, noise_at_eval=True)(x0)
        values = phi(xn)
        mc, sem = values.mean().item(), values.std().item() / math.sqrt(paths)
        exact = gbm_discrete_mean(mu, sigma, problem.x0, problem.t1, steps, law.third_moment())
        rows.append(
            {"law": spec.label, "steps": steps, "mc": mc, "sem": sem, "exact_discrete": exact, "z": (mc - exact) / sem}
        )
    return rows


# ----------------------------------------------------------------------------- reporting
def summarise(problem: Problem, raw: dict, laws: list[LawSpec], steps: list[int]) -> dict:
    h = [problem.t1 / n for n in steps]
    out = {
        "description": problem.description,
        "t1": problem.t1,
        "steps": steps,
        "exact_mean": problem.exact_mean,
        "laws": {},
    }
    for spec in laws:
        fit = batch_order(h, raw["weak"][spec.label])
        out["laws"][spec.label] = {
            "order": fit.order,
            "stderr": fit.stderr,
            "fit_stderr": fit.fit_stderr,
            "errors": list(fit.errors),
            "error_stderr": list(fit.error_stderr),
            "batch_errors": raw["weak"][spec.label],
            "control_variate_variance_reduction": [
                float(np.median(col)) for col in zip(*raw["variance_reduction"][spec.label], strict=True)
            ],
        }
    fit = batch_order(h, raw["strong"])
    out["strong_gaussian"] = {
        "order": fit.order,
        "stderr": fit.stderr,
        "errors": list(fit.errors),
        "error_stderr": list(fit.error_stderr),
    }
    if raw["reference_bias"]:
        bias = np.array(raw["reference_bias"])
        out["reference"] = {
            "method": f"torchsde milstein, dt = T/{problem.reference_steps} and "
            f"T/{problem.reference_steps // 2}, Richardson",
            "bias_vs_exact_solution": float(bias.mean()),
            "bias_stderr": float(bias.std(ddof=1) / math.sqrt(len(bias))),
            "strong_error_vs_exact_solution": float(np.mean(raw["reference_strong"])),
        }
    return out


def theory(spec: LawSpec) -> str:
    return "1/2" if spec.p is not None else "1"


def plot(results: dict, laws: list[LawSpec], path: Path) -> None:
    plt = setup_matplotlib()
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    colors = dict(zip([s.label for s in laws], plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for ax, key, tag in [(axes[0, 0], "gbm", "a"), (axes[0, 1], "nonlinear", "b")]:
        res = results["problems"][key]
        h = [res["t1"] / n for n in res["steps"]]
        for label, r in res["laws"].items():
            ax.errorbar(
                h,
                r["errors"],
                yerr=r["error_stderr"],
                fmt="o-",
                ms=3.5,
                capsize=2,
                color=colors[label],
                label=f"{label}: {r['order']:.2f} ± {r['stderr']:.2f}",
            )
        if key == "gbm":
            ex = results["gbm_exact_discrete"]
            sub = [i for i, n in enumerate(ex["steps"]) if n in res["steps"]]
            for label, r in ex["laws"].items():
                ax.loglog(
                    [res["t1"] / ex["steps"][i] for i in sub],
                    [r["errors"][i] for i in sub],
                    ":",
                    lw=1.2,
                    color=colors[label],
                )
        if key == "nonlinear":
            tree = results["nonlinear_exact_discrete"]
            for label, errs in tree["laws"].items():
                ax.plot([res["t1"] / n for n in tree["steps"]], [abs(e) for e in errs], "x", ms=7, color=colors[label])
        ax.set_xscale("log")
        ax.set_yscale("log")
        reference_slopes(ax, h, [0.5, 1], anchor=max(max(r["errors"]) for r in res["laws"].values()) * 2)
        ax.set(
            xlabel="step size h", ylabel="weak error |E phi(X_N) - E phi(X_T)|", title=f"({tag}) {res['description']}"
        )
        ax.title.set_fontsize(8)
        note = " (dotted: exact E X_N^3 of the scheme)" if key == "gbm" else " (x: exact E phi(X_N), all 2^N paths)"
        ax.legend(fontsize=7, title="MC weak order" + note, title_fontsize=7)
    ax = axes[1, 0]
    for key, marker in [("gbm", "o"), ("nonlinear", "s")]:
        res = results["problems"][key]
        h = [res["t1"] / n for n in res["steps"]]
        r = res["strong_gaussian"]
        ax.errorbar(
            h,
            r["errors"],
            yerr=r["error_stderr"],
            fmt=marker + "-",
            ms=3.5,
            capsize=2,
            label=f"{key}: {r['order']:.2f} ± {r['stderr']:.2f}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    reference_slopes(ax, h, [0.5, 1], anchor=results["problems"]["gbm"]["strong_gaussian"]["errors"][0] * 2)
    ax.set(xlabel="step size h", ylabel="strong error E|X_N - X_T|", title="(c) strong error, Gaussian noise")
    ax.legend(fontsize=7, title="strong order", title_fontsize=7)
    ax = axes[1, 1]
    ex = results["gbm_exact_discrete"]
    hh = [ex["t1"] / n for n in ex["steps"]]
    for label, r in ex["laws"].items():
        ax.loglog(hh, r["errors"], "-", color=colors[label], label=f"{label}: {r['order_fine']:.2f}")
    reference_slopes(ax, hh, [0.5, 1], anchor=max(r["errors"][0] for r in ex["laws"].values()) * 2)
    ax.set(
        xlabel="step size h",
        ylabel="weak error (exact, no Monte Carlo)",
        title="(d) GBM, exact expectation of the scheme: E xi^3 = O(1) gives order 1/2",
    )
    ax.title.set_fontsize(9)
    ax.legend(
        fontsize=7,
        title=f"order over the finest {ex['fine_points']} points (symmetric laws coincide)",
        title_fontsize=7,
    )
    for ax in axes.flat:
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def tables(results: dict, laws: list[LawSpec]) -> str:
    rows = []
    for spec in laws:
        cells = [spec.label, f"{results['third_moments'][spec.label]}", theory(spec)]
        for key in ["gbm", "nonlinear"]:
            r = results["problems"][key]["laws"][spec.label]
            cells.append(f"{r['order']:.2f} ± {r['stderr']:.2f}")
        cells.append(f"{results['gbm_exact_discrete']['laws'][spec.label]['order']:.2f}")
        rows.append(cells)
    strong = [results["problems"][k]["strong_gaussian"] for k in ["gbm", "nonlinear"]]
    rows.append(["gaussian, strong error", "0", "1/2", *[f"{s['order']:.2f} ± {s['stderr']:.2f}" for s in strong], ""])
    steps = results["problems"]["gbm"]["steps"]
    head = [
        "noise law",
        "E xi^3",
        "theory",
        "(a) GBM, MC",
        "(b) nonlinear, MC",
        f"(a) GBM, exact E X_N^3 (N = {steps[0]}..{steps[-1]})",
    ]
    text = markdown_table(head, rows)
    check = results["library_sampler_check"]
    rows = [
        [r["law"], r["steps"], f"{r['mc']:.5f} ± {r['sem']:.5f}", f"{r['exact_discrete']:.5f}", f"{r['z']:+.2f}"]
        for r in check
    ]
    text += "\n\n" + markdown_table(["law (contdepth sampler)", "N", "MC E X_N^3", "exact E X_N^3", "z"], rows)
    tree = results["nonlinear_exact_discrete"]
    nl = results["problems"]["nonlinear"]
    rows = []
    for label, errs in tree["laws"].items():
        r = nl["laws"][label]
        for i, n in enumerate(tree["steps"]):
            j = nl["steps"].index(n)
            signed = sum(b[j] for b in r["batch_errors"]) / len(r["batch_errors"])
            rows.append([label, n, f"{signed:+.5f} ± {r['error_stderr'][j]:.5f}", f"{errs[i]:+.5f}"])
    text += "\n\n" + markdown_table(
        ["nonlinear SDE, law", "N", "MC weak error (coupled, CV)", "exact (2^N paths)"], rows
    )
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", type=int, default=None, help="independent batches (default 16; --full 32)")
    parser.add_argument("--paths", type=int, default=None, help="paths per batch (default 2^16 nonlinear, 2^17 GBM)")
    parser.add_argument("--p", type=float, default=0.8, help="survival probability of the skewed two-point law")
    parser.add_argument("--full", action="store_true", help="more batches and paths")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # element-wise work on ~1e5 numbers: threads only add contention
    batches = args.batches or (32 if args.full else 16)
    scale = 4 if args.full else 1
    laws = [
        LawSpec("gaussian", "gaussian"),
        LawSpec("rademacher", "rademacher"),
        LawSpec("uniform (shake-shake)", "uniform"),
        LawSpec(f"two-point, p = {args.p:g}", "bernoulli", p=args.p),
        LawSpec(f"two-point, 1-2p ~ sqrt(h) (p = {args.p:g} at h0)", "bernoulli", p_scaled=args.p),
    ]
    steps = [4, 8, 16, 32, 64]
    mu, sigma = 0.0, 0.5
    problems = [gbm(mu, sigma, 1.0, 1.0), arctan_sde(1.2, 1.0, reference_steps=512)]
    h0 = 1.0 / steps[0]
    results: dict = {
        "provenance": provenance(args.seed),
        "phi": "x^3",
        "batches": batches,
        "problems": {},
        "third_moments": {},
    }
    for spec in laws:
        m3 = [spec.law(1.0 / n, h0).third_moment() for n in steps]
        results["third_moments"][spec.label] = (
            f"{m3[0]:+.2f}" if max(m3) - min(m3) < 1e-12 else f"{m3[0]:+.2f} .. {m3[-1]:+.2f}"
        )
    with torch.no_grad():
        for problem in problems:
            paths = args.paths or (2**17 if problem.key == "gbm" else 2**16) * scale
            start = time.time()
            raw = run_batches(problem, laws, steps, batches, paths, args.seed)
            results["problems"][problem.key] = {"paths": paths * batches, **summarise(problem, raw, laws, steps)}
            results["problems"][problem.key]["seconds"] = time.time() - start
            print(f"[{problem.key}] {paths * batches} paths in {time.time() - start:.0f} s", flush=True)
        # the scheme's exact expectation on GBM, over a wider range of h (no Monte Carlo)
        wide = [2**j for j in range(2, 15)]
        gbm_problem = problems[0]
        ex: dict = {"t1": gbm_problem.t1, "steps": wide, "fine_points": 5, "laws": {}}
        for spec in laws:
            errs = [
                abs(
                    gbm_discrete_mean(mu, sigma, 1.0, 1.0, n, spec.law(1.0 / n, h0).third_moment())
                    - gbm_problem.exact_mean
                )
                for n in wide
            ]
            sub = [i for i, n in enumerate(wide) if n in steps]
            ex["laws"][spec.label] = {
                "errors": errs,
                "order": fit_order([1.0 / wide[i] for i in sub], [errs[i] for i in sub]).order,
                "order_fine": fit_order([1.0 / n for n in wide[-5:]], errs[-5:]).order,
            }
        results["gbm_exact_discrete"] = ex
        # two-point laws on the nonlinear SDE: the scheme's exact expectation by enumerating 2^N paths
        nl = problems[1]
        tree_steps = [n for n in steps if n <= 16]
        results["nonlinear_exact_discrete"] = {
            "steps": tree_steps,
            "laws": {
                spec.label: [tree_mean(nl, spec.law(1.0 / n, h0), n) - nl.exact_mean for n in tree_steps]
                for spec in laws
                if spec.name in ("rademacher", "bernoulli")
            },
        }
        results["library_sampler_check"] = library_sampler_check(
            mu, sigma, gbm_problem, laws, 16, h0, 2**20 * scale, args.seed
        )
    results["markdown"] = tables(results, laws)
    write_json(args.out / "weak_convergence.json", results)
    plot(results, laws, args.out / "weak_convergence.png")
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
