"""Adams–Bashforth two-step, order 2: ``x_{n+1} = x_n + h (3/2 f_n - 1/2 f_{n-1})``.

The first step, and the first step after a block boundary (where a piecewise-constant field
jumps, so ``f_{n-1}`` belongs to another block), is forward Euler: a single step with local
error O(h²) keeps the global order 2.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .base import Scheme, StepContext
from .characteristic import Characteristic
from .registry import register


class AB2State(NamedTuple):
    """History of the two-step method: the drift of the previous step (``None`` before the first)."""

    f_prev: Tensor | None = None


@register("ab2", "adams_bashforth2")
class AdamsBashforth2(Scheme):
    ode_order = 2
    supports_noise = False
    strong_order = None
    weak_order = None
    multistep = True

    @classmethod
    def characteristic(cls) -> Characteristic:
        # x_{n+2} - x_{n+1} = h (3/2 f_{n+1} - 1/2 f_n)
        return Characteristic.multistep([0.0, -1.0, 1.0], [-0.5, 1.5], "roots of ζ² - (1 + 3z/2) ζ + z/2")

    def init_state(self, u0: Tensor, u_prev: Tensor | None = None) -> AB2State:
        return AB2State()

    def step(self, ctx: StepContext, u: Tensor, state: AB2State | None) -> tuple[Tensor, AB2State]:
        f_now = ctx.field.drift(ctx.t, u)
        f_prev = None if (state is None or ctx.new_piece) else state.f_prev
        if f_prev is None:
            u_next = torch.add(u, f_now, alpha=ctx.h)
        else:
            u_next = u + ctx.h * (1.5 * f_now - 0.5 * f_prev)
        return u_next, AB2State(f_now)
