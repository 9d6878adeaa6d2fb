"""Classical Runge–Kutta, order 4 (the family FractalNet approximates).

``k1 = f(t, x)``, ``k2 = f(t + h/2, x + h k1/2)``, ``k3 = f(t + h/2, x + h k2/2)``,
``k4 = f(t + h, x + h k3)``, ``x_{n+1} = x + h (k1 + 2 k2 + 2 k3 + k4) / 6``.
(torchdiffeq's ``rk4`` is Kutta's 3/8 rule, a different order-4 method.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Scheme, StepContext
from .characteristic import Characteristic, taylor
from .registry import register


@register("rk4")
class RK4(Scheme):
    order = 4

    @classmethod
    def characteristic(cls) -> Characteristic:
        return Characteristic.one_step(taylor(4), "|1 + z + z²/2 + z³/6 + z⁴/24| <= 1")

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        f, t, h = ctx.field.drift, ctx.t, ctx.h
        half = 0.5 * h
        k1 = f(t, u)
        k2 = f(t + half, torch.add(u, k1, alpha=half))
        k3 = f(t + half, torch.add(u, k2, alpha=half))
        k4 = f(t + h, torch.add(u, k3, alpha=h))
        return u + (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4), state
