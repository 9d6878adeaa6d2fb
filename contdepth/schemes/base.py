"""What every scheme shares: the per-step context, the base class and the noise mixin."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..fields import Field
from ..noise import NoiseLaw, PER_CHOICES, get_law, noise_shape

State = Optional[dict]


def check_like(out: Tensor, u: Tensor, what: str) -> Tensor:
    """Raise a clear error when a field's output is not shaped like its input."""
    if out.shape != u.shape:
        raise ValueError(
            f"the field's {what} has shape {tuple(out.shape)} but the state has shape {tuple(u.shape)}; "
            "a residual branch must return a tensor shaped like its input"
        )
    return out


class StepField:
    """A field restricted to the piece (block) of one step, with output-shape checks."""

    __slots__ = ("field", "piece")

    def __init__(self, field: Field, piece: int) -> None:
        self.field = field
        self.piece = piece

    def drift(self, t: float, u: Tensor) -> Tensor:
        return check_like(self.field.drift(t, u, self.piece), u, "drift")

    def drift_diffusion(self, t: float, u: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        f, g = self.field.drift_diffusion(t, u, self.piece)
        check_like(f, u, "drift")
        return f, g


@dataclass(frozen=True)
class StepContext:
    """One step ``[t, t + h]`` of a flow: the restricted field, step index, piece, noise."""

    field: StepField
    t: float
    h: float
    index: int
    piece: int
    new_piece: bool
    xi: Optional[Tensor] = None  # standardised noise for this step; None when noise is off


class Scheme(nn.Module):
    """One numerical method. ``step(ctx, u, state) -> (u_next, state)``; schemes know no layers.

    Class attributes: ``name``, ``order`` (global order on smooth ODEs), ``multistep`` (keeps
    history in ``state``), ``supports_noise`` (adds ``sqrt(h) g ξ`` when the flow injects noise),
    ``invertible`` (has ``inverse_step``).
    """

    name: str = "scheme"
    order: int = 1
    multistep: bool = False
    supports_noise: bool = False
    invertible: bool = False

    def setup(self, breaks: tuple[float, ...]) -> None:
        """Called by a flow with the times bounding its time-dependent parameters' intervals."""

    def init_state(self, u0: Tensor, u_prev: Optional[Tensor] = None) -> State:
        """State before the first step; ``u_prev`` seeds a multistep history (ignored otherwise)."""
        return None

    def step(self, ctx: StepContext, u: Tensor, state: State) -> tuple[Tensor, State]:
        raise NotImplementedError

    def inverse_step(self, ctx: StepContext, u_next: Tensor) -> Tensor:
        raise NotImplementedError(f"scheme {self.name!r} is not invertible")

    def continuous_field(self, field: Field) -> Field:
        """The field whose ODE this scheme converges to as h -> 0 (``field`` itself, but for LM)."""
        return field

    def sample_noise(self, u: Tensor, piece: int) -> Optional[Tensor]:
        return None

    def extra_repr(self) -> str:
        return f"order={self.order}"


class NoiseMixin:
    """Noise law, granularity and seeded generator for schemes that support ``sqrt(h) g ξ``."""

    def _init_noise(self, noise: str | NoiseLaw | None, per: str, seed: Optional[int], law_kwargs: dict) -> None:
        if per not in PER_CHOICES:
            raise ValueError(f"unknown noise granularity per={per!r}; choose one of {PER_CHOICES}")
        self.law: Optional[NoiseLaw] = None if noise is None else get_law(noise, **law_kwargs)
        self.per = per
        self.seed = seed
        self._generators: dict[Any, torch.Generator] = {}

    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        if self.seed is None:
            return None  # the global RNG: torch.manual_seed and checkpointed RNG states govern it
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            self._generators[device] = gen
        return gen

    def sample_noise(self, u: Tensor, piece: int) -> Optional[Tensor]:
        if self.law is None:
            return None
        return self.law.sample(noise_shape(u, self.per), u, self._generator(u.device), piece)

    @staticmethod
    def noise_term(ctx: StepContext, g: Optional[Tensor]) -> Optional[Tensor]:
        """``sqrt(h) g ξ``, or None when noise is off or the field has no diffusion."""
        if ctx.xi is None or g is None:
            return None
        return math.sqrt(ctx.h) * g * ctx.xi
