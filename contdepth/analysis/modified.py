"""Modified equations, measured: fit the time rescaling ``c`` in ``u' = f(t, u) / c`` to a state.

A scheme that converges to ``c u' = f(u)`` instead of ``u' = f(u)`` (LM-ResNet's two-step
scheme with fixed ``k`` gives ``c = 1 + k``) is identified by fitting ``c`` so that the
solution of the rescaled ODE at ``t1`` matches the scheme's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..continuous import odeint
from ..fields import Field


class Rescaled(Field):
    """The field ``f(t, u) / c`` with ``f``'s pieces (blocks) and horizon."""

    def __init__(self, field: Field, c: float) -> None:
        super().__init__()
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"the rescaling c must be positive and finite, got {c}")
        self.field = field
        self.c = float(c)

    def breakpoints(self) -> tuple[float, ...]:
        return self.field.breakpoints()

    @property
    def horizon(self) -> float | None:
        return self.field.horizon

    def piece(self, t: float) -> int:
        return self.field.piece(t)

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        return self.field.drift(t, u, piece) / self.c


@dataclass(frozen=True)
class RescalingFit:
    """Fitted ``c``, the remaining residual norm ``|u_c(t1) - target|`` and the iterations used."""

    c: float
    residual: float
    iterations: int


def fit_rescaling(
    field: Field,
    u0: Tensor,
    target: Tensor,
    *,
    t1: float | None = None,
    t0: float = 0.0,
    c0: float = 1.0,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    tol: float = 1e-12,
    max_iter: int = 30,
) -> RescalingFit:
    """Least-squares ``c`` such that ``u' = f(t, u) / c`` from ``u0`` reaches ``target`` at ``t1``.

    Gauss–Newton on the one unknown, the Jacobian ``d u_c(t1) / dc`` by central differences;
    each iteration costs two adaptive solves (``dopri5`` at ``rtol``/``atol``).
    """
    if target.shape != u0.shape:
        raise ValueError(f"target has shape {tuple(target.shape)}, u0 {tuple(u0.shape)}")

    def solve(c: float) -> Tensor:
        return odeint(Rescaled(field, c), u0, t1=t1, t0=t0, rtol=rtol, atol=atol)

    c = float(c0)
    with torch.no_grad():
        for it in range(1, max_iter + 1):  # noqa: B007  (the count is reported after the loop)
            eps = 1e-5 * c
            hi, lo = solve(c + eps), solve(c - eps)
            resid = 0.5 * (hi + lo) - target
            jac = (hi - lo) / (2 * eps)
            denom = float((jac * jac).sum())
            if denom == 0.0:
                raise ValueError("the solution does not depend on c (is the field zero along the path?)")
            step = -float((jac * resid).sum()) / denom
            # damp steps that would leave c > 0 or jump by more than half of c
            step = max(min(step, 0.5 * c), -0.5 * c)
            c += step
            if abs(step) <= tol * max(1.0, abs(c)):
                break
        residual = float((solve(c) - target).norm())
    return RescalingFit(c=c, residual=residual, iterations=it)
