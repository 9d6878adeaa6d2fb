"""Fields: the right-hand sides ``f(t, u)`` (drift) and ``g(t, u)`` (diffusion) that schemes unroll.

A field never assumes a 2-D state: ``u`` is any tensor with the batch dimension first
(feature maps are ``(B, C, H, W)``). Time is a Python float.

``Blocks`` is piecewise constant in time (block ``m`` owns ``[m, m+1)``), which is what a
ResNet is; ``Tied`` uses one function for all ``t`` (a neural ODE); ``Coupled`` is the
partitioned system ``x' = f1(y), y' = f2(x)`` of RevNet.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Protocol, TypeGuard

import torch
from torch import Tensor, nn

from ._checks import count, piece_of, positive, sub_piece

#: Knots a depth-continuous field may be projected onto (each one a copy of a block: 1024 copies of the
#: widest CIFAR block are ~300 MB).
MAX_KNOTS = 1024

FieldFn = Callable[[float, Tensor], Tensor]
BufferFactory = Callable[[nn.Module], dict[str, Tensor]]


class StepBuffers:
    """Per-evaluation buffers of a field's modules: the buffers (BatchNorm statistics, say) that module
    ``m`` uses when evaluated at time ``t``, keyed by ``(m, t)``, in place of its own.

    While :attr:`recording`, a missing key is created by ``factory(module)`` (fresh statistics), so a
    forward pass in training mode fills every evaluation's own buffers; otherwise a missing key falls
    back to the module's own buffers. Times are the step grid's floats, so the buffers belong to one
    discretisation.
    """

    def __init__(self, factory: BufferFactory) -> None:
        self.factory = factory
        self.recording = False
        self.table: dict[tuple[int, float], dict[str, Tensor]] = {}

    def get(self, module: nn.Module, m: int, t: float) -> dict[str, Tensor] | None:
        key = (m, float(t))
        if key not in self.table:
            if not self.recording:
                return None
            self.table[key] = self.factory(module)
        return self.table[key]

    def __len__(self) -> int:
        return len(self.table)


def _call(module: nn.Module, u: Tensor, replace: dict[str, Tensor] | None) -> Tensor:
    """``module(u)``, with some of its parameters or buffers replaced where ``replace`` is given."""
    if replace is None:
        out: Tensor = module(u)
        return out
    result: Tensor = torch.func.functional_call(module, replace, (u,), strict=False)
    return result


class Field(nn.Module):
    """Base class. Subclasses implement ``drift`` and, when stochastic, ``diffusion``.

    ``piece`` arguments select the time interval explicitly (see :meth:`breakpoints`); a flow
    passes the piece of the step it is taking so that a stage evaluated at a step's right end
    still uses the block of that step, as an ODE solver with piecewise-constant coefficients must.
    """

    #: True when ``diffusion`` returns a tensor rather than ``None``.
    stochastic: bool = False
    #: per-evaluation buffers (:class:`StepBuffers`), for fields that evaluate modules; ``None``: their own
    step_buffers: StepBuffers | None = None

    def breakpoints(self) -> tuple[float, ...]:
        """Sorted times where the field may jump; pieces are the intervals between them."""
        return ()

    @property
    def horizon(self) -> float | None:
        """Natural end time (a ``Blocks`` field with M blocks: ``M``), or ``None``."""
        return None

    def piece(self, t: float) -> int:
        """Index of the piece holding ``t``; pieces are left-closed, the last one closed."""
        return piece_of(t, self.breakpoints())

    def segments(self, t0: float, t1: float) -> list[tuple[float, float, int]]:
        """``(a, b, piece)`` for each piece of the field inside ``[t0, t1]``, in increasing time."""
        edges = [t0, *[b for b in self.breakpoints() if t0 < b < t1], t1]
        return [(a, b, self.piece(0.5 * (a + b))) for a, b in pairwise(edges)]

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        raise NotImplementedError

    def diffusion(self, t: float, u: Tensor, piece: int | None = None) -> Tensor | None:
        return None

    def drift_diffusion(self, t: float, u: Tensor, piece: int | None = None) -> tuple[Tensor, Tensor | None]:
        """``(f(t, u), g(t, u))``; subclasses override it to share work between the two."""
        return self.drift(t, u, piece), self.diffusion(t, u, piece)

    def forward(self, t: float, u: Tensor) -> Tensor:  # lets a field be called like f(t, u)
        return self.drift(t, u)


def _as_scales(values: float | Sequence[float] | Tensor | None, n: int, name: str) -> list[float] | None:
    """Per-block factors as plain floats (configuration, not parameters; cheap under torch.compile)."""
    if values is None:
        return None
    try:
        scales = [float(v) for v in torch.as_tensor(values, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number or one number per block, got {values!r}") from None
    if len(scales) == 1:
        scales = scales * n
    if len(scales) != n:
        raise ValueError(f"{name} has {len(scales)} entries; this field has {n} blocks")
    if not all(math.isfinite(v) for v in scales):
        raise ValueError(f"{name} must be finite, got {scales}")
    return scales


class Blocks(Field):
    """Per-block field: block ``m`` owns ``t in [m, m+1)`` and its module gives ``F_m(u)``.

    A module either maps ``u -> F_m(u)`` (same shape as ``u``) or has a method
    ``drift_diffusion(u) -> (f, g)`` (shake-shake: ``((F1+F2)/2, (F1-F2)/sqrt 12)``).

    Args:
        modules: the residual branches, one per block.
        drift_scale: optional per-block factors ``a_m`` with ``f = a_m F_m`` (stochastic depth:
            the survival probability ``p_m``).
        diffusion_scale: optional per-block factors ``c_m`` with ``g = c_m F_m`` (stochastic depth:
            ``sqrt(p_m (1 - p_m))``); the branch is then evaluated once for both.
        diffusion: optional independent diffusion ``g(t, u)`` (additive noise, say); exclusive
            with ``diffusion_scale``.
    """

    def __init__(
        self,
        modules: Sequence[nn.Module],
        drift_scale: float | Sequence[float] | Tensor | None = None,
        diffusion_scale: float | Sequence[float] | Tensor | None = None,
        diffusion: FieldFn | None = None,
    ) -> None:
        super().__init__()
        if isinstance(modules, (nn.Module, str)) and not isinstance(modules, (nn.ModuleList, nn.Sequential)):
            raise TypeError(f"Blocks takes a list of modules, one per block, got a {type(modules).__name__}")
        try:
            modules = list(modules)
        except TypeError:
            raise TypeError(f"Blocks takes a list of modules, one per block, got {type(modules).__name__}") from None
        if not modules:
            raise ValueError("Blocks needs at least one module")
        for i, m in enumerate(modules):
            if not callable(m):
                raise TypeError(f"Blocks: entry {i} ({type(m).__name__}) is not callable")
        if diffusion is not None and not callable(diffusion):
            raise TypeError(
                f"Blocks: diffusion must be callable as diffusion(t, u) or None, got {diffusion!r}; "
                "for g = c_m F_m give diffusion_scale"
            )
        if diffusion is not None and diffusion_scale is not None:
            raise ValueError("give either diffusion_scale (g = c_m F_m) or diffusion (g(t, u)), not both")
        self.blocks = nn.ModuleList(modules)
        n = len(modules)
        self._drift_scale = _as_scales(drift_scale, n, "drift_scale")
        self._diffusion_scale = _as_scales(diffusion_scale, n, "diffusion_scale")
        self._diffusion_fn = diffusion
        if isinstance(diffusion, nn.Module):
            self.diffusion_module = diffusion
        self.stochastic = (
            diffusion is not None or diffusion_scale is not None or any(_gives_diffusion(m) for m in modules)
        )

    def __len__(self) -> int:
        return len(self.blocks)

    def breakpoints(self) -> tuple[float, ...]:
        return tuple(float(m) for m in range(len(self.blocks) + 1))

    @property
    def horizon(self) -> float:
        return float(len(self.blocks))

    def _index(self, t: float, piece: int | None) -> int:
        return self.piece(t) if piece is None else piece

    @staticmethod
    def _scale(scales: list[float] | None, m: int) -> float | None:
        return None if scales is None else scales[m]

    def _branch(self, m: int, t: float, u: Tensor) -> Tensor:
        block = self.blocks[m]
        buffers = None if self.step_buffers is None else self.step_buffers.get(block, m, t)
        return _call(block, u, buffers)

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        m = self._index(t, piece)
        block = self.blocks[m]
        f: Tensor = block.drift_diffusion(u)[0] if _gives_diffusion(block) else self._branch(m, t, u)
        a = self._scale(self._drift_scale, m)
        return f if a is None else f * a

    def diffusion(self, t: float, u: Tensor, piece: int | None = None) -> Tensor | None:
        return self.drift_diffusion(t, u, piece)[1]

    def drift_diffusion(self, t: float, u: Tensor, piece: int | None = None) -> tuple[Tensor, Tensor | None]:
        m = self._index(t, piece)
        block = self.blocks[m]
        a = self._scale(self._drift_scale, m)
        c = self._scale(self._diffusion_scale, m)
        f: Tensor
        g: Tensor | None
        if _gives_diffusion(block):
            f, g = block.drift_diffusion(u)
        else:
            f = self._branch(m, t, u)
            g = None if c is None else f * c
        if a is not None:
            f = f * a
        if self._diffusion_fn is not None:
            g = self._diffusion_fn(t, u)
        return f, g


class _DriftDiffusionBlock(Protocol):
    def drift_diffusion(self, u: Tensor) -> tuple[Tensor, Tensor | None]: ...


def _gives_diffusion(block: nn.Module) -> TypeGuard[_DriftDiffusionBlock]:
    """Whether a block returns its own ``(drift, diffusion)`` pair (shake-shake's two branches).

    A class lookup, not ``hasattr``: on a miss ``nn.Module.__getattr__`` raises and catches, every step.
    """
    return getattr(type(block), "drift_diffusion", None) is not None


class Tied(Field):
    """Weight-tied field: one ``drift(t, u)`` for all times (a neural ODE), optional ``diffusion(t, u)``.

    Both functions return a tensor shaped like ``u``. ``nn.Module`` arguments are registered, so
    their parameters train with the flow.
    """

    def __init__(self, drift: FieldFn, diffusion: FieldFn | None = None) -> None:
        super().__init__()
        if not callable(drift):
            raise TypeError("Tied: drift must be callable as drift(t, u)")
        if diffusion is not None and not callable(diffusion):
            raise TypeError("Tied: diffusion must be callable as diffusion(t, u) or None")
        self._drift_fn = drift
        self._diffusion_fn = diffusion
        if isinstance(drift, nn.Module):
            self.drift_module = drift
        if isinstance(diffusion, nn.Module):
            self.diffusion_module = diffusion
        self.stochastic = diffusion is not None

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        return self._drift_fn(t, u)

    def diffusion(self, t: float, u: Tensor, piece: int | None = None) -> Tensor | None:
        return None if self._diffusion_fn is None else self._diffusion_fn(t, u)


class Coupled(Field):
    """Partitioned field ``x' = f1(t, y), y' = f2(t, x)`` of RevNet, on ``u = cat(x, y, dim=1)``.

    ``f1`` and ``f2`` are fields acting on half of the channels (dim 1) each; a plain ``nn.Module``
    ``m`` is taken as the weight-tied field ``(t, v) -> m(v)``. The leapfrog scheme uses
    :meth:`drift_x` and :meth:`drift_y` separately; ``drift`` gives the whole right-hand side.
    """

    def __init__(self, f1: Field | nn.Module, f2: Field | nn.Module) -> None:
        super().__init__()
        self.f1 = _coupled_part(f1, "f1")
        self.f2 = _coupled_part(f2, "f2")

    def breakpoints(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.f1.breakpoints()) | set(self.f2.breakpoints())))

    @property
    def horizon(self) -> float | None:
        h1, h2 = self.f1.horizon, self.f2.horizon
        if h1 is not None and h2 is not None and h1 != h2:
            raise ValueError(f"Coupled: f1 and f2 have different horizons ({h1} and {h2})")
        return h1 if h1 is not None else h2

    @staticmethod
    def split(u: Tensor) -> tuple[Tensor, Tensor]:
        """Halves ``(x, y)`` of ``u`` along dim 1, which must be even."""
        if u.dim() < 2 or u.shape[1] % 2:
            raise ValueError(
                f"Coupled: dim 1 of the state must be even to split into (x, y); got shape {tuple(u.shape)}"
            )
        x, y = u.chunk(2, dim=1)
        return x, y

    def drift_x(self, t: float, y: Tensor, piece: int | None = None) -> Tensor:
        return self.f1.drift(t, y, sub_piece(self.f1, self.breakpoints(), piece))

    def drift_y(self, t: float, x: Tensor, piece: int | None = None) -> Tensor:
        return self.f2.drift(t, x, sub_piece(self.f2, self.breakpoints(), piece))

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        x, y = self.split(u)
        return torch.cat([self.drift_x(t, y, piece), self.drift_y(t, x, piece)], dim=1)


class _TimeFree(nn.Module):
    """``(t, v) -> module(v)``: a module of the state alone, as a weight-tied drift."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, t: float, v: Tensor) -> Tensor:
        out: Tensor = self.module(v)
        return out


def _coupled_part(f: object, name: str) -> Field:
    """A :class:`Coupled` half as a field: fields as given, a plain module weight-tied over time."""
    if isinstance(f, Field):
        return f
    if isinstance(f, nn.Module):
        return Tied(_TimeFree(f))
    raise TypeError(f"Coupled: {name} must be a Field (cd.Blocks, cd.Tied) or an nn.Module, got {type(f).__name__}")


class Interpolated(Field):
    """Weights as piecewise-linear functions of depth: knot ``j``'s module holds the weights at time
    ``t_j = j H / K`` (``K`` knots over the horizon ``H``), and in between every parameter and BatchNorm
    statistic is interpolated linearly; after the last knot the weights stay those of the last knot.

    With ``K = M`` knots over ``M`` blocks the knots sit at the blocks' left ends, so one Euler step
    per block evaluates every knot exactly and the flow equals the blockwise (:class:`Blocks`) net; the
    ``state_dict`` keys are those of :class:`Blocks` too (``blocks.<j>.…``), so blockwise weights load
    as they are. Any step count is allowed: the field has no jumps. :meth:`with_knots` projects the
    weights onto another number of knots (refine: more; compress: fewer).

    Training-mode BatchNorm between knots normalises with the batch's statistics and keeps no running
    ones (they are updated at the knot times only); :func:`contdepth.models.recalibrate_bn` estimates
    statistics for any step grid (:attr:`step_buffers`).

    Args:
        modules: the knots' modules, all of the same structure, mapping ``u -> F(u)`` (same shape).
        horizon: ``H``, the end time (default: the number of knots).
    """

    def __init__(self, modules: Sequence[nn.Module], horizon: float | None = None) -> None:
        super().__init__()
        try:
            modules = list(modules)
        except TypeError:
            raise TypeError(
                f"Interpolated takes a list of modules, one per knot, got {type(modules).__name__}"
            ) from None
        if not modules:
            raise ValueError("Interpolated needs at least one knot module")
        names = [_state_names(m) for m in modules]
        for i, m in enumerate(modules):
            if _gives_diffusion(m):
                raise TypeError(f"Interpolated: knot {i} ({type(m).__name__}) gives its own diffusion; not supported")
            if names[i] != names[0]:
                raise ValueError(f"Interpolated: knot {i} ({type(m).__name__}) differs in structure from knot 0")
        self.blocks = nn.ModuleList(modules)
        self._horizon = float(len(modules)) if horizon is None else positive("horizon", horizon)
        self._names = names[0]

    def __len__(self) -> int:
        return len(self.blocks)

    def breakpoints(self) -> tuple[float, ...]:
        return (0.0, self._horizon)

    @property
    def horizon(self) -> float:
        return self._horizon

    @property
    def knot_times(self) -> tuple[float, ...]:
        """``t_j = j H / K``, ``j = 0 … K-1``."""
        k = len(self.blocks)
        return tuple(j * self._horizon / k for j in range(k))

    def locate(self, t: float) -> tuple[int, float]:
        """``(j, w)``: the weights at ``t`` are ``(1 - w) W_j + w W_{j+1}`` (``w = 0`` at and after the last knot)."""
        k = len(self.blocks)
        x = max(0.0, t * k / self._horizon)
        j = min(int(math.floor(x + 1e-9)), k - 1)
        w = x - j if j < k - 1 else 0.0
        return j, (0.0 if abs(w) < 1e-9 else w)

    def weights_at(self, t: float) -> dict[str, Tensor]:
        """Every parameter and buffer of a knot module at time ``t``, by name (integer buffers: knot ``j``'s)."""
        j, w = self.locate(t)
        now = dict(_state(self.blocks[j]))
        if w > 0.0:
            after = dict(_state(self.blocks[j + 1]))
            now = {n: torch.lerp(v, after[n], w) if v.is_floating_point() else v for n, v in now.items()}
        if self.step_buffers is not None:
            now.update(self.step_buffers.get(self.blocks[j], j, t) or {})
        return now

    def drift(self, t: float, u: Tensor, piece: int | None = None) -> Tensor:
        j, w = self.locate(t)
        if w == 0.0 and self.step_buffers is None:
            return _call(self.blocks[j], u, None)
        return _call(self.blocks[j], u, self.weights_at(t))

    def with_knots(self, knots: int) -> Interpolated:
        """A new field with ``knots`` knots over the same horizon whose weights are the least-squares
        projection (in time, over ``[0, H]``) of this field's: exact where the new knots contain the old
        ones (refinement), the closest piecewise-linear fit with fewer (compression). BatchNorm variances
        are kept positive; integer buffers (batch counts) take the largest."""
        knots = count("knots", knots, maximum=MAX_KNOTS, why="each knot holds a full copy of a block's weights")
        matrix = projection_matrix(len(self.blocks), knots, self._horizon)
        states = [dict(_state(m)) for m in self.blocks]
        modules = [copy.deepcopy(self.blocks[0]) for _ in range(knots)]
        for name in self._names:
            old = torch.stack([s[name] for s in states])
            if old.is_floating_point():
                new = torch.tensordot(matrix.to(old), old, dims=1)
                if name.endswith("running_var"):
                    new = new.clamp_min(1e-5)
            else:
                new = old.max(0).values.expand(knots, *old.shape[1:])
            for m, value in zip(modules, new, strict=True):
                _assign(m, name, value.clone())
        return Interpolated(modules, horizon=self._horizon)


def _state(module: nn.Module) -> list[tuple[str, Tensor]]:
    return [*module.named_parameters(), *module.named_buffers()]


def _state_names(module: nn.Module) -> list[str]:
    return [name for name, _ in _state(module)]


def _assign(module: nn.Module, name: str, value: Tensor) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    current = getattr(owner, attr)
    with torch.no_grad():
        current.copy_(value)


def hat_basis(times: Tensor, knots: int, horizon: float) -> Tensor:
    """``B[i, j]``: weight of knot ``j`` at ``times[i]`` for ``knots`` evenly spaced knots ``j H / K`` with
    linear interpolation between them and the last knot held to ``H`` (float64, ``(len(times), knots)``)."""
    x = (times.to(torch.float64) * knots / horizon).clamp(0, knots - 1)
    j = torch.arange(knots, dtype=torch.float64)
    return (1 - (x[:, None] - j[None, :]).abs()).clamp_min(0)


def projection_matrix(old: int, new: int, horizon: float, samples_per_knot: int = 64) -> Tensor:
    """``P`` (``new x old``, float64) mapping the knot values of an ``old``-knot piecewise-linear function to
    the ``new``-knot one closest to it in ``L2([0, H])`` (a fine midpoint rule over ``[0, H]``)."""
    n = samples_per_knot * max(old, new)
    times = (torch.arange(n, dtype=torch.float64) + 0.5) * horizon / n
    a, b = hat_basis(times, old, horizon), hat_basis(times, new, horizon)
    solution: Tensor = torch.linalg.lstsq(b, a).solution
    return solution
