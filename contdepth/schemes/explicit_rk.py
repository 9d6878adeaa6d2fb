"""Explicit Runge–Kutta schemes given by a Butcher tableau: the step and the stability region both
come from its coefficients.

A new method is a subclass with its tableau and its declared order, registered by name::

    @register("kutta3", "rk3")
    class Kutta3(ExplicitRungeKutta):
        ode_order = 3
        tableau = ButcherTableau([[], ["1/2"], [-1, 2]], ["1/6", "2/3", "1/6"])

Registration checks the tableau against the order conditions up to the declared order (up to 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from .base import Scheme, StepContext
from .characteristic import Characteristic
from .tableau import ButcherTableau


def _combine(u: Tensor, h: float, weights: Sequence[float], ks: Sequence[Tensor]) -> Tensor:
    """``u + h Σ w_j k_j``, one fused add per non-zero weight."""
    out = u
    for w, k in zip(weights, ks, strict=False):
        if w != 0.0:
            out = torch.add(out, k, alpha=h * w)
    return out


class ExplicitRungeKutta(Scheme):
    """An explicit Runge–Kutta scheme: a subclass sets ``tableau`` and ``ode_order``.

    One step evaluates the drift once per stage, at ``t + c_i h``; its stability polynomial (the
    characteristic) is the tableau's. Deterministic: it takes no noise (in a net with noise it
    integrates the drift, the eval-mode network).
    """

    tableau: ClassVar[ButcherTableau]
    supports_noise = False
    strong_order = None
    weak_order = None

    @classmethod
    def check_declared(cls) -> None:
        super().check_declared()
        tableau = getattr(cls, "tableau", None)
        if not isinstance(tableau, ButcherTableau):
            raise TypeError(f"scheme {cls.name!r}: an ExplicitRungeKutta sets tableau = ButcherTableau(a, b)")
        failed = tableau.order_conditions(min(int(cls.ode_order), 4)) if cls.ode_order >= 1 else []
        if failed:
            raise ValueError(
                f"scheme {cls.name!r} declares ode_order = {cls.ode_order:g} but its tableau fails " + "; ".join(failed)
            )

    @classmethod
    def characteristic(cls) -> Characteristic:
        r = cls.tableau.stability_polynomial()
        return Characteristic.one_step([float(x) for x in r], f"|{cls.tableau.polynomial_text()}| <= 1")

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        f, t, h = ctx.field.drift, ctx.t, ctx.h
        ks: list[Tensor] = []
        for c, row in self.tableau.float_stages:
            ks.append(f(t + c * h, _combine(u, h, row, ks)))
        return _combine(u, h, self.tableau.float_weights, ks), state

    def extra_repr(self) -> str:
        return f"ode_order={self.ode_order:g}, stages={self.tableau.stages}"
