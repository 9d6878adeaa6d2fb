"""ODE convergence orders of every deterministic scheme, and the LM-ResNet modified equation, measured.

Two problems in float64, each against a torchdiffeq ``dopri5`` reference at rtol 1e-10:
  (a) scalar nonlinear, non-autonomous: ``u' = sin(u) + 2 cos(2t)`` on [0, 3], three initial values;
  (b) a random convolutional field on 8x8 feature maps: a ``Blocks`` field of two conv-tanh-conv
      blocks (4 channels, batch 2) on [0, 2], piecewise constant in time like a ResNet.
The error at t1 (max norm) is swept over step counts; orders are fitted on the finest points above
the reference's own error floor. For ``lm2`` with fixed k the script shows convergence (order 1) to
``(1+k) u' = f(u)`` and not to ``u' = f(u)``, and fits the rescaling c in ``u' = f / c`` to the LM
output: c -> 1 + k.

    python3 benchmarks/convergence.py [--out benchmarks/results] [--full]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_out_argument, markdown_table, provenance, save_figure, setup_matplotlib, write_json

import contdepth as cd
from contdepth.analysis import fit_order
from contdepth.analysis.modified import fit_rescaling
from contdepth.analysis.plots import reference_slopes
from contdepth.schemes.registry import scheme_class

SCHEMES = ["euler", "heun", "midpoint", "kutta3", "rk4", "ab2", "polynet"]
THEORY = {name: scheme_class(name).ode_order for name in SCHEMES}  # each scheme's declared order
# polynet is consistent only where f(t, 0) = 0 (see contdepth/schemes/polynet.py): not for problem (a)
THEORY_SCALAR = {**THEORY, "polynet": 0}
REF_RTOL, REF_ATOL = 1e-10, 1e-12
FLOOR_FACTOR = 100.0  # fit only errors this many times above the reference's own error
FIT_POINTS = 5  # ... and at most this many of the finest ones (the asymptotic regime)


def scalar_problem() -> tuple[cd.Field, torch.Tensor, float, str]:
    # forced, so u(T) stays sensitive to a rescaling of time (a contracting ODE would forget it);
    # f(t, 0) != 0, where polynet is inconsistent
    field = cd.Tied(lambda t, u: torch.sin(u) + 2.0 * math.cos(2.0 * t))
    u0 = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    return field, u0, 3.0, "scalar u' = sin(u) + 2 cos(2t), u0 in {0, 0.5, 2}, T = 3"


def conv_problem(seed: int, channels: int = 4, blocks: int = 2) -> tuple[cd.Field, torch.Tensor, float, str]:
    gen = torch.Generator().manual_seed(seed)

    def branch() -> nn.Module:
        convs = [nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(2)]
        for conv in convs:  # unit-scale random weights: |f| ~ |u|, so the ODE is neither stiff nor trivial
            conv.weight.data = torch.randn(conv.weight.shape, generator=gen) / math.sqrt(9 * channels)
        return nn.Sequential(convs[0], nn.Tanh(), convs[1])

    field = cd.Blocks([branch() for _ in range(blocks)]).double()
    u0 = torch.randn(2, channels, 8, 8, generator=gen, dtype=torch.float64)
    return (
        field,
        u0,
        float(blocks),
        f"Blocks of {blocks} random conv3x3-tanh-conv3x3 branches, {channels} channels, 8x8, batch 2, T = {blocks}",
    )


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def fit_window(steps: list[int], errors: list[float], floor: float, t1: float) -> dict:
    """Order fitted on the finest ``FIT_POINTS`` errors above ``floor``."""
    keep = [i for i, e in enumerate(errors) if e > floor][-FIT_POINTS:]
    if len(keep) < 2:
        return {"order": math.nan, "stderr": math.nan, "fit_steps": []}
    fit = fit_order([t1 / steps[i] for i in keep], [errors[i] for i in keep])
    return {"order": fit.order, "stderr": fit.stderr, "fit_steps": [steps[i] for i in keep]}


def run_problem(
    name: str, field: cd.Field, u0: torch.Tensor, t1: float, steps: list[int], k: float, theory: dict
) -> dict:
    t_start = time.time()
    ref = cd.odeint(field, u0, t1=t1, rtol=REF_RTOL, atol=REF_ATOL)
    check = cd.odeint(field, u0, t1=t1, rtol=1e-13, atol=1e-15)
    ref_err = max_err(ref, check)
    floor = FLOOR_FACTOR * max(ref_err, 1e-15 * ref.abs().max().item())
    out: dict = {"reference_error": ref_err, "fit_floor": floor, "steps": steps, "t1": t1, "schemes": {}}
    for scheme in SCHEMES:
        errors = [max_err(cd.Flow(field, scheme, steps=n, t1=t1)(u0), ref) for n in steps]
        out["schemes"][scheme] = {"errors": errors, "theory": theory[scheme], **fit_window(steps, errors, floor, t1)}

    # lm2 with fixed k: errors against its limit (1+k)u' = f and against u' = f
    lm_flows = {n: cd.Flow(field, cd.schemes.get("lm2", k=k, learnable=False), steps=n, t1=t1) for n in steps}
    limit = cd.odeint(lm_flows[steps[0]], u0, rtol=REF_RTOL, atol=REF_ATOL)  # u' = f / (1 + k)
    outputs = {n: flow(u0) for n, flow in lm_flows.items()}
    err_limit = [max_err(outputs[n], limit) for n in steps]
    err_plain = [max_err(outputs[n], ref) for n in steps]
    out["lm2"] = {
        "k": k,
        "errors_vs_limit": err_limit,
        "errors_vs_plain": err_plain,
        "limit_fit": fit_window(steps, err_limit, floor, t1),
        "plain_fit": fit_window(steps, err_plain, floor, t1),
    }
    out["seconds"] = time.time() - t_start
    print(f"[{name}] reference error {ref_err:.1e}, {out['seconds']:.0f} s", flush=True)
    return out


def rescaling_study(field: cd.Field, u0: torch.Tensor, t1: float, k: float, steps: list[int]) -> dict:
    """Fitted c in u' = f / c to the lm2 output for each step count, and its Richardson extrapolation."""
    cs = []
    for n in steps:
        flow = cd.Flow(field, cd.schemes.get("lm2", k=k, learnable=False), steps=n, t1=t1)
        cs.append(fit_rescaling(field, u0, flow(u0), t1=t1, rtol=REF_RTOL, atol=REF_ATOL).c)
    dev = [abs(c - (1 + k)) for c in cs]
    fit = fit_order([t1 / n for n in steps], dev) if all(d > 0 for d in dev) else None
    richardson = 2 * cs[-1] - cs[-2]  # c(h) = c + a h + O(h^2) and steps double
    return {
        "k": k,
        "one_plus_k": 1 + k,
        "steps": steps,
        "c_fit": cs,
        "c_richardson": richardson,
        "deviation_order": None if fit is None else fit.order,
    }


def plot(results: dict, path: Path) -> None:
    plt = setup_matplotlib()
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for ax, key in zip(axes[0], ["scalar", "conv"], strict=True):
        res = results["problems"][key]
        h = [res["t1"] / n for n in res["steps"]]
        for scheme, r in res["schemes"].items():
            ax.loglog(h, r["errors"], "o-", ms=3.5, label=f"{scheme}: {r['order']:.2f} (theory {r['theory']})")
        ax.axhline(res["reference_error"], color="k", lw=0.7, ls=":")
        ax.annotate("reference error (rtol 1e-10)", (h[-1], res["reference_error"]), va="bottom", fontsize=7)
        reference_slopes(ax, h, [1, 2, 4], anchor=res["schemes"]["euler"]["errors"][0] * 3)
        ax.set(
            xlabel="step size h", ylabel="max |u_N(T) - u(T)|", title=f"({'ab'[key == 'conv']}) {res['description']}"
        )
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7, title="fitted order", title_fontsize=7)
    ax = axes[1, 0]
    for key, marker in [("scalar", "o"), ("conv", "s")]:
        res = results["problems"][key]
        h = [res["t1"] / n for n in res["steps"]]
        lm = res["lm2"]
        ax.loglog(
            h,
            lm["errors_vs_limit"],
            marker + "-",
            ms=3.5,
            label=f"{key}: vs (1+k)u'=f, order {lm['limit_fit']['order']:.2f}",
        )
        ax.loglog(
            h,
            lm["errors_vs_plain"],
            marker + "--",
            ms=3.5,
            label=f"{key}: vs u'=f, order {lm['plain_fit']['order']:.2f}",
        )
    reference_slopes(ax, h, [1], anchor=results["problems"]["conv"]["lm2"]["errors_vs_limit"][0] * 3)
    ax.set(
        xlabel="step size h",
        ylabel="max error at T",
        title=f"(c) lm2, fixed k = {results['k']}: which ODE is the limit?",
    )
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    for row in results["rescaling"]:
        h = [row["t1"] / n for n in row["steps"]]
        (line,) = ax.semilogx(h, row["c_fit"], "o-", ms=3.5, label=f"{row['problem']}, k = {row['k']:+g}")
        ax.axhline(row["one_plus_k"], color=line.get_color(), lw=0.8, ls="--")
    ax.set(
        xlabel="step size h",
        ylabel="fitted c in u' = f(u)/c",
        title="(d) fitted rescaling of lm2 output -> 1 + k (dashed)",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def tables(results: dict) -> str:
    rows = []
    for scheme in SCHEMES:
        cells = [scheme]
        for key in ["scalar", "conv"]:
            r = results["problems"][key]["schemes"][scheme]
            cells += [str(r["theory"]), f"{r['order']:.2f} ± {r['stderr']:.2f}"]
        rows.append(cells)
    for label, fit_key, theory in [("lm2 vs (1+k)u' = f", "limit_fit", "1"), ("lm2 vs u' = f", "plain_fit", "0")]:
        cells = [f"{label}, k = {results['k']:+g}"]
        for key in ["scalar", "conv"]:
            r = results["problems"][key]["lm2"][fit_key]
            cells += [theory, f"{r['order']:.2f} ± {r['stderr']:.2f}"]
        rows.append(cells)
    t1 = markdown_table(
        ["scheme", "(a) scalar: theory", "(a) fitted order", "(b) conv 8x8: theory", "(b) fitted order"], rows
    )
    rows = []
    for r in results["rescaling"]:
        rows.append(
            [
                r["problem"],
                f"{r['k']:+g}",
                f"{r['one_plus_k']:.4f}",
                f"{r['c_fit'][-1]:.4f}",
                f"{r['c_richardson']:.5f}",
                f"{r['deviation_order']:.2f}",
            ]
        )
    t2 = markdown_table(["problem", "k", "1 + k", "fitted c (finest h)", "Richardson c", "order of c → 1+k"], rows)
    return t1 + "\n\n" + t2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random conv field")
    parser.add_argument("--k", type=float, default=-0.3, help="fixed lm2 momentum k for panel (c)")
    parser.add_argument("--full", action="store_true", help="finer sweeps and more k values")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: more threads only add synchronisation (and contention)
    results: dict = {"provenance": provenance(args.seed), "k": args.k, "problems": {}, "rescaling": []}
    top = 13 if args.full else 10
    problems = {"scalar": scalar_problem(), "conv": conv_problem(args.seed)}
    with torch.no_grad():
        for key, (field, u0, t1, desc) in problems.items():
            steps = [2**j for j in range(2 if key == "scalar" else 1, top + 1)]
            results["problems"][key] = {
                "description": desc,
                **run_problem(key, field, u0, t1, steps, args.k, THEORY_SCALAR if key == "scalar" else THEORY),
            }
        ks = [-0.5, -0.3, 0.3, 0.5] if args.full else [-0.3, 0.3]
        for key, (field, u0, t1, _desc) in problems.items():
            steps = [16, 32, 64, 128, 256] if key == "conv" and not args.full else [16, 32, 64, 128, 256, 512, 1024]
            for k in ks if key == "scalar" else [args.k]:
                row = rescaling_study(field, u0, t1, k, steps)
                results["rescaling"].append({"problem": key, "t1": t1, **row})
                print(
                    f"[rescaling {key} k={k:+g}] c = {row['c_fit'][-1]:.5f} (Richardson {row['c_richardson']:.5f}) "
                    f"vs 1+k = {1 + k:.5f}",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "convergence.json", results)
    plot(results, args.out / "convergence.png")
    text = tables(results)
    results["markdown"] = text
    write_json(args.out / "convergence.json", results)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
