"""Plot helpers for convergence studies (matplotlib is imported by the caller's axes)."""

from __future__ import annotations

from collections.abc import Sequence


def reference_slopes(ax, h: Sequence[float], orders: Sequence[float], anchor: float, *, color: str = "0.55") -> None:
    """Draw dashed ``C h^p`` lines over the range of ``h`` on a log-log axis, each labelled ``O(h^p)``.

    Each line passes through ``anchor`` at the largest ``h``, so slopes can be compared by eye.
    """
    lo, hi = min(h), max(h)
    for p in orders:
        ys = [anchor * (x / hi) ** p for x in (hi, lo)]
        ax.plot([hi, lo], ys, linestyle="--", color=color, linewidth=0.9, zorder=0)
        label = f"$h^{{{p:g}}}$" if p != 0.5 else r"$h^{1/2}$"
        ax.annotate(
            label,
            (lo, ys[1]),
            textcoords="offset points",
            xytext=(-4, 0),
            ha="right",
            va="center",
            fontsize=8,
            color=color,
        )
