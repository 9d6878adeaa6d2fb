"""Euler–Maruyama: forward Euler with noise (see :mod:`.euler`), Gaussian unless told otherwise.

``x_{n+1} = x_n + h f(t_n, x_n) + sqrt(h) g(t_n, x_n) ξ_n``: weak order 1, strong 1/2. The same
scheme as ``euler``; the name only changes the default noise when the flow is given none.
"""

from __future__ import annotations

from .euler import Euler
from .registry import register


@register("euler_maruyama", "em", "sde_euler")
class EulerMaruyama(Euler):
    """``euler`` whose constructor defaults to ``noise="gaussian"`` (``noise=None``: no noise of its own)."""

    default_noise = "gaussian"
    noise_free = "euler"
