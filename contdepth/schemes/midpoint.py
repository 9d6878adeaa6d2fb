"""Explicit midpoint rule: order 2. ``x_{n+1} = x + h f(t + h/2, x + (h/2) f(t, x))``."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Scheme, StepContext
from .characteristic import Characteristic, taylor
from .registry import register


@register("midpoint")
class Midpoint(Scheme):
    order = 2

    @classmethod
    def characteristic(cls) -> Characteristic:
        return Characteristic.one_step(taylor(2), "|1 + z + z²/2| <= 1")

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        f, t, h = ctx.field.drift, ctx.t, ctx.h
        k1 = f(t, u)
        return torch.add(u, f(t + 0.5 * h, torch.add(u, k1, alpha=0.5 * h)), alpha=h), state
