"""Number and table formatting shared by the blocks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; ``None`` cells are left empty."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def num(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def signed(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}"


def pm(x: float, err: float, digits: int = 2) -> str:
    """``x ± err``."""
    return f"{x:.{digits}f} ± {err:.{digits}f}"


def pct(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage without the sign: 0.8564 -> ``85.6``."""
    return f"{100 * fraction:.{digits}f}"


def span(values: Iterable[float], digits: int = 2, unit: str = "") -> str:
    """``lo–hi`` of the values (one number when they round alike)."""
    vals = list(values)
    lo, hi = f"{min(vals):.{digits}f}", f"{max(vals):.{digits}f}"
    dash = " to " if min(vals) < 0 else "–"  # "-0.6–-0.3" reads badly
    return f"{lo}{unit}" if lo == hi else f"{lo}{dash}{hi}{unit}"


def thousands(x: float) -> str:
    return f"{round(x):,}"


def millions(x: float, digits: int = 1) -> str:
    return f"{x / 1e6:.{digits}f} M"


def minutes(seconds: float) -> str:
    """``525 s`` -> ``8.8 min``; an hour or more -> ``1.4 h``."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"


def slope(a: float, b: float, ha: float, hb: float) -> float:
    """The log-log slope between the points (ha, a) and (hb, b)."""
    return math.log(a / b) / math.log(ha / hb)


def fraction_text(x: float) -> str:
    """``0.25`` -> ``1/4`` for the step sizes the benchmarks use (powers of two), else the decimal."""
    if x >= 1:
        return f"{x:g}"
    inverse = 1 / x
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{x:g}"
