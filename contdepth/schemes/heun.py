"""Heun's method (explicit trapezoid, RK2): order 2.

``k1 = f(t, x)``, ``k2 = f(t + h, x + h k1)``, ``x_{n+1} = x + h (k1 + k2) / 2``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Scheme, StepContext
from .characteristic import Characteristic, taylor
from .registry import register


@register("heun", "rk2")
class Heun(Scheme):
    order = 2

    @classmethod
    def characteristic(cls) -> Characteristic:
        return Characteristic.one_step(taylor(2), "|1 + z + z²/2| <= 1")

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        f, t, h = ctx.field.drift, ctx.t, ctx.h
        k1 = f(t, u)
        k2 = f(t + h, torch.add(u, k1, alpha=h))
        return u + (0.5 * h) * (k1 + k2), state
