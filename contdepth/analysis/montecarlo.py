"""Convergence orders from Monte-Carlo errors, with error bars from independent batches.

A weak error ``|E phi(X_N) - E phi(X(T))|`` is estimated by a sample mean; splitting the paths
into B independent batches gives each mean's standard error and, by the jackknife over batches,
the standard error of the fitted order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .orders import fit_order


@dataclass(frozen=True)
class MCOrderFit:
    """Fitted order with its Monte-Carlo standard error (jackknife over batches) and regression stderr.

    ``errors``: the pooled estimates ``|mean|`` per step size; ``error_stderr`` their MC standard
    errors; ``stderr`` is NaN when some leave-one-batch-out error is not positive (noise-dominated).
    """

    order: float
    stderr: float
    fit_stderr: float
    constant: float
    errors: tuple[float, ...]
    error_stderr: tuple[float, ...]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def batch_order(step_sizes: Sequence[float], batch_errors: Sequence[Sequence[float]]) -> MCOrderFit:
    """Order of ``|e| ≈ C h^p`` from signed per-batch errors ``batch_errors[b][i]`` (batch b, step size i).

    Batches must be independent and of equal size, so the pooled estimate is their mean.
    """
    batches = [list(map(float, row)) for row in batch_errors]
    n_b = len(batches)
    if n_b < 2:
        raise ValueError("error bars need at least two independent batches")
    n_h = len(step_sizes)
    if any(len(row) != n_h for row in batches):
        raise ValueError(f"every batch needs one error per step size ({n_h})")
    columns = [[row[i] for row in batches] for i in range(n_h)]
    pooled = [_mean(col) for col in columns]
    sems = [math.sqrt(sum((x - m) ** 2 for x in col) / (n_b - 1) / n_b) for col, m in zip(columns, pooled, strict=True)]
    errors = [abs(m) for m in pooled]
    fit = fit_order(step_sizes, errors)
    leave_out: list[float] = []
    for b in range(n_b):
        means = [abs((m * n_b - col[b]) / (n_b - 1)) for col, m in zip(columns, pooled, strict=True)]
        if any(v <= 0 for v in means):
            leave_out = []
            break
        leave_out.append(fit_order(step_sizes, means).order)
    if leave_out:
        jbar = _mean(leave_out)
        stderr = math.sqrt((n_b - 1) / n_b * sum((s - jbar) ** 2 for s in leave_out))
    else:
        stderr = math.nan
    return MCOrderFit(fit.order, stderr, fit.stderr, fit.constant, tuple(errors), tuple(sems))
