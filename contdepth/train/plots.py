"""Figures of a run: learning curves (``curves.png``) and LM-ResNet's momentum (``momentum.png``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..outputs import save_figure


def _figure(figsize: tuple[float, float]):
    """A figure that needs no backend and leaves the user's matplotlib set-up (pyplot, backend) alone."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def run_title(cfg: Any) -> str:
    """What the figures of a run show: model, scheme and noise, and how much data (subsets named)."""
    parts = [f"{cfg.model} on {cfg.dataset}"]
    if cfg.scheme or cfg.steps_per_block != 1:
        parts.append(f"scheme {cfg.scheme or 'default'}, {cfg.steps_per_block} step(s) per block")
    if cfg.noise and cfg.noise != "none":
        parts.append(f"noise {cfg.noise}")
    parts.append(f"first {cfg.subset:,} training images" if cfg.subset else "all training images")
    parts.append(f"{cfg.test_subset:,} test images (evenly spaced)" if cfg.test_subset else "all test images")
    return ", ".join(parts)


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: str | os.PathLike, title: str) -> None:
    """Title, layout, write the PNG."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_curves(rows: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Loss, error (%) and learning rate against epoch, train and test."""
    ep = [r["epoch"] for r in rows]
    fig = _figure((13, 3.8))
    a, b, c = fig.subplots(1, 3)
    a.plot(ep, [r["train_loss"] for r in rows], label="train")
    a.plot(ep, [r["test_loss"] for r in rows], label="test")
    a.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    b.plot(ep, [100 * (1 - r["train_acc"]) for r in rows], label="train")
    b.plot(ep, [100 * (1 - r["test_acc"]) for r in rows], label="test")
    best = min(rows, key=lambda r: 1 - r["test_acc"])
    b.scatter(
        [best["epoch"]],
        [100 * (1 - best["test_acc"])],
        color="k",
        zorder=3,
        label=f"best test {100 * (1 - best['test_acc']):.2f}%",
    )
    b.set(xlabel="epoch", ylabel="error (%)", title="error")
    c.plot(ep, [r["lr"] for r in rows], drawstyle="steps-post")
    c.set(xlabel="epoch", ylabel="learning rate", title="learning rate (start of epoch)", yscale="log")
    for ax in (a, b):
        ax.legend()
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
        _integer_ticks(ax)
    _save(fig, path, title)


def plot_momentum(k_per_stage: Sequence[Sequence[float]], path: str | os.PathLike, title: str = "") -> None:
    """Learned k_n per block (stages marked) and the modified-equation coefficients of
    ``(1 + k_n) u' + (1 - k_n)(Δt/2) u'' = f(u)``: (1 + k_n) and (1 - k_n)/2."""
    fig = _figure((12, 3.8))
    a, b = fig.subplots(1, 2)
    start = 0
    for s, ks in enumerate(k_per_stage):
        x = list(range(start, start + len(ks)))
        a.plot(x, ks, "o-", ms=3, label=f"stage {s + 1}")
        b.plot(x, [1 + k for k in ks], "o-", ms=3, color=f"C{s}", label=f"1 + k (stage {s + 1})")
        b.plot(x, [(1 - k) / 2 for k in ks], "s--", ms=3, color=f"C{s}", alpha=0.6, label=f"(1 - k)/2 (stage {s + 1})")
        if start:
            for ax in (a, b):
                ax.axvline(start - 0.5, color="0.7", lw=0.8)
        start += len(ks)
    a.axhline(0, color="k", lw=0.6)
    a.set(xlabel="block n of the stage flows (grey: change of space)", ylabel="k_n", title="learned momentum k_n")
    b.set(
        xlabel="block n of the stage flows",
        ylabel="coefficient value",
        title="modified equation: (1+k) u' + (1-k)(Δt/2) u'' = f(u)",
    )
    a.legend(fontsize=8)
    b.legend(fontsize=7, ncol=2)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        _integer_ticks(ax)
    _save(fig, path, title)
