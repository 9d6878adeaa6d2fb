"""Problems with exact solutions, shared by the tests and the benchmarks (float64 throughout).

* :func:`linear_ode`: ``u' = A u`` with a damped rotation ``A``, exact ``u(T) = expm(T A) u0``
  (``f(t, 0) = 0``, so every scheme, PolyNet included, reaches its order on it).
* :func:`oscillator`: ``x' = y, y' = -x`` as a :class:`~contdepth.Coupled` field, exact cos/sin.
* :func:`gbm_field`, :func:`gbm_moment`: geometric Brownian motion ``dX = mu X dt + sigma X dW``
  and its exact moments ``E X_T^q = x0^q exp((q mu + q (q-1) sigma^2 / 2) T)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import contdepth as cd

DTYPE = torch.float64


@dataclass(frozen=True)
class OdeProblem:
    """A field, an initial state ``u0`` ``(B, 2)``, a horizon ``t1`` and the exact ``u(t1)``."""

    name: str
    field: cd.Field
    u0: torch.Tensor
    t1: float
    exact: torch.Tensor


def linear_ode(t1: float = 2.0) -> OdeProblem:
    a = torch.tensor([[-0.5, 1.0], [-1.0, -0.5]], dtype=DTYPE)
    u0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=DTYPE)
    field = cd.Tied(lambda t, u: u @ a.T)
    return OdeProblem("linear", field, u0, t1, u0 @ torch.linalg.matrix_exp(t1 * a).T)


def oscillator(t1: float = 2.0) -> OdeProblem:
    field = cd.Coupled(cd.Tied(lambda t, y: y), cd.Tied(lambda t, x: -x))
    u0 = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    return OdeProblem("oscillator", field, u0, t1, torch.tensor([[math.cos(t1), -math.sin(t1)]], dtype=DTYPE))


def gbm_field(mu: float, sigma: float) -> cd.Tied:
    """Geometric Brownian motion: drift ``mu u``, diffusion ``sigma u`` (Itô)."""
    return cd.Tied(lambda t, u: mu * u, diffusion=lambda t, u: sigma * u)


def gbm_moment(mu: float, sigma: float, x0: float, t1: float, q: int) -> float:
    """``E X_T^q`` of geometric Brownian motion from ``X_0 = x0``."""
    return x0**q * math.exp((q * mu + 0.5 * q * (q - 1) * sigma**2) * t1)
