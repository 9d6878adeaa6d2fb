r"""Finite-difference solver of the 2-D backward Kolmogorov equation with diagonal noise.

**Finite-difference scheme** (2-D, uniform grid ``dx``, ``dy``), marching backwards in time with
explicit Euler, ``v^n = v^{n+1} + Δt L v^{n+1}``:

- diffusion ``½ a_d ∂_dd v``: central second difference;
- advection ``f_d ∂_d v``: *hybrid* differencing node by node (default). Where the cell Péclet
  number ``|f_d| dx_d / a_d`` is at most 1, central differences (second order); elsewhere the
  upwind one-sided difference towards ``sign(f_d)`` (first order; the characteristics of the
  backward equation run along ``+f``). ``advection="upwind"`` uses upwind everywhere.
- coefficients are frozen on each time piece: exact for a ``Blocks`` field (piecewise constant
  in ``t``, block boundaries are step boundaries); a field without breakpoints is split into
  ``freeze`` equal pieces with coefficients taken at their midpoints (exact when autonomous).

**Stability.** Each update is a convex combination of neighbouring values (a monotone scheme, so
the discrete maximum principle holds and ``0 <= v <= 1`` for a probability ``φ``) if and only if

    Δt · max_nodes Σ_d ( a_d / dx_d² + [upwind at the node] |f_d| / dx_d ) <= 1,

i.e. the diffusion number and the advective CFL number together stay below one. The solver takes,
per piece, the largest ``Δt = safety / rate`` that divides the piece evenly; a ``dt`` forced by
the caller that breaks the condition raises ``ValueError``.

**Accuracy.** O(Δt) in time; O(dx²) in space where advection is central, O(dx) where upwind.
The flow's drift enters only through its values at the nodes.

**Boundary.** :func:`kolmogorov_pde` pads the region of interest to a box holding the noise-free
paths from it, widened by ``5 σ_max sqrt(T)`` (:func:`domain_for`), so that paths starting inside
the region leave the box with negligible probability (:func:`monte_carlo` reports the fraction of
end points outside it). On the box edge a zero normal derivative is imposed (ghost node = edge
node), which keeps the scheme monotone; its error does not reach the region within ``[t0, T]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor

from ...fields import Field
from .._threads import one_thread
from .grid import Grid

# coefficients(t_mid, piece, points (N, 2) float64) -> (f (N, 2), a (N, 2)), a = g² per coordinate
Coefficients = Callable[[float, int | None, Tensor], tuple[Tensor, Tensor]]


@dataclass
class _Stencil:
    """Weights of ``v_new = c v + xp v[i+1] + xm v[i-1] + yp v[j+1] + ym v[j-1]``; they sum to 1.

    The zero-gradient boundary (ghost node = edge node) is folded into ``c`` at the edges, so
    ``apply`` only shifts inside the grid.
    """

    c: Tensor
    xp: Tensor
    xm: Tensor
    yp: Tensor
    ym: Tensor

    def __post_init__(self) -> None:
        c = self.c.clone()
        c[:, -1] += self.xp[:, -1]
        c[:, 0] += self.xm[:, 0]
        c[-1, :] += self.yp[-1, :]
        c[0, :] += self.ym[0, :]
        self.c = c
        self.xp, self.xm = self.xp[:, :-1].contiguous(), self.xm[:, 1:].contiguous()
        self.yp, self.ym = self.yp[:-1, :].contiguous(), self.ym[1:, :].contiguous()

    def apply(self, v: Tensor) -> Tensor:
        out = self.c * v
        out[:, :-1].addcmul_(self.xp, v[:, 1:])
        out[:, 1:].addcmul_(self.xm, v[:, :-1])
        out[:-1, :].addcmul_(self.yp, v[1:, :])
        out[1:, :].addcmul_(self.ym, v[:-1, :])
        return out


def _rates(f: Tensor, a: Tensor, h: float, advection: str) -> tuple[Tensor, Tensor, Tensor]:
    """Per-node rates (towards +, towards -, total) of one coordinate's advection-diffusion."""
    diff = 0.5 * a / h**2
    if advection == "upwind":
        central = torch.zeros_like(f, dtype=torch.bool)
    else:
        central = f.abs() * h <= a
    plus = diff + torch.where(central, 0.5 * f / h, f.clamp(min=0) / h)
    minus = diff + torch.where(central, -0.5 * f / h, (-f).clamp(min=0) / h)
    return plus, minus, plus + minus


def _stencil(f: Tensor, a: Tensor, grid: Grid, dt: float, advection: str) -> _Stencil:
    ny, nx = grid.shape
    f, a = f.reshape(ny, nx, 2), a.reshape(ny, nx, 2)
    xp, xm, rx = _rates(f[..., 0], a[..., 0], grid.dx, advection)
    yp, ym, ry = _rates(f[..., 1], a[..., 1], grid.dy, advection)
    return _Stencil(1.0 - dt * (rx + ry), dt * xp, dt * xm, dt * yp, dt * ym)


def max_rate(f: Tensor, a: Tensor, grid: Grid, advection: str = "hybrid") -> float:
    """``max_nodes Σ_d (a_d/dx_d² + [upwind] |f_d|/dx_d)``: explicit Euler is monotone iff ``Δt·rate <= 1``."""
    ny, nx = grid.shape
    f, a = f.reshape(ny, nx, 2), a.reshape(ny, nx, 2)
    rx = _rates(f[..., 0], a[..., 0], grid.dx, advection)[2]
    ry = _rates(f[..., 1], a[..., 1], grid.dy, advection)[2]
    return float((rx + ry).max())


def time_pieces(field: Field, t0: float, t1: float, freeze: int = 20) -> Sequence[tuple[float, float, int | None]]:
    """``(a, b, piece)`` intervals on which the coefficients are frozen, in increasing time."""
    if len(field.breakpoints()) >= 2:
        return field.segments(t0, t1)
    edges = [t0 + (t1 - t0) * k / freeze for k in range(freeze + 1)]
    return [(a, b, None) for a, b in pairwise(edges)]


def solve_backward_kolmogorov(
    coefficients: Coefficients,
    phi: Tensor,
    grid: Grid,
    pieces: Sequence[tuple[float, float, int | None]],
    *,
    dt: float | None = None,
    safety: float = 0.9,
    advection: str = "hybrid",
) -> tuple[Tensor, dict]:
    """``v(t0, ·)`` on ``grid`` from ``v(T, ·) = phi`` (``grid.shape``), marching back over ``pieces``.

    ``coefficients(t_mid, piece, points)`` gives the drift ``f`` and the diagonal ``a = g²`` at the
    grid nodes (each ``(N, 2)``). ``dt`` (optional) forces the time step; by default each piece
    takes the largest stable step times ``safety``. Returns ``(v0, info)`` with per-piece steps,
    time step and stability number ``Δt · rate`` (<= 1).
    """
    if advection not in ("hybrid", "upwind"):
        raise ValueError(f"advection must be 'hybrid' or 'upwind', got {advection!r}")
    if not 0.0 < safety <= 1.0:
        raise ValueError(f"safety must lie in (0, 1], got {safety}")
    if tuple(phi.shape) != grid.shape:
        raise ValueError(f"phi has shape {tuple(phi.shape)}, the grid {grid.shape}")
    points = grid.points()
    v = phi.to(torch.float64).clone()
    log: list[dict[str, Any]] = []
    for a_t, b_t, piece in reversed(list(pieces)):
        length = b_t - a_t
        with torch.no_grad():
            f, a = coefficients(0.5 * (a_t + b_t), piece, points)
        f, a = f.to(torch.float64), a.to(torch.float64)
        if (a < 0).any():
            raise ValueError("the diffusion coefficient a = g² must be non-negative")
        rate = max_rate(f, a, grid, advection)
        if dt is None:
            n = max(1, math.ceil(length * rate / safety))
        else:
            n = max(1, round(length / dt))
            if abs(n * dt - length) > 1e-9 * max(1.0, length):
                raise ValueError(f"dt={dt:g} does not divide the time piece [{a_t:g}, {b_t:g}] into whole steps")
            if dt * rate > 1.0 + 1e-12:
                raise ValueError(
                    f"dt={dt:g} is unstable on [{a_t:g}, {b_t:g}]: dt * max Σ_d (a_d/dx_d² + |f_d|/dx_d [upwind]) "
                    f"= {dt * rate:.3g} > 1; use dt <= {1.0 / rate:.3g} (or leave dt unset)"
                )
        h = length / n
        stencil = _stencil(f, a, grid, h, advection)
        with one_thread():
            for _ in range(n):
                v = stencil.apply(v)
        log.append({"t": (a_t, b_t), "steps": n, "dt": h, "stability": h * rate})
    log.reverse()
    return v, {"pieces": log, "steps": sum(p["steps"] for p in log), "max_stability": max(p["stability"] for p in log)}
