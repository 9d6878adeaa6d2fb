"""PolyNet, ``x_{n+1} = x + F(x) + F(F(x)) + ...``: truncated Neumann series of backward Euler.

With step h the terms are ``T_0 = x``, ``T_{j+1} = h f(t, T_j)`` and ``x_{n+1} = sum_{j<=J} T_j``
(``terms = J``, default 2: PolyNet's ``I + F + F²``). For linear ``f`` this is the backward Euler
map ``(I - hA)^{-1} x`` truncated after J powers (order 1). For nonlinear f it is consistent only
when ``f(t, 0) = 0``; otherwise ``h f(t, h f)`` carries an O(h) error per step.
"""

from __future__ import annotations

from torch import Tensor

from .base import Scheme, StepContext
from .registry import register


@register("polynet")
class PolyNet(Scheme):
    order = 1

    def __init__(self, terms: int = 2) -> None:
        super().__init__()
        if not isinstance(terms, int) or terms < 1:
            raise ValueError(f"polynet: terms must be an integer >= 1, got {terms!r}")
        self.terms = terms

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        term, total = u, u
        for _ in range(self.terms):
            term = ctx.h * ctx.field.drift(ctx.t, term)
            total = total + term
        return total, state

    def extra_repr(self) -> str:
        return f"terms={self.terms}"
