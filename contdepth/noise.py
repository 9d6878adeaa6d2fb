"""Noise laws: standardised random variables ξ (mean 0, variance 1) for stochastic schemes.

Weak convergence needs only matching low moments, so the laws are interchangeable in the
limit: Gaussian (Euler–Maruyama), Rademacher (±1), two-point Bernoulli (stochastic depth: the
branch kept with probability ``p``, ``ξ = (η - p) / sqrt(p(1-p))``) and uniform (shake-shake:
``ξ = (η - 1/2) sqrt 12``). ξ is drawn per sample (default), per batch or per element.

The backward pass normally sees the ξ of the forward pass (the pathwise gradient of the step). A
source built with ``backward="independent"`` also draws ξ_b of the same law and gives the noise term
the forward value of ``g ξ`` and the gradient of ``g ξ_b``: shake-shake's independent backward weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_options
from .noise_names import LAW_ALIASES, law_name, law_names

PER_CHOICES = ("sample", "batch", "element")
BACKWARD_CHOICES = ("same", "independent")


def noise_shape(u: Tensor, per: str) -> tuple[int, ...]:
    """Shape of ξ for state ``u``: ``(B, 1, ...)`` per sample, all ones per batch, ``u.shape`` per element."""
    if per == "sample":
        return (u.shape[0],) + (1,) * (u.dim() - 1)
    if per == "batch":
        return (1,) * u.dim()
    if per == "element":
        return tuple(u.shape)
    raise ValueError(f"unknown noise granularity per={per!r}; choose one of {PER_CHOICES}")


def _work_dtype(like: Tensor) -> torch.dtype:
    """The dtype draws are made in: float32 for a bf16 or fp16 state (under autocast: float32 draws rounded
    once, not a reduced-precision generator's), the state's own dtype otherwise."""
    return torch.float32 if like.dtype in (torch.bfloat16, torch.float16) else like.dtype


class NoiseLaw:
    """A standardised law. ``sample(shape, like, generator, piece)`` returns ξ with ``like``'s dtype and device.

    ``sample_steps`` draws the ξ of many steps at once; the built-in laws do it in one random call
    (one kernel per forward instead of one per step). A law whose parameters change from piece to
    piece (block to block) gives them as a per-step ``table`` (see :meth:`step_table`).
    """

    name = "law"
    options: tuple[str, ...] = ()  # keyword options of the constructor

    def sample(
        self, shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None, piece: int = 0
    ) -> Tensor:
        raise NotImplementedError

    def pieces(self) -> int | None:
        """How many pieces (blocks) the law has parameters for; ``None`` when it is the same for all."""
        return None

    def step_table(self, pieces: Sequence[int]) -> Tensor | None:
        """Per-step parameters ``(steps, k)`` (float64) for :meth:`sample_steps`, or ``None`` if none are needed."""
        return None

    def sample_steps(
        self,
        shape: Sequence[int],
        like: Tensor,
        generator: torch.Generator | None,
        pieces: Sequence[int],
        table: Tensor | None = None,
    ) -> Tensor:
        """ξ of ``len(pieces)`` steps, shape ``(steps, *shape)``; this default draws step by step."""
        return torch.stack([self.sample(shape, like, generator, piece) for piece in pieces])

    def third_moment(self, piece: int = 0) -> float:
        """E ξ³; zero for symmetric laws. Weak order 1 of Euler–Maruyama needs it to be O(sqrt(h))."""
        return 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SameEveryPiece(NoiseLaw):
    """A law without per-piece parameters: the ξ of all steps are one draw of shape ``(steps, *shape)``."""

    def sample_steps(
        self,
        shape: Sequence[int],
        like: Tensor,
        generator: torch.Generator | None,
        pieces: Sequence[int],
        table: Tensor | None = None,
    ) -> Tensor:
        return self.sample((len(pieces), *shape), like, generator)


class Gaussian(SameEveryPiece):
    """ξ ~ N(0, 1): Euler–Maruyama's Brownian increments."""

    name = "gaussian"

    def sample(
        self, shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None, piece: int = 0
    ) -> Tensor:
        draw = torch.randn(tuple(shape), generator=generator, device=like.device, dtype=_work_dtype(like))
        return draw.to(like.dtype)


class Rademacher(SameEveryPiece):
    """ξ = ±1 with probability 1/2 each: the simplest weak-order-1 increment."""

    name = "rademacher"

    def sample(
        self, shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None, piece: int = 0
    ) -> Tensor:
        bits = torch.randint(0, 2, tuple(shape), generator=generator, device=like.device)
        return (2 * bits - 1).to(like.dtype)


class Uniform(SameEveryPiece):
    """ξ = (η - 1/2) sqrt 12 with η ~ U(0, 1): the shake-shake mixing weight, standardised."""

    name = "uniform"

    def sample(
        self, shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None, piece: int = 0
    ) -> Tensor:
        eta = torch.rand(tuple(shape), generator=generator, device=like.device, dtype=_work_dtype(like))
        return ((eta - 0.5) * math.sqrt(12.0)).to(like.dtype)


class Bernoulli(NoiseLaw):
    """Two-point law of stochastic depth: η ~ Bernoulli(p), ξ = (η - p) / sqrt(p (1 - p)).

    ``p`` is the survival probability, one float or one per piece (block) of the field, in (0, 1].
    At ``p = 1`` ξ is identically zero (the block is never dropped).
    """

    name = "bernoulli"
    options = ("p",)

    def __init__(self, p: float | Sequence[float] | Tensor = 0.5) -> None:
        try:
            probs = [float(v) for v in torch.as_tensor(p, dtype=torch.float64).flatten()]
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"bernoulli: p must be a number or a list of numbers in (0, 1], got {p!r}") from None
        if not probs:
            raise ValueError("bernoulli: p is empty; give one survival probability or one per block")
        for v in probs:
            if not 0.0 < v <= 1.0:
                raise ValueError(f"bernoulli survival probability must lie in (0, 1], got {v}")
        self.p = probs

    def pieces(self) -> int | None:
        return len(self.p) if len(self.p) > 1 else None

    def prob(self, piece: int = 0) -> float:
        if len(self.p) == 1:
            return self.p[0]
        if not 0 <= piece < len(self.p):
            raise IndexError(f"bernoulli law has {len(self.p)} probabilities, asked for piece {piece}")
        return self.p[piece]

    def step_table(self, pieces: Sequence[int]) -> Tensor:
        """Rows ``(p, ξ if kept, ξ if dropped)`` by step, shape ``(3, steps)``: ξ = ``where(η, a, b)``."""
        rows = []
        for piece in pieces:
            p = self.prob(piece)
            kept, dropped = (0.0, 0.0) if p >= 1.0 else (math.sqrt((1.0 - p) / p), -math.sqrt(p / (1.0 - p)))
            rows.append((p, kept, dropped))
        return torch.tensor(rows, dtype=torch.float64).T.contiguous()

    def sample(
        self, shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None, piece: int = 0
    ) -> Tensor:
        table = self.step_table([piece])
        return self.sample_steps(shape, like, generator, [piece], table)[0]

    def sample_steps(
        self,
        shape: Sequence[int],
        like: Tensor,
        generator: torch.Generator | None,
        pieces: Sequence[int],
        table: Tensor | None = None,
    ) -> Tensor:
        # (η - p) / sqrt(p (1 - p)) takes two values: one comparison and one select for all steps
        if table is None:
            table = self.step_table(pieces)
        work = torch.float64 if like.dtype == torch.float64 else torch.float32  # p is not rounded to 8 bits
        steps = len(pieces)
        p, kept, dropped = table.to(device=like.device, dtype=work).view(3, steps, *([1] * len(shape))).unbind(0)
        eta = torch.rand((steps, *shape), generator=generator, device=like.device, dtype=work)
        xi = torch.where(eta < p, kept, dropped)
        return xi if xi.dtype == like.dtype else xi.to(like.dtype)

    def third_moment(self, piece: int = 0) -> float:
        p = self.prob(piece)
        return 0.0 if p >= 1.0 else (1.0 - 2.0 * p) / math.sqrt(p * (1.0 - p))

    def __repr__(self) -> str:
        return f"Bernoulli(p={self.p if len(self.p) > 1 else self.p[0]})"


#: the class of each canonical law name of :data:`contdepth.noise_names.LAW_ALIASES`
_CLASSES: dict[str, type[NoiseLaw]] = {
    "gaussian": Gaussian,
    "rademacher": Rademacher,
    "uniform": Uniform,
    "bernoulli": Bernoulli,
}
assert set(_CLASSES) == set(LAW_ALIASES), "every law of the vocabulary has a class, and only those"


def available_laws() -> list[str]:
    """Names accepted by :func:`get_law`: every spelling of :mod:`contdepth.noise_names`, sorted."""
    return law_names()


def law_class(name: object) -> type[NoiseLaw] | None:
    """The law class that ``name`` (a law's name or alias, any case) names, or ``None``."""
    canonical = law_name(name)
    return None if canonical is None else _CLASSES[canonical]


def get_law(law: str | NoiseLaw, **kwargs: Any) -> NoiseLaw:
    """A noise law by name (``gaussian``, ``rademacher``, ``bernoulli`` (``p=``), ``uniform``) or as given."""
    if isinstance(law, NoiseLaw):
        if kwargs:
            raise ValueError("options were given for a noise law that is already built")
        return law
    cls = law_class(law)
    if cls is None:
        raise ValueError(f"unknown noise law {law!r}; available: {', '.join(available_laws())}")
    check_options(f"noise law {str(law).strip().lower()!r}", kwargs, cls.options)
    return cls(**kwargs)


def _check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"noise seed must be an integer or None, got {seed!r}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"noise seed must lie in [0, 2**64), got {seed}")
    return seed


class _IndependentBackward(torch.autograd.Function):
    """``out + scale g ξ`` forward; backward as if ξ were ``ξ_b`` (``ξ``, ``ξ_b`` are constants)."""

    @staticmethod
    def forward(ctx: Any, out: Tensor, g: Tensor, xi: Tensor, xi_back: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(xi_back)
        ctx.scale, ctx.shapes, ctx.g_dtype = scale, (out.shape, g.shape), g.dtype
        return torch.addcmul(out, g, xi, value=scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (xi_back,) = ctx.saved_tensors
        out_shape, g_shape = ctx.shapes
        grad_out = grad.sum_to_size(out_shape) if grad.shape != out_shape else grad
        grad_g = (grad * (xi_back * ctx.scale)).sum_to_size(g_shape).to(ctx.g_dtype)
        return grad_out, grad_g, None, None, None


def add_scaled_noise(out: Tensor, g: Tensor, xi: Tensor, xi_back: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """``out + scale g ξ`` as one fused op; with ``xi_back`` the same value, but ``g`` receives the
    gradient of ``scale g ξ_b`` (shapes broadcast as ``addcmul``'s)."""
    if xi_back is None or not (torch.is_grad_enabled() and (out.requires_grad or g.requires_grad)):
        return torch.addcmul(out, g, xi, value=scale)
    result: Tensor = _IndependentBackward.apply(out, g, xi, xi_back, scale)  # type: ignore[no-untyped-call]
    return result


class Noise(nn.Module):
    """The noise source of a flow: law, granularity, seed and per-block law parameters, in one object.

    A :class:`~contdepth.Flow` draws the standardised increments ξ of all its steps from it in
    one call per forward (shape ``(steps, *noise_shape(u, per))``) and hands step ``n`` its ξ
    through the step context; a model's stage transition draws its own from the same kind of object.

    Args:
        law: a law name (``gaussian``, ``rademacher``, ``bernoulli``, ``uniform``) or a :class:`NoiseLaw`.
        per: ξ drawn per ``sample`` (default), per ``batch`` or per ``element``.
        seed: seeds a private generator per device; ``None`` (default) uses torch's global RNG,
            which ``torch.manual_seed`` and checkpointed RNG states govern. A private generator
            cannot be traced by ``torch.compile`` (a graph break): compiled training uses ``None``.
        backward: ``same`` (default): the backward pass sees the forward ξ, the gradient of the
            Euler–Maruyama step itself. ``independent``: each step also draws ξ_b of the same law
            (same granularity, same generator, after ξ), and the gradient is that of the step with
            ξ_b; forward values and their law are unchanged. With the uniform law this is Gastaldi's
            (2017) Shake-Shake-Image, per sample; ξ_b is drawn only where gradients are recorded.
        **law_options: options of the law (``p=`` for ``bernoulli``: one survival probability,
            or one per block of the flow's field).
    """

    def __init__(
        self,
        law: str | NoiseLaw = "gaussian",
        per: str = "sample",
        seed: int | None = None,
        *,
        backward: str = "same",
        **law_options: Any,
    ) -> None:
        super().__init__()
        if per not in PER_CHOICES:
            raise ValueError(f"unknown noise granularity per={per!r}; choose one of {PER_CHOICES}")
        if backward not in BACKWARD_CHOICES:
            raise ValueError(f"unknown noise backward={backward!r}; choose one of {BACKWARD_CHOICES}")
        self.law = get_law(law, **law_options)
        self.per = per
        self.backward = backward
        self.seed = _check_seed(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed)
            self._generators[device] = gen
        return gen

    def check_pieces(self, n_pieces: int, what: str = "the flow's field") -> None:
        """Refuse per-block law parameters whose count is not the number of pieces (blocks) of ``what``."""
        count = self.law.pieces()
        if count is not None and count != n_pieces:
            raise ValueError(
                f"the {self.law.name} noise law has {count} per-block values but {what} has {n_pieces} "
                f"block(s); give one value or one per block"
            )

    def step_table(self, pieces: Sequence[int]) -> Tensor | None:
        """Per-step law parameters for :meth:`draw` (float64, CPU); keep it as a buffer of the consumer."""
        return self.law.step_table(pieces)

    def draw(self, u: Tensor, pieces: Sequence[int], table: Tensor | None = None) -> Tensor:
        """ξ of every step for a state like ``u``, shape ``(len(pieces), *noise_shape(u, per))``, in one call."""
        return self.law.sample_steps(noise_shape(u, self.per), u, self._generator(u.device), pieces, table)

    def draw_pair(self, u: Tensor, pieces: Sequence[int], table: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``(ξ, ξ_b)``, each shaped as :meth:`draw`'s; ``ξ_b`` is ``None`` unless ``backward="independent"``
        and gradients are recorded. ξ is the draw :meth:`draw` would make: the forward pass is the same."""
        xi = self.draw(u, pieces, table)
        if self.backward == "same" or not torch.is_grad_enabled():
            return xi, None
        return xi, self.draw(u, pieces, table)

    def extra_repr(self) -> str:
        back = "" if self.backward == "same" else f", backward={self.backward!r}"
        return f"law={self.law!r}, per={self.per!r}, seed={self.seed}{back}"


def as_noise(
    noise: None | str | NoiseLaw | Noise, per: str = "sample", seed: int | None = None, **law_options: Any
) -> Noise | None:
    """A :class:`Noise` from a law name or object with options, or ``noise`` as given (``None``: no noise)."""
    if noise is None:
        if law_options:
            check_options("noise=None", law_options, ())
        if seed is not None:
            _check_seed(seed)
        if per not in PER_CHOICES:
            raise ValueError(f"unknown noise granularity per={per!r}; choose one of {PER_CHOICES}")
        return None
    if isinstance(noise, Noise):
        if law_options or seed is not None or per != "sample":
            raise ValueError("per, seed and law options belong to the Noise object given; set them there")
        return noise
    return Noise(noise, per=per, seed=seed, **law_options)
