"""Euler–Maruyama, ``x_{n+1} = x_n + h f(t_n, x_n) + sqrt(h) g(t_n, x_n) ξ_n``: weak order 1, strong 1/2.

With h = 1 and the two-point law it is stochastic depth (``x + η F(x)``, η ~ Bernoulli(p), for the
field ``f = p F``, ``g = sqrt(p(1-p)) F``); with the uniform law and ``f = (F1+F2)/2``,
``g = (F1-F2)/sqrt 12`` it is shake-shake. ``f`` and ``g`` come from one call, so a branch shared
by both is evaluated once. Weak order 1 needs ``E ξ = 0``, ``E ξ² = 1`` and ``E ξ³ = O(sqrt h)``.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..noise import NoiseLaw
from .base import NoiseMixin, Scheme, StepContext
from .registry import register


@register("euler_maruyama", "em", "sde_euler")
class EulerMaruyama(NoiseMixin, Scheme):
    """Euler–Maruyama with a chosen noise law.

    Args:
        noise: law name or object: ``gaussian`` (default), ``rademacher``, ``bernoulli``, ``uniform``.
        per: ξ drawn per ``sample`` (default), ``batch`` or ``element``.
        seed: seeds a private generator; ``None`` uses torch's global RNG.
        **law_kwargs: options of the law (``p=`` for ``bernoulli``).
    """

    order = 1
    supports_noise = True

    def __init__(self, noise: str | NoiseLaw = "gaussian", per: str = "sample", seed: Optional[int] = None, **law_kwargs) -> None:
        super().__init__()
        self._init_noise(noise, per, seed, law_kwargs)

    def step(self, ctx: StepContext, u, state):
        if ctx.xi is None:
            return torch.add(u, ctx.field.drift(ctx.t, u), alpha=ctx.h), state
        f, g = ctx.field.drift_diffusion(ctx.t, u)
        out = torch.add(u, f, alpha=ctx.h)
        noise = self.noise_term(ctx, g)
        return (out if noise is None else out + noise), state

    def extra_repr(self) -> str:
        return f"noise={self.law!r}, per={self.per!r}, seed={self.seed}"
