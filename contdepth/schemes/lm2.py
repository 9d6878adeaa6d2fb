"""LM-ResNet's linear two-step scheme (Lu, Zhong, Li, Dong 2018).

``x_{n+1} = (1 - k_n) x_n + k_n x_{n-1} + h f_n(x_n)  [+ sqrt(h) g_n(x_n) ξ_n]``

computed as ``lerp(x_n, x_{n-1}, k_n) + h f_n`` (one fused op for the two-step combination).

The first step (no history) is forward Euler. ``k`` belongs to time: one value per block of a
``Blocks`` field (per step grid interval for a field without blocks), piecewise constant, so a
trained LM-ResNet can be re-run with more steps. The modified equation is
``(1 + k) u' + (1 - k)(h/2) u'' = f(u)``: as h -> 0 the scheme converges, at order 1, to
``u' = f(u) / (1 + k(t))``. The characteristic polynomial ``(z - 1)(z + k)`` is zero-stable only
for ``|k| < 1``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .._checks import piece_of, sub_piece
from ..fields import Field
from ..noise import Noise, NoiseLaw
from .base import Scheme, StepContext, add_noise, noise_options
from .characteristic import Characteristic
from .registry import register

INIT_RANGE = (-0.1, 0.0)
OWN_OPTIONS = ("k", "learnable", "per_channel", "noise", "per", "seed")


class LMState(NamedTuple):
    """History of the two-step scheme.

    ``u_prev``: the previous state (``None`` before the first step). ``k``: this forward's reading
    of the parameter ``LM2.k``, one row per interval shaped to broadcast against the state (read
    with one ``unbind`` per forward rather than an index and its backward per step); the
    parameter itself stays the scheme's.
    """

    u_prev: Tensor | None
    k: tuple[Tensor, ...]


@register("lm2", "lm", "lm_resnet")
class LM2(Scheme):
    """LM-ResNet two-step scheme with learnable (or fixed) momentum ``k``.

    Args:
        k: initial (or fixed) value, one float or one per interval; ``None`` draws each
            uniformly from ``(-0.1, 0)`` as in the paper.
        learnable: train ``k`` (a parameter) or keep it fixed (a buffer).
        per_channel: number of channels C for one k per channel (dim 1 of the state).
        noise, per, seed, **law_options: optional noise, as in ``euler`` (LM + stochastic depth);
            usually given to the flow instead.
    """

    ode_order = 1  # to the rescaled u' = f / (1 + k), see continuous_field
    supports_noise = True
    strong_order = 0.5  # to the rescaled SDE, drift and diffusion over 1 + k
    weak_order = 1
    multistep = True
    has_momentum = True

    def __init__(
        self,
        k: float | Sequence[float] | None = None,
        learnable: bool = True,
        per_channel: int | None = None,
        noise: str | NoiseLaw | Noise | None = None,
        per: str = "sample",
        seed: int | None = None,
        **law_options: Any,
    ) -> None:
        super().__init__()
        self.noise = noise_options(f"scheme {self.name!r}", noise, per, seed, law_options, OWN_OPTIONS)
        if not isinstance(learnable, bool):
            raise TypeError(f"lm2: learnable must be True or False, got {learnable!r}")
        if per_channel is not None and (not isinstance(per_channel, int) or per_channel < 1):
            raise ValueError(f"lm2: per_channel must be a positive channel count, got {per_channel!r}")
        try:
            self._k_init = None if k is None else torch.as_tensor(k, dtype=torch.float32).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"lm2: k must be a number, a list of numbers or None, got {k!r}") from None
        if self._k_init is not None:
            self._check_values(self._k_init, "fixed" if not learnable else "initial")
        self.learnable = learnable
        self.per_channel = per_channel
        self.breaks: tuple[float, ...] = ()

    @staticmethod
    def _check_values(k: Tensor, what: str) -> None:
        if not torch.isfinite(k).all():
            raise ValueError(f"lm2: {what} k must be finite, got {k.tolist()}")
        if (k.abs() >= 1).any():
            raise ValueError(
                f"lm2: {what} k = {k.tolist()} has |k| >= 1; the two-step scheme is zero-stable only "
                "for |k| < 1 (its characteristic roots are 1 and -k)"
            )

    def setup(self, breaks: tuple[float, ...]) -> None:
        n = len(breaks) - 1
        if self.breaks:
            # k belongs to time: a flow re-using this scheme (finer steps) keeps its intervals.
            if (self.breaks[0], self.breaks[-1]) != (breaks[0], breaks[-1]):
                raise ValueError(
                    f"lm2: this scheme's k covers [{self.breaks[0]:g}, {self.breaks[-1]:g}], the flow "
                    f"[{breaks[0]:g}, {breaks[-1]:g}]; build one scheme per flow"
                )
            return
        shape = (n,) if self.per_channel is None else (n, self.per_channel)
        if self._k_init is None:
            value = torch.empty(shape).uniform_(*INIT_RANGE)
        elif self._k_init.numel() == 1:
            value = torch.full(shape, float(self._k_init))
        elif self._k_init.numel() == n:
            value = self._k_init.reshape(n, *([1] if self.per_channel else [])).expand(shape).clone()
        else:
            raise ValueError(f"lm2: {self._k_init.numel()} values of k given for {n} intervals")
        if self.learnable:
            self.k = nn.Parameter(value)
        else:
            self.register_buffer("k", value)
        self.breaks = tuple(breaks)

    def interval(self, t_mid: float) -> int:
        """Index of the k interval holding time ``t_mid``."""
        return piece_of(t_mid, self.breaks)

    def k_at(self, t_mid: float, like: Tensor) -> Tensor:
        """k at time ``t_mid``, shaped to broadcast against a state like ``like``."""
        k = self.k[self.interval(t_mid)]  # a 0-d tensor, or (C,) per channel
        if k.dtype != like.dtype:
            k = k.to(like.dtype)
        if self.per_channel is None:
            return k
        if like.dim() < 2 or like.shape[1] != self.per_channel:
            raise ValueError(f"lm2: per_channel={self.per_channel} but the state has shape {tuple(like.shape)}")
        return k.view(-1, *([1] * (like.dim() - 2)))

    def init_state(self, u0: Tensor, u_prev: Tensor | None = None) -> LMState:
        if u_prev is not None and u_prev.shape != u0.shape:
            raise ValueError(
                f"lm2: the history u_prev has shape {tuple(u_prev.shape)} but the state has shape "
                f"{tuple(u0.shape)}; give the state one step (one block) before t0, shaped like u0"
            )
        return LMState(u_prev, self._rows(u0))

    def _rows(self, like: Tensor) -> tuple[Tensor, ...]:
        """k's rows in ``like``'s dtype, each shaped to broadcast against ``like`` (empty before ``setup``)."""
        if not self.breaks:
            return ()
        k = self.k if self.k.dtype == like.dtype else self.k.to(like.dtype)
        if self.per_channel is not None:
            if like.dim() < 2 or like.shape[1] != self.per_channel:
                raise ValueError(f"lm2: per_channel={self.per_channel} but the state has shape {tuple(like.shape)}")
            k = k.view(k.shape[0], -1, *([1] * (like.dim() - 2)))
        return k.unbind(0)

    def step(self, ctx: StepContext, u: Tensor, state: LMState | None) -> tuple[Tensor, LMState]:
        if ctx.xi is None:
            f, g = ctx.field.drift(ctx.t, u), None
        else:
            f, g = ctx.field.drift_diffusion(ctx.t, u)
        if state is None:
            state = self.init_state(u)
        if state.u_prev is None:
            u_next = torch.add(u, f, alpha=ctx.h)
        else:
            t_mid = ctx.t + 0.5 * ctx.h
            k = state.k[self.interval(t_mid)] if state.k else self.k_at(t_mid, u)
            # (1 - k) u + k u_prev in one fused op, then + h f in another
            u_next = torch.add(torch.lerp(u, state.u_prev, k), f, alpha=ctx.h)
        return add_noise(u_next, ctx, g), LMState(u, state.k)

    @classmethod
    def characteristic(cls, k: float = 0.0) -> Characteristic:
        # x_{n+2} = (1 - k) x_{n+1} + k x_n + h f_{n+1}:  ρ(ζ) = (ζ - 1)(ζ + k), σ(ζ) = ζ
        try:
            k = float(k)
        except (TypeError, ValueError):
            raise ValueError(f"lm2: k must be a real number, got {k!r}") from None
        if not math.isfinite(k):
            raise ValueError(f"lm2: k must be finite, got {k}")
        note = f"roots of ζ² - (1 - k + z) ζ - k, k = {k:g}"
        return Characteristic.multistep([-k, -(1.0 - k), 1.0], [0.0, 1.0], note, k=k)

    def characteristic_options(self, t_mid: float | None = None) -> dict[str, Any]:
        """``k`` of the interval holding ``t_mid`` (0 before the scheme is attached to a flow)."""
        if t_mid is None:
            raise ValueError("lm2 has one k per block: pass stability_region(scheme, k=...) for the block's k")
        if self.per_channel:
            raise ValueError("lm2 with one k per channel has no scalar stability region")
        return {"k": 0.0 if not self.breaks else float(self.k.detach()[self.interval(t_mid)])}

    def max_abs_k(self) -> float:
        return float(self.k.detach().abs().max()) if self.breaks else 0.0

    def momentum(self) -> Tensor | None:
        """``k`` per interval, ``(intervals,)`` or ``(intervals, C)``, detached; ``None`` before a flow attaches it."""
        return self.k.detach() if self.breaks else None

    @classmethod
    def neutral_options(cls) -> dict[str, Any]:
        """``k = 0``: the two-step scheme's first steps on a trained ResNet are that ResNet's (Euler) steps."""
        return {"k": 0.0}

    def check_stability(self) -> bool:
        """Warn (and return False) when a learned k has left the zero-stable range |k| < 1."""
        if self.max_abs_k() >= 1.0:
            warnings.warn(
                f"lm2: learned max |k| = {self.max_abs_k():.3f} >= 1: the scheme is no longer zero-stable", stacklevel=2
            )
            return False
        return True

    def continuous_field(self, field: Field) -> Field:
        return LMLimit(field, self)

    def extra_repr(self) -> str:
        n = len(self.breaks) - 1 if self.breaks else 0
        return f"intervals={n}, learnable={self.learnable}, per_channel={self.per_channel}, noise={self.noise!r}"


class LMLimit(Field):
    """The ODE an LM scheme converges to: ``u' = f(t, u) / (1 + k(t))`` (diffusion scaled alike)."""

    def __init__(self, field: Field, scheme: LM2) -> None:
        super().__init__()
        if not scheme.breaks:
            raise ValueError("LMLimit: the lm2 scheme has not been attached to a flow yet")
        self.field = field
        self.scheme = scheme
        self.stochastic = field.stochastic

    def breakpoints(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.field.breakpoints()) | set(self.scheme.breaks)))

    @property
    def horizon(self) -> float | None:
        return self.field.horizon

    def _locate(self, t: float, piece: int | None) -> tuple[float, int | None]:
        bps = self.breakpoints()
        if piece is None or len(bps) < 2:
            return t, None
        return 0.5 * (bps[piece] + bps[piece + 1]), sub_piece(self.field, bps, piece)

    def drift_diffusion(self, t: float, u: Tensor, piece: int | None = None) -> tuple[Tensor, Tensor | None]:
        mid, inner_piece = self._locate(t, piece)
        f, g = self.field.drift_diffusion(t, u, inner_piece)
        scale = 1.0 + self.scheme.k_at(mid, u)
        return f / scale, (None if g is None else g / scale)

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        mid, inner_piece = self._locate(t, piece)
        return self.field.drift(t, u, inner_piece) / (1.0 + self.scheme.k_at(mid, u))

    def diffusion(self, t: float, u: Tensor, piece: int | None = None) -> Tensor | None:
        return self.drift_diffusion(t, u, piece)[1]
