"""Forward Euler, ``x_{n+1} = x_n + h f(t_n, x_n)``: order 1. One step of size 1 per block is a ResNet."""
from __future__ import annotations

import torch

from .base import Scheme, StepContext
from .registry import register


@register("euler", "resnet")
class Euler(Scheme):
    """Forward Euler (ResNet); uses the drift only (the mean of a stochastic field)."""

    order = 1

    def step(self, ctx: StepContext, u, state):
        # one fused add (x + h f): no extra elementwise pass for the product h f
        return torch.add(u, ctx.field.drift(ctx.t, u), alpha=ctx.h), state
