"""What every scheme shares: the per-step context, the base class and the noise mixin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from .._checks import check_options
from ..fields import Field
from ..noise import _LAWS, Noise, NoiseLaw, add_scaled_noise, as_noise
from .characteristic import Characteristic


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

    def drift_diffusion(self, t: float, u: Tensor) -> tuple[Tensor, Tensor | None]:
        f, g = self.field.drift_diffusion(t, u, self.piece)
        check_like(f, u, "drift")
        return f, g


class StepContext:
    """One step ``[t, t + h]`` of a flow: the restricted field, step index, piece, noise increment.

    A flow builds the noise-free contexts of all its steps once, when it is built; a noisy step
    gets a copy carrying its standardised increment ``xi`` (:meth:`with_noise`) and, for a noise
    source with ``backward="independent"``, the increment ``xi_back`` its gradient is taken with.
    """

    __slots__ = ("field", "t", "h", "index", "piece", "new_piece", "xi", "xi_back")

    def __init__(
        self,
        field: StepField,
        t: float,
        h: float,
        index: int,
        piece: int,
        new_piece: bool,
        xi: Tensor | None = None,
        xi_back: Tensor | None = None,
    ) -> None:
        self.field, self.t, self.h, self.index, self.piece, self.new_piece = field, t, h, index, piece, new_piece
        self.xi = xi  # standardised noise for this step; None when noise is off
        self.xi_back = xi_back  # the backward pass's ξ when it is drawn apart; None: the backward sees xi

    def with_noise(self, xi: Tensor, xi_back: Tensor | None = None) -> StepContext:
        """This step with the increment ``xi`` (shape ``noise_shape(u, per)``) and optional ``xi_back``."""
        return StepContext(self.field, self.t, self.h, self.index, self.piece, self.new_piece, xi, xi_back)

    def __repr__(self) -> str:
        return (
            f"StepContext(t={self.t:g}, h={self.h:g}, index={self.index}, piece={self.piece}, "
            f"new_piece={self.new_piece}, noisy={self.xi is not None})"
        )


class Scheme(nn.Module):
    """One numerical method. ``step(ctx, u, state) -> (u_next, state)``; schemes know no layers.

    Class attributes: ``name``, ``order`` (global order on smooth ODEs), ``multistep`` (keeps
    history in ``state``, a typed tuple of the scheme), ``supports_noise`` (accepts a noise
    increment: adds ``sqrt(h) g ξ`` with ``ξ = ctx.xi`` when the flow injects noise),
    ``invertible`` (has ``inverse_step``), ``requires_coupled`` (steps a
    :class:`~contdepth.fields.Coupled` field only), ``noise_free`` (the registered name of the
    scheme whose step this one takes when its noise is off, for a scheme defined by its noise).

    :meth:`characteristic` gives the polynomial of one step on ``u' = λu``, from which
    :func:`contdepth.analysis.stability_region` draws the scheme's region of absolute stability.

    A scheme that supports noise takes ``noise``, ``per``, ``seed`` and law options (``p=``) in its
    constructor for convenience: they build the :class:`~contdepth.noise.Noise` kept as
    ``scheme.noise``, which a flow given no ``noise=`` of its own uses.
    """

    name: str = "scheme"
    order: int = 1
    multistep: bool = False
    supports_noise: bool = False
    invertible: bool = False
    requires_coupled: bool = False
    noise_free: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.noise: Noise | None = None

    def setup(self, breaks: tuple[float, ...]) -> None:
        """Called by a flow with the times bounding its time-dependent parameters' intervals."""

    def init_state(self, u0: Tensor, u_prev: Tensor | None = None) -> Any:
        """State before the first step; ``u_prev`` seeds a multistep history (ignored otherwise)."""
        return None

    def step(self, ctx: StepContext, u: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def inverse_step(self, ctx: StepContext, u_next: Tensor) -> Tensor:
        raise NotImplementedError(f"scheme {self.name!r} is not invertible")

    @classmethod
    def characteristic(cls) -> Characteristic | None:
        """The characteristic polynomial of one step on ``u' = λu``, ``z = hλ`` (options such as
        lm2's ``k`` are keywords); ``None`` for a scheme without a region of absolute stability."""
        return None

    def characteristic_options(self, t_mid: float | None = None) -> dict[str, Any]:
        """The options of :meth:`characteristic` this built scheme has; ``t_mid``: of its step at that
        time (for parameters that change with time). ``ValueError`` when it has no such value."""
        return {}

    def continuous_field(self, field: Field) -> Field:
        """The field whose ODE this scheme converges to as h -> 0 (``field`` itself, but for LM)."""
        return field

    def extra_repr(self) -> str:
        return f"order={self.order}"


def noise_options(
    owner: str,
    noise: None | str | NoiseLaw | Noise,
    per: str,
    seed: int | None,
    law_options: dict[str, Any],
    own: Sequence[str],
) -> Noise | None:
    """The :class:`Noise` of a scheme built with ``noise=...`` (``None`` without); options that neither
    the scheme (``own``) nor the law take are refused, naming the valid ones."""
    law_names = _LAWS[noise.lower()].options if isinstance(noise, str) and noise.lower() in _LAWS else ()
    unknown = [k for k in law_options if k not in law_names]
    if unknown:
        all_law_options = {o for law in _LAWS.values() for o in law.options}
        if noise is None and set(unknown) <= all_law_options:
            raise TypeError(f"{owner}: {unknown[0]!r} is an option of a noise law; give noise= (e.g. 'bernoulli') too")
        check_options(owner, unknown, [*own, *law_names])
    return as_noise(noise, per=per, seed=seed, **law_options)


def add_noise(out: Tensor, ctx: StepContext, g: Tensor | None) -> Tensor:
    """``out + sqrt(h) g ξ`` as one fused op; ``out`` when noise is off or the field has no diffusion.
    With ``ctx.xi_back`` the value is the same and the gradient that of ``out + sqrt(h) g ξ_b``."""
    if ctx.xi is None or g is None:
        return out
    return add_scaled_noise(out, g, ctx.xi, ctx.xi_back, math.sqrt(ctx.h))
