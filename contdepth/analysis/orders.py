"""Convergence orders fitted on log-log axes: ``error ≈ C h^p``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class OrderFit:
    """Least-squares fit of ``log error = log C + p log h``: ``order`` p, its standard error, ``constant`` C."""

    order: float
    stderr: float
    constant: float


def fit_order(step_sizes: Sequence[float], errors: Sequence[float]) -> OrderFit:
    """Fit the order ``p`` in ``error ≈ C h^p`` over step sizes ``h`` (pass ``T/N`` for N steps).

    Needs at least two points with positive errors; the standard error is 0 for exactly two.
    """
    if len(step_sizes) != len(errors):
        raise ValueError(f"{len(step_sizes)} step sizes but {len(errors)} errors")
    if len(errors) < 2:
        raise ValueError("fitting an order needs at least two step sizes")
    if any(not (e > 0 and math.isfinite(e)) for e in errors) or any(h <= 0 for h in step_sizes):
        raise ValueError(f"step sizes and errors must be positive and finite, got {list(step_sizes)}, {list(errors)}")
    xs = [math.log(h) for h in step_sizes]
    ys = [math.log(e) for e in errors]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("step sizes must not all be equal")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    if n > 2:
        resid = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
        stderr = math.sqrt(resid / (n - 2) / sxx)
    else:
        stderr = 0.0
    return OrderFit(order=slope, stderr=stderr, constant=math.exp(intercept))
