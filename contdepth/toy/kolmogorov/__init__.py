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

Modules: ``grid`` (grids of the plane), ``solver`` (the finite-difference solver), ``sde`` (the SDE
a flow approximates), ``montecarlo`` (the estimate over the flow's own noisy passes), ``compare``
(the two against each other).
"""

from .compare import agreement, kolmogorov_check, kolmogorov_pde, summary
from .grid import Grid, PaddedGrid, padded_grid
from .montecarlo import MonteCarlo, monte_carlo
from .sde import domain_for, flow_coefficients, mean_paths, sde_field
from .solver import Coefficients, max_rate, solve_backward_kolmogorov, time_pieces

__all__ = [
    "Coefficients",
    "Grid",
    "MonteCarlo",
    "PaddedGrid",
    "agreement",
    "domain_for",
    "flow_coefficients",
    "kolmogorov_check",
    "kolmogorov_pde",
    "max_rate",
    "mean_paths",
    "monte_carlo",
    "padded_grid",
    "sde_field",
    "solve_backward_kolmogorov",
    "summary",
    "time_pieces",
]
