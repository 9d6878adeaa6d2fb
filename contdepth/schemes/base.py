"""What every scheme shares: the per-step context, the base class and the noise mixin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from .._checks import check_options
from ..fields import Field
from ..noise import Noise, NoiseLaw, add_scaled_noise, as_noise, law_class
from ..noise_names import LAW_ALIASES
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


#: what every registered scheme states as a class attribute; registering one that leaves any out is an error
DECLARED = ("ode_order", "strong_order", "weak_order", "supports_noise")


def _is_order(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


class Scheme(nn.Module):
    """One numerical method. ``step(ctx, u, state) -> (u_next, state)``; schemes know no layers.

    Every registered scheme declares (as class attributes, with no defaults to fall back on):

    * ``ode_order``: its global order on smooth ODEs (noise off);
    * ``supports_noise``: whether it accepts a noise increment (adds ``sqrt(h) g ξ`` with
      ``ξ = ctx.xi`` when the flow injects noise);
    * ``strong_order`` and ``weak_order``: its orders on SDEs with that noise, pathwise and in law
      (``None`` for a scheme that takes no noise).

    Other class attributes: ``name`` (set by ``register``), ``multistep`` (keeps history in
    ``state``, a typed tuple of the scheme), ``invertible`` (has ``inverse_step``),
    ``requires_coupled`` (steps a :class:`~contdepth.fields.Coupled` field only), ``noise_free``
    (the registered name of the scheme whose step this one takes when its noise is off, for a scheme
    defined by its noise), ``has_momentum`` (learns a momentum ``k`` per interval, read with
    :meth:`momentum`: LM-ResNet's family).

    :meth:`characteristic` gives the polynomial of one step on ``u' = λu``, from which
    :func:`contdepth.analysis.stability_region` draws the scheme's region of absolute stability.

    A scheme that supports noise takes ``noise``, ``per``, ``seed`` and law options (``p=``) in its
    constructor for convenience: they build the :class:`~contdepth.noise.Noise` kept as
    ``scheme.noise``, which a flow given no ``noise=`` of its own uses.
    """

    name: str = "scheme"
    ode_order: ClassVar[float]
    strong_order: ClassVar[float | None]
    weak_order: ClassVar[float | None]
    supports_noise: ClassVar[bool]
    multistep: ClassVar[bool] = False
    invertible: ClassVar[bool] = False
    requires_coupled: ClassVar[bool] = False
    noise_free: ClassVar[str | None] = None
    has_momentum: ClassVar[bool] = False

    @classmethod
    def check_declared(cls) -> None:
        """Raise ``TypeError`` when the class leaves out a declaration of :data:`DECLARED` or
        ``ValueError`` when they disagree; ``register`` calls it."""
        missing = [key for key in DECLARED if not hasattr(cls, key)]
        if missing:
            raise TypeError(
                f"scheme {cls.name!r} does not declare {', '.join(missing)}: every scheme states its order on ODEs "
                "(ode_order), whether it takes noise (supports_noise) and its strong and weak orders on SDEs "
                "(strong_order, weak_order; None when it takes no noise) as class attributes"
            )
        if not _is_order(cls.ode_order):
            raise ValueError(f"scheme {cls.name!r}: ode_order must be a positive number, got {cls.ode_order!r}")
        if not isinstance(cls.supports_noise, bool):
            raise ValueError(f"scheme {cls.name!r}: supports_noise must be True or False, got {cls.supports_noise!r}")
        for key in ("strong_order", "weak_order"):
            value = getattr(cls, key)
            if cls.supports_noise and not _is_order(value):
                raise ValueError(f"scheme {cls.name!r} takes noise: {key} must be a positive number, got {value!r}")
            if not cls.supports_noise and value is not None:
                raise ValueError(f"scheme {cls.name!r} takes no noise: {key} must be None, got {value!r}")

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

    @classmethod
    def neutral_options(cls) -> dict[str, Any]:
        """Options under which this scheme, put in place of another on a trained field, starts from the
        plain residual (Euler) update where it has such options (lm2: ``k = 0``); ``{}`` otherwise."""
        return {}

    def momentum(self) -> Tensor | None:
        """The learned momentum per interval, ``(intervals,)`` or ``(intervals, C)`` (detached), once the
        scheme is attached to a flow; ``None`` for a scheme without (``has_momentum`` is False) or before."""
        return None

    def check_stability(self) -> bool:
        """Warn and return False when learned parameters have left the scheme's zero-stable range;
        True for a scheme without such parameters."""
        return True

    def extra_repr(self) -> str:
        text = f"ode_order={self.ode_order:g}"
        if self.supports_noise:
            text += f", strong_order={self.strong_order:g}, weak_order={self.weak_order:g}"
        return text


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
    cls = law_class(noise)
    law_names = cls.options if cls is not None else ()
    unknown = [k for k in law_options if k not in law_names]
    if unknown:
        all_law_options = {o for law in LAW_ALIASES if (c := law_class(law)) is not None for o in c.options}
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
