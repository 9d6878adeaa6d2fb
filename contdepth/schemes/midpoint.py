"""Explicit midpoint rule: order 2. ``x_{n+1} = x + h f(t + h/2, x + (h/2) f(t, x))``."""

from __future__ import annotations

from .explicit_rk import ExplicitRungeKutta
from .registry import register
from .tableau import ButcherTableau


@register("midpoint")
class Midpoint(ExplicitRungeKutta):
    """The explicit midpoint rule, from its tableau (stability polynomial ``1 + z + z²/2``)."""

    ode_order = 2
    tableau = ButcherTableau([[], ["1/2"]], [0, 1])
