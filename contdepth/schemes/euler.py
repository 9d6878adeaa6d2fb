"""Forward Euler, ``x_{n+1} = x_n + h f(t_n, x_n) [+ sqrt(h) g(t_n, x_n) ξ_n]``: order 1.

One step of size 1 per block is a ResNet. With noise it is Euler–Maruyama (weak order 1, strong
1/2): with h = 1 and the two-point law it is stochastic depth (``x + η F(x)``, η ~ Bernoulli(p),
for the field ``f = p F``, ``g = sqrt(p(1-p)) F``); with the uniform law and ``f = (F1+F2)/2``,
``g = (F1-F2)/sqrt 12`` it is shake-shake. ``f`` and ``g`` come from one call, so a branch shared
by both is evaluated once. Weak order 1 needs ``E ξ = 0``, ``E ξ² = 1`` and ``E ξ³ = O(sqrt h)``.
"""

from __future__ import annotations

from types import EllipsisType
from typing import Any

import torch
from torch import Tensor

from ..noise import Noise, NoiseLaw
from .base import Scheme, StepContext, add_noise, noise_options
from .characteristic import Characteristic, taylor
from .registry import register


@register("euler", "resnet")
class Euler(Scheme):
    """Forward Euler (ResNet); Euler–Maruyama when the flow injects noise.

    Args:
        noise: optional noise source: a law name (``gaussian``, ``rademacher``, ``bernoulli``,
            ``uniform``), a law object or a :class:`~contdepth.noise.Noise`; usually given to the flow.
        per: ξ drawn per ``sample`` (default), ``batch`` or ``element``.
        seed: seeds a private generator; ``None`` uses torch's global RNG.
        **law_options: options of the law (``p=`` for ``bernoulli``).
    """

    ode_order = 1
    supports_noise = True
    strong_order = 0.5
    weak_order = 1  # for ξ with E ξ³ = O(sqrt h); 1/2 for the two-point law at fixed p
    default_noise: str | None = None

    def __init__(
        self,
        noise: str | NoiseLaw | Noise | None | EllipsisType = ...,
        per: str = "sample",
        seed: int | None = None,
        **law_options: Any,
    ) -> None:
        super().__init__()
        if noise is ...:
            noise = self.default_noise
        self.noise = noise_options(f"scheme {self.name!r}", noise, per, seed, law_options, ("noise", "per", "seed"))

    @classmethod
    def characteristic(cls) -> Characteristic:
        return Characteristic.one_step(taylor(1), "|1 + z| <= 1")

    def step(self, ctx: StepContext, u: Tensor, state: None) -> tuple[Tensor, None]:
        if ctx.xi is None:
            # one fused add (x + h f): no extra elementwise pass for the product h f
            return torch.add(u, ctx.field.drift(ctx.t, u), alpha=ctx.h), state
        f, g = ctx.field.drift_diffusion(ctx.t, u)
        return add_noise(torch.add(u, f, alpha=ctx.h), ctx, g), state

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.noise is None else f"{text} (Euler–Maruyama with its noise)"
