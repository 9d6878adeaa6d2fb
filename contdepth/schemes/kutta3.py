"""Kutta's third-order method: order 3.

``k1 = f(t, x)``, ``k2 = f(t + h/2, x + h k1/2)``, ``k3 = f(t + h, x - h k1 + 2 h k2)``,
``x_{n+1} = x + h (k1 + 4 k2 + k3) / 6``.
"""

from __future__ import annotations

from .explicit_rk import ExplicitRungeKutta
from .registry import register
from .tableau import ButcherTableau


@register("kutta3", "rk3")
class Kutta3(ExplicitRungeKutta):
    """Kutta's third-order method, from its tableau (stability polynomial ``1 + z + z²/2 + z³/6``)."""

    ode_order = 3
    tableau = ButcherTableau([[], ["1/2"], [-1, 2]], ["1/6", "2/3", "1/6"])
