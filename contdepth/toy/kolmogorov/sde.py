"""The SDE a stochastic flow approximates: its field, drift and diagonal diffusion, noise-free paths, a box for them."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...fields import Field
from ...flow import Flow
from ...noise import Noise
from .grid import Grid
from .solver import Coefficients


def check_diagonal_noise(flow: Flow) -> Noise:
    """The flow's noise source, refused unless the flow is stochastic with noise drawn per element."""
    noise = flow.noise
    if noise is None or not flow.field.stochastic:
        raise ValueError("the Kolmogorov check needs a stochastic flow (a field with a diffusion and a noisy scheme)")
    if noise.per != "element":
        raise ValueError(
            f"the finite-difference solver handles diagonal noise only (ξ drawn per element); this flow draws "
            f"ξ per {noise.per!r}, whose diffusion matrix g gᵀ has off-diagonal terms"
        )
    return noise


def sde_field(flow: Flow) -> Field:
    """The field of the SDE a flow's scheme approximates (an LM flow: ``f/(1+k)``, ``g/(1+k)``)."""
    return flow.scheme.continuous_field(flow.field)


def flow_coefficients(flow: Flow) -> Coefficients:
    """Drift and diagonal ``a = g²`` of a flow's SDE, evaluated in the field's dtype."""
    check_diagonal_noise(flow)
    field = sde_field(flow)
    dtype = next(field.parameters()).dtype

    @torch.no_grad()
    def coefficients(t: float, piece: int | None, points: Tensor) -> tuple[Tensor, Tensor]:
        u = points.to(dtype)
        f, g = field.drift_diffusion(t, u, piece)
        if g is None:
            raise ValueError("the Kolmogorov check needs a field with a diffusion")
        return f.double(), g.expand_as(u).double() ** 2

    return coefficients


@torch.no_grad()
def mean_paths(flow: Flow, points: Tensor, steps: int) -> Tensor:
    """Noise-free trajectories of ``points`` (``(steps + 1, N, 2)``) under the flow's SDE drift."""
    det = Flow(sde_field(flow), "euler", steps=steps, t0=flow.t0, t1=flow.t1).eval()
    dtype = next(flow.field.parameters()).dtype
    return det.trajectory(points.to(dtype))


def domain_for(
    flow: Flow, roi: Grid, steps: int, sigma_max: float, spread: float = 5.0
) -> tuple[list[float], list[float]]:
    """Box holding the mean paths from the region of interest, widened by ``spread · σ_max · sqrt(T)``."""
    paths = mean_paths(flow, roi.points(), steps).double()
    margin = spread * sigma_max * math.sqrt(flow.t1 - flow.t0)
    lo = (paths.amin(dim=(0, 1)) - margin).tolist()
    hi = (paths.amax(dim=(0, 1)) + margin).tolist()
    return lo, hi
