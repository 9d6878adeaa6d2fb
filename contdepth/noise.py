"""Noise laws: standardised random variables ξ (mean 0, variance 1) for stochastic schemes.

Weak convergence needs only matching low moments, so the laws are interchangeable in the
limit: Gaussian (Euler–Maruyama), Rademacher (±1), two-point Bernoulli (stochastic depth: the
branch kept with probability ``p``, ``ξ = (η - p) / sqrt(p(1-p))``) and uniform (shake-shake:
``ξ = (η - 1/2) sqrt 12``). ξ is drawn per sample (default), per batch or per element.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

PER_CHOICES = ("sample", "batch", "element")


def noise_shape(u: Tensor, per: str) -> tuple[int, ...]:
    """Shape of ξ for state ``u``: ``(B, 1, ...)`` per sample, all ones per batch, ``u.shape`` per element."""
    if per == "sample":
        return (u.shape[0],) + (1,) * (u.dim() - 1)
    if per == "batch":
        return (1,) * u.dim()
    if per == "element":
        return tuple(u.shape)
    raise ValueError(f"unknown noise granularity per={per!r}; choose one of {PER_CHOICES}")


class NoiseLaw:
    """A standardised law. ``sample(shape, like, generator, piece)`` returns ξ with ``like``'s dtype and device."""

    name = "law"

    def sample(
        self, shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator] = None, piece: int = 0
    ) -> Tensor:
        raise NotImplementedError

    def third_moment(self, piece: int = 0) -> float:
        """E ξ³; zero for symmetric laws. Weak order 1 of Euler–Maruyama needs it to be O(sqrt(h))."""
        return 0.0

    def fourth_moment(self, piece: int = 0) -> float:
        """E ξ⁴, for reference (Gaussian: 3)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Gaussian(NoiseLaw):
    """ξ ~ N(0, 1): Euler–Maruyama's Brownian increments."""

    name = "gaussian"

    def sample(self, shape, like, generator=None, piece=0):
        return torch.randn(tuple(shape), generator=generator, device=like.device, dtype=like.dtype)

    def fourth_moment(self, piece=0):
        return 3.0


class Rademacher(NoiseLaw):
    """ξ = ±1 with probability 1/2 each: the simplest weak-order-1 increment."""

    name = "rademacher"

    def sample(self, shape, like, generator=None, piece=0):
        bits = torch.randint(0, 2, tuple(shape), generator=generator, device=like.device)
        return (2 * bits - 1).to(like.dtype)

    def fourth_moment(self, piece=0):
        return 1.0


class Uniform(NoiseLaw):
    """ξ = (η - 1/2) sqrt 12 with η ~ U(0, 1): the shake-shake mixing weight, standardised."""

    name = "uniform"

    def sample(self, shape, like, generator=None, piece=0):
        eta = torch.rand(tuple(shape), generator=generator, device=like.device, dtype=like.dtype)
        return (eta - 0.5) * math.sqrt(12.0)

    def fourth_moment(self, piece=0):
        return 9.0 / 5.0


class Bernoulli(NoiseLaw):
    """Two-point law of stochastic depth: η ~ Bernoulli(p), ξ = (η - p) / sqrt(p (1 - p)).

    ``p`` is the survival probability, one float or one per piece (block) of the field, in (0, 1].
    At ``p = 1`` ξ is identically zero (the block is never dropped).
    """

    name = "bernoulli"

    def __init__(self, p: float | Sequence[float] = 0.5) -> None:
        probs = [float(v) for v in (p if isinstance(p, (list, tuple)) else [p])]
        for v in probs:
            if not 0.0 < v <= 1.0:
                raise ValueError(f"bernoulli survival probability must lie in (0, 1], got {v}")
        self.p = probs

    def prob(self, piece: int = 0) -> float:
        if len(self.p) == 1:
            return self.p[0]
        if not 0 <= piece < len(self.p):
            raise IndexError(f"bernoulli law has {len(self.p)} probabilities, asked for piece {piece}")
        return self.p[piece]

    def sample(self, shape, like, generator=None, piece=0):
        p = self.prob(piece)
        if p >= 1.0:
            return torch.zeros(tuple(shape), device=like.device, dtype=like.dtype)
        eta = (torch.rand(tuple(shape), generator=generator, device=like.device) < p).to(like.dtype)
        return (eta - p) / math.sqrt(p * (1.0 - p))

    def third_moment(self, piece=0):
        p = self.prob(piece)
        return 0.0 if p >= 1.0 else (1.0 - 2.0 * p) / math.sqrt(p * (1.0 - p))

    def fourth_moment(self, piece=0):
        p = self.prob(piece)
        return 0.0 if p >= 1.0 else (1.0 - 3.0 * p * (1.0 - p)) / (p * (1.0 - p))

    def __repr__(self) -> str:
        return f"Bernoulli(p={self.p if len(self.p) > 1 else self.p[0]})"


_LAWS = {
    "gaussian": Gaussian,
    "normal": Gaussian,
    "rademacher": Rademacher,
    "uniform": Uniform,
    "shake": Uniform,
    "bernoulli": Bernoulli,
    "two_point": Bernoulli,
    "stochastic_depth": Bernoulli,
}


def available_laws() -> list[str]:
    """Names accepted by :func:`get_law`."""
    return sorted(_LAWS)


def get_law(law: str | NoiseLaw, **kwargs) -> NoiseLaw:
    """A noise law by name (``gaussian``, ``rademacher``, ``bernoulli`` (``p=``), ``uniform``) or as given."""
    if isinstance(law, NoiseLaw):
        if kwargs:
            raise ValueError("options were given for a noise law that is already built")
        return law
    if not isinstance(law, str) or law.lower() not in _LAWS:
        raise ValueError(f"unknown noise law {law!r}; available: {', '.join(available_laws())}")
    return _LAWS[law.lower()](**kwargs)
