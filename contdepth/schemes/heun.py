"""Heun's method (explicit trapezoid, RK2): order 2.

``k1 = f(t, x)``, ``k2 = f(t + h, x + h k1)``, ``x_{n+1} = x + h (k1 + k2) / 2``.
"""

from __future__ import annotations

from .explicit_rk import ExplicitRungeKutta
from .registry import register
from .tableau import ButcherTableau


@register("heun", "rk2")
class Heun(ExplicitRungeKutta):
    """Heun's method, from its tableau (stability polynomial ``1 + z + z²/2``)."""

    ode_order = 2
    tableau = ButcherTableau([[], [1]], ["1/2", "1/2"])
