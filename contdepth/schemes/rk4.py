"""Classical Runge–Kutta, order 4 (the family FractalNet approximates).

``k1 = f(t, x)``, ``k2 = f(t + h/2, x + h k1/2)``, ``k3 = f(t + h/2, x + h k2/2)``,
``k4 = f(t + h, x + h k3)``, ``x_{n+1} = x + h (k1 + 2 k2 + 2 k3 + k4) / 6``.
(torchdiffeq's ``rk4`` is Kutta's 3/8 rule, a different order-4 method.)
"""

from __future__ import annotations

from .explicit_rk import ExplicitRungeKutta
from .registry import register
from .tableau import ButcherTableau


@register("rk4")
class RK4(ExplicitRungeKutta):
    """The classical Runge–Kutta method, from its tableau (stability polynomial ``1 + z + … + z⁴/24``)."""

    ode_order = 4
    tableau = ButcherTableau([[], ["1/2"], [0, "1/2"], [0, 0, 1]], ["1/6", "1/3", "1/3", "1/6"])
