"""Exactly invertible schemes for the coupled system ``x' = f1(y), y' = f2(x)`` (RevNet).

The state is ``u = cat(x, y, dim=1)`` and the field a :class:`~contdepth.fields.Coupled`.

- ``revnet`` (symplectic Euler, order 1), RevNet's update:
  ``x_{n+1} = x_n + h f1(y_n)``, ``y_{n+1} = y_n + h f2(x_{n+1})``.
- ``leapfrog`` (Störmer–Verlet, order 2):
  ``x_½ = x_n + (h/2) f1(y_n)``, ``y_{n+1} = y_n + h f2(x_½)``, ``x_{n+1} = x_½ + (h/2) f1(y_{n+1})``.

Both are inverted exactly (up to rounding) by running the updates backwards, which lets a flow
with ``reversible=True`` backpropagate without storing activations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..fields import Coupled
from .base import Scheme, StepContext
from .characteristic import Characteristic
from .registry import register


class _CoupledScheme(Scheme):
    supports_noise = False
    strong_order = None
    weak_order = None
    invertible = True
    requires_coupled = True

    @classmethod
    def characteristic(cls) -> Characteristic:
        # on x' = a y, y' = b x (z² = h² ab) both schemes have an area-preserving step matrix with trace 2 + z²
        return Characteristic(
            ((1.0, -2.0, 1.0), (0.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
            "partitioned",
            "roots of ζ² - (2 + z²) ζ + 1 with z² = h² ab on x' = a y, y' = b x: the segment z in i[-2, 2], "
            "open at ±2i; z = 0 fails the root condition (double root 1: linear growth when ab = 0)",
        )

    @staticmethod
    def _parts(ctx: StepContext) -> Coupled:
        field = ctx.field.field
        if not isinstance(field, Coupled):
            raise TypeError("this scheme needs a contdepth.Coupled field (x' = f1(y), y' = f2(x))")
        return field


@register("revnet", "symplectic_euler")
class RevNet(_CoupledScheme):
    ode_order = 1

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        field, t, h, p = self._parts(ctx), ctx.t, ctx.h, ctx.piece
        x, y = field.split(u)
        x = x + h * field.drift_x(t, y, p)
        y = y + h * field.drift_y(t, x, p)
        return torch.cat([x, y], dim=1), state

    def inverse_step(self, ctx: StepContext, u_next: Tensor) -> Tensor:
        field, t, h, p = self._parts(ctx), ctx.t, ctx.h, ctx.piece
        x, y = field.split(u_next)
        y = y - h * field.drift_y(t, x, p)
        x = x - h * field.drift_x(t, y, p)
        return torch.cat([x, y], dim=1)


@register("leapfrog", "verlet")
class Leapfrog(_CoupledScheme):
    ode_order = 2

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        field, t, h, p = self._parts(ctx), ctx.t, ctx.h, ctx.piece
        x, y = field.split(u)
        x = x + (0.5 * h) * field.drift_x(t, y, p)
        y = y + h * field.drift_y(t + 0.5 * h, x, p)
        x = x + (0.5 * h) * field.drift_x(t + h, y, p)
        return torch.cat([x, y], dim=1), state

    def inverse_step(self, ctx: StepContext, u_next: Tensor) -> Tensor:
        field, t, h, p = self._parts(ctx), ctx.t, ctx.h, ctx.piece
        x, y = field.split(u_next)
        x = x - (0.5 * h) * field.drift_x(t + h, y, p)
        y = y - h * field.drift_y(t + 0.5 * h, x, p)
        x = x - (0.5 * h) * field.drift_x(t, y, p)
        return torch.cat([x, y], dim=1)
