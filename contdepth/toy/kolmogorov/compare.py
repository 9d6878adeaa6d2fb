"""The check itself: the PDE solution on a padded grid against Monte Carlo, in Monte-Carlo standard errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ...flow import Flow
from ...schemes import EulerMaruyama
from .grid import Grid, padded_grid
from .montecarlo import MonteCarlo, monte_carlo
from .sde import domain_for, flow_coefficients, sde_field
from .solver import solve_backward_kolmogorov, time_pieces


def kolmogorov_pde(
    flow: Flow,
    phi: Callable[[Tensor], Tensor],
    roi: Grid,
    *,
    refine: int = 4,
    spread: float = 5.0,
    path_steps: int = 200,
    dt: float | None = None,
    advection: str = "hybrid",
) -> tuple[Tensor, dict]:
    """``v(t0, ·)`` at the nodes of ``roi`` from the finite-difference solver on a padded, ``refine``-times
    finer grid."""
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
        results.append(
            {
                "seconds": time.perf_counter() - start,
                "steps": n,
                "h": (flow.t1 - flow.t0) / n,
                "paths": paths,
                "mean": mc.mean,
                "se": mc.se,
                "exit": mc.exit,
                "agreement": agreement(pde, mc),
            }
        )
    return {
        "roi": roi,
        "pde": pde,
        "pde_info": info,
        "pde_error_estimate": coarse_error,
        "mc": results,
        "network_h": flow.h if isinstance(flow.scheme, EulerMaruyama) else None,
    }


def summary(check: dict) -> dict:
    """JSON-ready numbers of :func:`kolmogorov_check` (no tensors)."""
    info = check["pde_info"]
    return {
        "roi": [
            float(check["roi"].xs[0]),
            float(check["roi"].xs[-1]),
            float(check["roi"].ys[0]),
            float(check["roi"].ys[-1]),
        ],
        "roi_nodes": list(check["roi"].shape),
        "pde": {
            "grid": list(info["grid"]),
            "dx": info["dx"],
            "dy": info["dy"],
            "box": info["box"],
            "time_steps": info["steps"],
            "max_stability_number": info["max_stability"],
            "error_estimate_vs_half_resolution": check["pde_error_estimate"],
        },
        "monte_carlo": [
            {"steps": m["steps"], "h": m["h"], "paths": m["paths"], "exit_fraction": m["exit"], **m["agreement"]}
            for m in check["mc"]
        ],
    }
