"""PolyNet, ``x_{n+1} = x + F(x) + F(F(x)) + ...``: truncated Neumann series of backward Euler.

With step h the terms are ``T_0 = x``, ``T_{j+1} = h f(t, T_j)`` and ``x_{n+1} = sum_{j<=J} T_j``
(``terms = J``, default 2: PolyNet's ``I + F + F²``). For linear ``f`` this is the backward Euler
map ``(I - hA)^{-1} x`` truncated after J powers (order 1). For nonlinear f it is consistent only
when ``f(t, 0) = 0``; otherwise ``h f(t, h f)`` carries an O(h) error per step.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .base import Scheme, StepContext
from .characteristic import Characteristic
from .registry import register


@register("polynet")
class PolyNet(Scheme):
    ode_order = 1  # where f(t, 0) = 0
    supports_noise = False
    strong_order = None
    weak_order = None

    def __init__(self, terms: int = 2) -> None:
        super().__init__()
        self.terms = _check_terms(terms)

    @classmethod
    def characteristic(cls, terms: int = 2) -> Characteristic:
        terms = _check_terms(terms)
        return Characteristic.one_step([1.0] * (terms + 1), f"|1 + z + ... + z^{terms}| <= 1", terms=terms)

    def characteristic_options(self, t_mid: float | None = None) -> dict[str, Any]:
        return {"terms": self.terms}

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        term, total = u, u
        for _ in range(self.terms):
            term = ctx.h * ctx.field.drift(ctx.t, term)
            total = total + term
        return total, state

    def extra_repr(self) -> str:
        return f"terms={self.terms}"


def _check_terms(terms: object) -> int:
    if isinstance(terms, bool) or not isinstance(terms, int) or terms < 1:
        raise ValueError(f"polynet: terms must be an integer >= 1, got {terms!r}")
    return terms
