"""Figures of the toy: decision regions, trajectories in the plane, the two Kolmogorov solutions.

Figures are built as :class:`matplotlib.figure.Figure` objects, outside pyplot: they need no
display and leave the user's matplotlib backend alone (``fig.savefig`` writes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.ticker
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .data import ToyData
from .model import ToyModel
from .train import accuracy

EXTENT = (-2.2, 2.2, -1.7, 1.7)  # x0, x1, y0, y1 of the input-space panels
COLORS = ("tab:blue", "tab:red")


@torch.no_grad()
def decision_regions(ax: Axes, model: ToyModel, data: ToyData, title: str = "", n: int = 100) -> None:
    """P(class 1) of the noise-free model over the input plane, test points faint, train points bold
    (flipped labels as crosses)."""
    x0, x1, y0, y1 = EXTENT
    xs, ys = torch.linspace(x0, x1, n), torch.linspace(y0, y1, n)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    model.eval()
    prob = model.prob(torch.stack([xx.flatten(), yy.flatten()], dim=1)).reshape(n, n)
    ax.contourf(xx, yy, prob, levels=torch.linspace(0, 1, 11).tolist(), cmap="RdBu_r", alpha=0.55)
    ax.contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=1.0)
    test = data.x_test[:600]
    ax.scatter(test[:, 0], test[:, 1], s=2, c=[COLORS[int(c)] for c in data.y_test[:600]], alpha=0.25, lw=0)
    keep = ~data.flipped
    kept, flipped = data.x_train[keep], data.x_train[~keep]
    ax.scatter(kept[:, 0], kept[:, 1], s=7, c=[COLORS[int(c)] for c in data.y_train[keep]], lw=0)
    ax.scatter(flipped[:, 0], flipped[:, 1], s=16, marker="x", c=[COLORS[int(c)] for c in data.y_train[~keep]], lw=0.8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("input $x_1$", fontsize=8)
    ax.set_ylabel("input $x_2$", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)


@torch.no_grad()
def trajectories(ax: Axes, model: ToyModel, data: ToyData, count: int = 24, noisy: int = 3, title: str = "") -> None:
    """Hidden states ``x_n`` (noise off) of ``count`` training points (dots at ``x_N``), a few noisy
    passes for a stochastic scheme, and the read-out's decision line ``w · x + b = 0`` at ``t = T``."""
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data.x_train), generator=gen)[:count]
    x, y = data.x_train[idx], data.y_train[idx]
    flow = model.flow
    flow.eval()
    mean = flow.trajectory(x)  # the network's own hidden states, one per step
    stochastic = flow.field.stochastic and flow.noise is not None
    if stochastic and noisy:
        flow.noise_at_eval = True
        for _ in range(noisy):
            path = flow.trajectory(x)
            for i in range(count):
                ax.plot(path[:, i, 0], path[:, i, 1], color=COLORS[int(y[i])], lw=0.4, alpha=0.3)
        flow.noise_at_eval = False
    for i in range(count):
        ax.plot(mean[:, i, 0], mean[:, i, 1], color=COLORS[int(y[i])], lw=0.9)
    ax.scatter(mean[-1][:, 0], mean[-1][:, 1], s=8, c=[COLORS[int(c)] for c in y], zorder=3)
    w, b = model.readout.weight[0], float(model.readout.bias[0])
    lo, hi = mean.amin(dim=(0, 1)), mean.amax(dim=(0, 1))
    pad = 0.1 * (hi - lo) + 0.1
    lo, hi = lo - pad, hi + pad
    if abs(float(w[1])) > abs(float(w[0])):
        xs = torch.linspace(float(lo[0]), float(hi[0]), 2)
        ax.plot(xs, -(w[0] * xs + b) / w[1], "k--", lw=0.8)
    else:
        ys = torch.linspace(float(lo[1]), float(hi[1]), 2)
        ax.plot(-(w[1] * ys + b) / w[0], ys, "k--", lw=0.8)
    ax.set_xlim(float(lo[0]), float(hi[0]))
    ax.set_ylim(float(lo[1]), float(hi[1]))
    ax.set_xlabel("hidden state, coordinate 1", fontsize=8)
    ax.set_ylabel("coordinate 2", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)


def legend_handles() -> list[Line2D]:
    """What the marks of :func:`decision_regions` and :func:`trajectories` mean."""
    return [
        Line2D(
            [],
            [],
            marker="o",
            markerfacecolor=COLORS[0],
            markeredgecolor=COLORS[0],
            color="w",
            markersize=6,
            label="class 0 (training point; faint: test)",
        ),
        Line2D(
            [],
            [],
            marker="o",
            markerfacecolor=COLORS[1],
            markeredgecolor=COLORS[1],
            color="w",
            markersize=6,
            label="class 1",
        ),
        Line2D([], [], marker="x", color="0.3", ls="", label="flipped training label"),
        Line2D([], [], color="k", lw=1.0, label="decision boundary P = 0.5"),
        Line2D([], [], color="0.3", lw=0.9, label="trajectory $x_0 \\to x_N$ (noise off; faint: noisy passes)"),
        Line2D([], [], marker="o", color="0.3", ls="", markersize=4, label="trajectory end $x_N$"),
        Line2D([], [], color="k", ls="--", lw=0.8, label="read-out line $w \\cdot x_N + b = 0$"),
    ]


def experiment_figure(
    models: Sequence[tuple[str, ToyModel]],
    data: ToyData,
    kolmogorov: dict[str, Any] | None = None,
    kolmogorov_label: str = "euler/gaussian",
) -> Figure:
    """Decision regions (row 1) and trajectories (row 2) per configuration, test accuracy in the
    titles; a row comparing Monte Carlo with the Kolmogorov solution of ``kolmogorov_label`` when given."""
    cols = max(len(models), 5 if kolmogorov else 1)
    rows = 3 if kolmogorov else 2
    fig = Figure(figsize=(2.7 * cols, 2.7 * rows + 1.0))
    axes = fig.subplots(rows, cols, squeeze=False)
    for j, (label, model) in enumerate(models):
        acc = accuracy(model, data.x_test, data.y_test)
        decision_regions(axes[0, j], model, data, title=f"{label}\ntest accuracy {100 * acc:.1f} %")
        trajectories(axes[1, j], model, data, title=f"{label}: hidden states")
    for j in range(len(models), cols):
        axes[0, j].axis("off")
        axes[1, j].axis("off")
    flipped = int(data.flipped.sum())
    title = (
        f"{data.name}: {len(data.y_train)} training points ({flipped} labels flipped), test accuracy on "
        f"{len(data.y_test)} points. Top: P(class 1) over the input plane; middle: the hidden states, layer by layer"
    )
    if kolmogorov:
        kolmogorov_row(axes[2], kolmogorov)
        title += (
            f"\nBottom: does the trained {kolmogorov_label} network (weights fixed) solve its backward Kolmogorov "
            "equation? v(0, x) = E[φ(X_T) | X_0 = x] by Monte Carlo over the network's own noisy passes\n"
            "against the equation's finite-difference solution, their difference, and the weak error against "
            "the Euler–Maruyama step h"
        )
    fig.suptitle(title, fontsize=9)
    legend_top = 0.18 * (title.count("\n") + 1) + 0.12  # inches below the figure's top edge
    height = fig.get_figheight()
    fig.legend(
        handles=legend_handles(),
        loc="upper center",
        ncol=4,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 1.0 - legend_top / height),
    )
    fig.tight_layout(rect=(0, 0, 1, 1.0 - (legend_top + 0.1) / height))
    return fig


def _fraction(h: float) -> str:
    """``0.25 -> '1/4'``, ``1 -> '1'``: step sizes of the form 1/n as fractions."""
    n = round(1.0 / h)
    return "1" if n == 1 else (f"1/{n}" if abs(n * h - 1.0) < 1e-9 else f"{h:.3g}")


def kolmogorov_row(axes: Sequence[Axes], check: dict[str, Any]) -> None:
    """MC estimate (finest step), PDE solution, their difference in MC standard errors, the weak
    error versus the Euler–Maruyama step h (the network's own step dashed), and the numbers."""
    roi = check["roi"]
    extent = (float(roi.xs[0]), float(roi.xs[-1]), float(roi.ys[0]), float(roi.ys[-1]))
    best = check["mc"][-1]
    shape = roi.shape
    z = (check["pde"].flatten() - best["mean"]) / best["se"].clamp(min=1e-3)
    panels = [
        (
            best["mean"].reshape(shape),
            f"Monte Carlo v(0,x)\n{best['paths']} paths, h = {_fraction(best['h'])}",
            "RdBu_r",
            (0, 1),
        ),
        (check["pde"].reshape(shape), "finite differences v(0,x)\nbackward Kolmogorov", "RdBu_r", (0, 1)),
        (z.reshape(shape), "(PDE - MC) / MC standard error\n|z| < 3 expected", "PuOr", (-4, 4)),
    ]
    bars = ("v(0, x) = P(class 1)", "v(0, x) = P(class 1)", "z (standard errors)")
    for ax, (img, title, cmap, (vmin, vmax)), bar in zip(axes, panels, bars, strict=False):
        im = ax.imshow(img.numpy(), origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("input $x_1$", fontsize=8)
        ax.set_ylabel("input $x_2$", fontsize=8)
        ax.tick_params(labelsize=7)
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        cb.set_label(bar, fontsize=7)
        cb.ax.tick_params(labelsize=7)
    ax = axes[3]
    hs = [m["h"] for m in check["mc"]]
    means = [m["agreement"]["mean_abs_diff"] for m in check["mc"]]
    ax.loglog(hs, means, "o-", label="mean |MC - PDE|")
    ax.loglog(hs, [m["agreement"]["max_abs_diff"] for m in check["mc"]], "s-", label="max |MC - PDE|")
    ax.loglog(hs, [m["agreement"]["max_se"] for m in check["mc"]], "k:", label="max MC s.e.")
    ax.loglog(hs, [means[0] * h / hs[0] for h in hs], color="0.6", lw=0.8, label="∝ h (weak order 1)")
    if check.get("network_h") is not None:
        ax.axvline(check["network_h"], color="0.3", ls="--", lw=0.8, label="the network's h")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(hs))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([_fraction(h) for h in hs]))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("Euler–Maruyama step h", fontsize=8)
    ax.set_ylabel("|MC - PDE| (probability)", fontsize=8)
    ax.set_title("weak error of the network's SDE steps", fontsize=8)
    ax.legend(fontsize=6)
    ax.tick_params(labelsize=7)
    for extra in axes[4:]:
        extra.axis("off")
    if len(axes) > 4:
        a = best["agreement"]
        lines = [
            "v(0,x) = E[φ(X_T) | X_0 = x]",
            "φ = sigmoid read-out",
            f"{a['points']} points, {best['paths']} paths",
            f"h = {_fraction(best['h'])}:",
            f"max |MC - PDE| = {a['max_abs_diff']:.4f}",
            f"max MC s.e.    = {a['max_se']:.4f}",
            f"rms z = {a['rms_z']:.2f}",
            f"max |z| = {a['max_abs_z']:.2f}",
            f"within 3 s.e.: {100 * a['frac_within_3se']:.1f} %",
        ]
        axes[4].text(0.0, 0.95, "\n".join(lines), va="top", family="monospace", fontsize=7, transform=axes[4].transAxes)
