r"""The backward Kolmogorov equation of a stochastic flow, solved two independent ways.

With its parameters fixed, a noisy residual network is a weak approximation of the Itô SDE
``dX = f(t, X) dt + g(t, X) dW`` on ``[t0, T]``, and the expected output
``v(t, x) = E[φ(X_T) | X_t = x]`` solves the backward Kolmogorov equation

    ∂_t v + f · ∇v + ½ Σ_d a_d ∂_dd v = 0,    v(T, ·) = φ,        a_d = g_d²,

for diagonal noise (independent Brownian motions per coordinate, ξ drawn per element), the
case handled here; training the network is optimal control of this equation (Sun, Tao, Du 2018).
:func:`monte_carlo` estimates ``v(t0, x)`` by averaging ``φ`` over Euler–Maruyama paths of the
flow itself (``noise_at_eval=True``); :func:`solve_backward_kolmogorov` solves the PDE by finite
differences on a grid of the plane.

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
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from ..fields import Field
from ..flow import Flow
from ..schemes import EulerMaruyama
from ._threads import one_thread

# coefficients(t_mid, piece, points (N, 2) float64) -> (f (N, 2), a (N, 2)), a = g² per coordinate
Coefficients = Callable[[float, Optional[int], Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Grid:
    """Uniform grid of the plane: nodes ``xs`` (nx,), ``ys`` (ny,), float64; values live as ``(ny, nx)``."""

    xs: Tensor
    ys: Tensor

    @property
    def dx(self) -> float:
        return float(self.xs[1] - self.xs[0])

    @property
    def dy(self) -> float:
        return float(self.ys[1] - self.ys[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.ys), len(self.xs))

    def points(self) -> Tensor:
        """All nodes, ``(ny * nx, 2)``, row-major over ``(y, x)``."""
        yy, xx = torch.meshgrid(self.ys, self.xs, indexing="ij")
        return torch.stack([xx.flatten(), yy.flatten()], dim=1)

    @staticmethod
    def box(lo: Sequence[float], hi: Sequence[float], n: Sequence[int]) -> "Grid":
        """``n = (nx, ny)`` nodes spanning ``[lo_x, hi_x] x [lo_y, hi_y]``."""
        xs = torch.linspace(lo[0], hi[0], n[0], dtype=torch.float64)
        ys = torch.linspace(lo[1], hi[1], n[1], dtype=torch.float64)
        return Grid(xs, ys)


@dataclass(frozen=True)
class PaddedGrid:
    """A fine computational grid whose nodes ``[j0::refine, i0::refine]`` are the coarse region of interest."""

    grid: Grid
    roi: Grid
    i0: int
    j0: int
    refine: int

    def restrict(self, values: Tensor) -> Tensor:
        """Values on the fine grid ``(ny, nx)`` -> values at the region-of-interest nodes ``roi.shape``."""
        ny, nx = self.roi.shape
        r = self.refine
        return values[self.j0 : self.j0 + r * (ny - 1) + 1 : r, self.i0 : self.i0 + r * (nx - 1) + 1 : r]


def padded_grid(roi: Grid, refine: int, lo: Sequence[float], hi: Sequence[float]) -> PaddedGrid:
    """Refine ``roi`` by an integer factor and extend it with whole cells to cover ``[lo, hi]``."""
    if refine < 1:
        raise ValueError(f"refine must be >= 1, got {refine}")
    dx, dy = roi.dx / refine, roi.dy / refine
    pad_lo = [max(0, math.ceil((float(roi.xs[0]) - lo[0]) / dx)), max(0, math.ceil((float(roi.ys[0]) - lo[1]) / dy))]
    pad_hi = [max(0, math.ceil((hi[0] - float(roi.xs[-1])) / dx)), max(0, math.ceil((hi[1] - float(roi.ys[-1])) / dy))]
    nx = pad_lo[0] + refine * (len(roi.xs) - 1) + 1 + pad_hi[0]
    ny = pad_lo[1] + refine * (len(roi.ys) - 1) + 1 + pad_hi[1]
    xs = float(roi.xs[0]) + dx * (torch.arange(nx, dtype=torch.float64) - pad_lo[0])
    ys = float(roi.ys[0]) + dy * (torch.arange(ny, dtype=torch.float64) - pad_lo[1])
    return PaddedGrid(Grid(xs, ys), roi, pad_lo[0], pad_lo[1], refine)


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


def time_pieces(field: Field, t0: float, t1: float, freeze: int = 20) -> list[tuple[float, float, Optional[int]]]:
    """``(a, b, piece)`` intervals on which the coefficients are frozen, in increasing time."""
    if len(field.breakpoints()) >= 2:
        return field.segments(t0, t1)
    edges = [t0 + (t1 - t0) * k / freeze for k in range(freeze + 1)]
    return [(a, b, None) for a, b in zip(edges[:-1], edges[1:])]


def solve_backward_kolmogorov(
    coefficients: Coefficients,
    phi: Tensor,
    grid: Grid,
    pieces: Sequence[tuple[float, float, Optional[int]]],
    *,
    dt: Optional[float] = None,
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
    log = []
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


# ------------------------------------------------------------------------------------- flows
def _check_diagonal(flow: Flow) -> None:
    scheme = flow.scheme
    if getattr(scheme, "law", None) is None or not flow.field.stochastic:
        raise ValueError("the Kolmogorov check needs a stochastic flow (a field with a diffusion and a noisy scheme)")
    if getattr(scheme, "per", None) != "element":
        raise ValueError(
            f"the finite-difference solver handles diagonal noise only (ξ drawn per element); this flow draws "
            f"ξ per {scheme.per!r}, whose diffusion matrix g gᵀ has off-diagonal terms"
        )


def sde_field(flow: Flow) -> Field:
    """The field of the SDE a flow's scheme approximates (an LM flow: ``f/(1+k)``, ``g/(1+k)``)."""
    return flow.scheme.continuous_field(flow.field)


def flow_coefficients(flow: Flow) -> Coefficients:
    """Drift and diagonal ``a = g²`` of a flow's SDE, evaluated in the field's dtype."""
    _check_diagonal(flow)
    field = sde_field(flow)
    dtype = next(field.parameters()).dtype

    @torch.no_grad()
    def coefficients(t: float, piece: Optional[int], points: Tensor) -> tuple[Tensor, Tensor]:
        u = points.to(dtype)
        f, g = field.drift_diffusion(t, u, piece)
        return f.double(), g.expand_as(u).double() ** 2

    return coefficients


@torch.no_grad()
def mean_paths(flow: Flow, points: Tensor, steps: int) -> Tensor:
    """Noise-free trajectories of ``points`` (``(steps + 1, N, 2)``) under the flow's SDE drift."""
    det = Flow(sde_field(flow), "euler", steps=steps, t0=flow.t0, t1=flow.t1).eval()
    dtype = next(flow.field.parameters()).dtype
    return det.trajectory(points.to(dtype))


def domain_for(flow: Flow, roi: Grid, steps: int, sigma_max: float, spread: float = 5.0) -> tuple[list[float], list[float]]:
    """Box holding the mean paths from the region of interest, widened by ``spread · σ_max · sqrt(T)``."""
    paths = mean_paths(flow, roi.points(), steps).double()
    margin = spread * sigma_max * math.sqrt(flow.t1 - flow.t0)
    lo = (paths.amin(dim=(0, 1)) - margin).tolist()
    hi = (paths.amax(dim=(0, 1)) + margin).tolist()
    return lo, hi


@dataclass
class MonteCarlo:
    """``mean`` and standard error ``se`` of ``φ(X_T)`` per start point (``(P,)``); ``exit`` the fraction of
    paths whose end point left the box given (NaN when none was given)."""

    mean: Tensor
    se: Tensor
    paths: int
    steps: int
    exit: float


@torch.no_grad()
def monte_carlo(
    flow: Flow,
    phi: Callable[[Tensor], Tensor],
    points: Tensor,
    *,
    paths: int = 1000,
    steps: Optional[int] = None,
    seed: int = 0,
    chunk: int = 200_000,
    box: Optional[tuple[Sequence[float], Sequence[float]]] = None,
) -> MonteCarlo:
    """Average ``phi(X_T)`` over ``paths`` Euler–Maruyama paths of the flow from each of ``points`` (P, 2).

    The flow's field and noise law are reused with a private seeded generator, ``steps`` steps
    (default: the flow's own) and ``noise_at_eval=True``; the flow itself is not modified. For an
    Euler–Maruyama flow at its own step count these are exactly the network's noisy passes; for
    an ``lm2`` flow, Euler–Maruyama paths of its limit SDE (``f/(1+k)``, ``g/(1+k)``).
    """
    _check_diagonal(flow)
    steps = flow.steps if steps is None else steps
    scheme = EulerMaruyama(noise=flow.scheme.law, per="element", seed=seed)
    sde = Flow(sde_field(flow), scheme, steps=steps, t0=flow.t0, t1=flow.t1, noise_at_eval=True).eval()
    dtype = next(flow.field.parameters()).dtype
    per_chunk = max(1, chunk // paths)
    means, ses, exits = [], [], 0
    for start in range(0, len(points), per_chunk):
        x0 = points[start : start + per_chunk].to(dtype)
        u0 = x0.repeat_interleave(paths, dim=0)
        with one_thread():
            x_T = sde(u0)
        values = phi(x_T).double().reshape(len(x0), paths)
        means.append(values.mean(dim=1))
        ses.append(values.std(dim=1) / math.sqrt(paths))
        if box is not None:
            lo, hi = torch.tensor(box[0], dtype=dtype), torch.tensor(box[1], dtype=dtype)
            exits += int(((x_T < lo) | (x_T > hi)).any(dim=1).sum())
    exit_frac = exits / (len(points) * paths) if box is not None else float("nan")
    return MonteCarlo(torch.cat(means), torch.cat(ses), paths, steps, exit_frac)


def kolmogorov_pde(
    flow: Flow,
    phi: Callable[[Tensor], Tensor],
    roi: Grid,
    *,
    refine: int = 4,
    spread: float = 5.0,
    path_steps: int = 200,
    dt: Optional[float] = None,
    advection: str = "hybrid",
) -> tuple[Tensor, dict]:
    """``v(t0, ·)`` at the nodes of ``roi`` from the finite-difference solver on a padded, ``refine``-times finer grid."""
    coefficients = flow_coefficients(flow)
    pieces = time_pieces(sde_field(flow), flow.t0, flow.t1)
    probe = roi.points()
    sigma_max = max(float(coefficients(0.5 * (a + b), p, probe)[1].max().sqrt()) for a, b, p in pieces)
    lo, hi = domain_for(flow, roi, path_steps, sigma_max, spread)
    padded = padded_grid(roi, refine, lo, hi)
    with torch.no_grad():
        dtype = next(flow.field.parameters()).dtype
        terminal = phi(padded.grid.points().to(dtype)).double().reshape(padded.grid.shape)
    v0, info = solve_backward_kolmogorov(coefficients, terminal, padded.grid, pieces, dt=dt, advection=advection)
    info.update(box=(lo, hi), grid=padded.grid.shape, dx=padded.grid.dx, dy=padded.grid.dy)
    return padded.restrict(v0), info


def agreement(pde: Tensor, mc: MonteCarlo, se_floor: float = 1e-3) -> dict:
    """How far the PDE values (``(P,)`` or grid-shaped) are from the Monte-Carlo means, in MC standard errors.

    ``z = (PDE - MC) / max(SE, se_floor)``: where every path gives φ ≈ 0 or 1 the sample SE is ~0
    and the floor keeps a 1e-4 PDE error from reading as a huge z. If the two agree, ``rms_z`` ≈ 1
    and ``max_abs_z`` is what the largest of P standard normals would be (≈ 3 to 3.5 for P ~ 300-1000).
    """
    diff = pde.flatten().double() - mc.mean
    se = mc.se.clamp(min=se_floor)
    z = diff / se
    return {
        "max_abs_diff": float(diff.abs().max()),
        "mean_abs_diff": float(diff.abs().mean()),
        "max_se": float(mc.se.max()),
        "mean_se": float(mc.se.mean()),
        "max_abs_z": float(z.abs().max()),
        "rms_z": float(z.pow(2).mean().sqrt()),
        "frac_within_3se": float((z.abs() <= 3).double().mean()),
        "points": int(diff.numel()),
    }


def kolmogorov_check(
    flow: Flow,
    phi: Callable[[Tensor], Tensor],
    roi: Grid,
    *,
    steps: Sequence[int] = (4, 16, 64, 256),
    paths: int = 2000,
    refine: int = 4,
    seed: int = 0,
) -> dict:
    """``v(t0, x) = E[φ(X_T) | X_{t0} = x]`` at the nodes of ``roi`` by the PDE and by Monte Carlo.

    Monte Carlo runs once per entry of ``steps`` (the Euler–Maruyama step count; the network's
    own count shows its weak error, fine counts its convergence to the SDE). The PDE is also solved
    on a grid twice as coarse, whose difference estimates its own discretisation error.

    Returns ``{"roi", "pde" (roi.shape), "pde_info", "pde_error_estimate", "network_h", "mc": [per
    step count: {"steps", "h", "paths", "mean" (P,), "se" (P,), "exit", "agreement"}]}``, finest
    step last; ``network_h`` is the flow's own step when its scheme is Euler–Maruyama.
    """
    start = time.perf_counter()
    pde, info = kolmogorov_pde(flow, phi, roi, refine=refine)
    info["seconds"] = time.perf_counter() - start
    coarse_error = None
    if refine % 2 == 0:
        coarse, _ = kolmogorov_pde(flow, phi, roi, refine=refine // 2)
        coarse_error = float((coarse - pde).abs().max())
    points = roi.points()
    results = []
    for n in sorted(steps):
        start = time.perf_counter()
        mc = monte_carlo(flow, phi, points, paths=paths, steps=n, seed=seed + n, box=info["box"])
        results.append({
            "seconds": time.perf_counter() - start,
            "steps": n,
            "h": (flow.t1 - flow.t0) / n,
            "paths": paths,
            "mean": mc.mean,
            "se": mc.se,
            "exit": mc.exit,
            "agreement": agreement(pde, mc),
        })
    return {
        "roi": roi, "pde": pde, "pde_info": info, "pde_error_estimate": coarse_error, "mc": results,
        "network_h": flow.h if isinstance(flow.scheme, EulerMaruyama) else None,
    }


def summary(check: dict) -> dict:
    """JSON-ready numbers of :func:`kolmogorov_check` (no tensors)."""
    info = check["pde_info"]
    return {
        "roi": [float(check["roi"].xs[0]), float(check["roi"].xs[-1]), float(check["roi"].ys[0]), float(check["roi"].ys[-1])],
        "roi_nodes": list(check["roi"].shape),
        "pde": {
            "grid": list(info["grid"]), "dx": info["dx"], "dy": info["dy"], "box": info["box"],
            "time_steps": info["steps"], "max_stability_number": info["max_stability"],
            "error_estimate_vs_half_resolution": check["pde_error_estimate"],
        },
        "monte_carlo": [
            {"steps": m["steps"], "h": m["h"], "paths": m["paths"], "exit_fraction": m["exit"], **m["agreement"]}
            for m in check["mc"]
        ],
    }
