"""The continuous limit: a field handed to torchdiffeq (ODE) or torchsde (SDE).

A field that is piecewise constant in time (``Blocks``) is integrated piece by piece, so an
adaptive solver never steps across a block boundary. torchsde needs a 2-D state: the adapter
flattens ``u`` and restores its shape inside ``f`` and ``g``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, Literal, overload

import torch
import torchdiffeq
from torch import Tensor, nn

from . import _checks
from .fields import Field
from .flow import Flow
from .noise import PER_CHOICES


def _resolve(field: Field | Flow, t0: float | None, t1: float | None) -> tuple[Field, float, float, Flow | None]:
    """Field and interval from a field or a flow (a flow's scheme gives its continuous field)."""
    flow = None
    if isinstance(field, Flow):
        flow = field
        t0 = flow.t0 if t0 is None else t0
        t1 = flow.t1 if t1 is None else t1
        field = flow.scheme.continuous_field(flow.field)
    if not isinstance(field, Field):
        raise TypeError(f"expected a contdepth Field or Flow, got {type(field).__name__}")
    t0, t1 = _checks.interval(field, 0.0 if t0 is None else t0, t1)
    return field, t0, t1, flow


MAX_FIXED_STEPS = 10**8  # a fixed step this small is a mistake, not a computation to wait for


def _check_step(name: str, value: object, t0: float, t1: float) -> float:
    h = _checks.positive(name, value)
    if (t1 - t0) / h > MAX_FIXED_STEPS:
        raise ValueError(
            f"{name}={value!r} would take {(t1 - t0) / h:.3g} steps over [{t0:g}, {t1:g}] "
            f"(more than {MAX_FIXED_STEPS:.0e}); choose a larger {name}"
        )
    return h


def _check_times(times: Sequence[float] | Tensor | None, t0: float, t1: float) -> list[float] | None:
    if times is None:
        return None
    try:
        values = [float(v) for v in torch.as_tensor(times, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"times must be a sequence of numbers, got {times!r}") from None
    if not values:
        raise ValueError("times is empty; give at least one time in [t0, t1] (or leave it out)")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"times must be finite, got {values}")
    if any(b <= a for a, b in pairwise(values)):
        raise ValueError("times must be strictly increasing")
    if values[0] < t0 or values[-1] > t1:
        raise ValueError(f"times must lie in [t0, t1] = [{t0:g}, {t1:g}]")
    return values


def _empty_result(u0: Tensor, times: list[float] | None) -> Tensor:
    """What a solve of an empty batch gives: nothing to integrate, the right shape."""
    return u0.clone() if times is None else u0.new_empty((len(times), *u0.shape))


class _PieceODE(nn.Module):
    """``f(t, u)`` of one piece, as torchdiffeq calls it; counts evaluations."""

    def __init__(self, field: Field, piece: int) -> None:
        super().__init__()
        self.field = field
        self.piece = piece
        self.nfe = 0

    def forward(self, t: Tensor, u: Tensor) -> Tensor:
        self.nfe += 1
        out = self.field.drift(float(t.detach()), u, self.piece)
        if out.shape != u.shape:
            raise ValueError(f"the field's drift has shape {tuple(out.shape)}, the state {tuple(u.shape)}")
        return out


PieceSolver = Callable[[float, float, int, Tensor, list[float]], list[Tensor]]


def _integrate_pieces(
    field: Field, u0: Tensor, t0: float, t1: float, times: Sequence[float] | Tensor | None, solve_piece: PieceSolver
) -> tuple[Tensor, Tensor | None]:
    """Run ``solve_piece(a, b, piece, u, ts) -> values at ts`` piece by piece; collect outputs."""
    requested = _check_times(times, t0, t1)
    outputs: list[Tensor] = []
    if requested is not None and requested and requested[0] == t0:
        outputs.append(u0)
    u = u0
    for a, b, piece in field.segments(t0, t1):
        inside = [] if requested is None else [v for v in requested if a < v < b]
        values = solve_piece(a, b, piece, u, [a, *inside, b])
        outputs.extend(values[1:-1])
        u = values[-1]
        if requested is not None and b in requested:
            outputs.append(u)
    return u, (None if requested is None else torch.stack(outputs))


@overload
def odeint(
    field: Field | Flow,
    u0: Tensor,
    t1: float | None = None,
    *,
    t0: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    step_size: float | None = None,
    options: dict[str, Any] | None = None,
    adjoint: bool = False,
    times: Sequence[float] | Tensor | None = None,
    return_stats: Literal[False] = False,
) -> Tensor: ...


@overload
def odeint(
    field: Field | Flow,
    u0: Tensor,
    t1: float | None = None,
    *,
    t0: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    step_size: float | None = None,
    options: dict[str, Any] | None = None,
    adjoint: bool = False,
    times: Sequence[float] | Tensor | None = None,
    return_stats: Literal[True],
) -> tuple[Tensor, dict[str, int]]: ...


def odeint(
    field: Field | Flow,
    u0: Tensor,
    t1: float | None = None,
    *,
    t0: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    step_size: float | None = None,
    options: dict[str, Any] | None = None,
    adjoint: bool = False,
    times: Sequence[float] | Tensor | None = None,
    return_stats: bool = False,
) -> Tensor | tuple[Tensor, dict[str, int]]:
    """Solve ``u' = f(t, u)`` from ``t0`` to ``t1`` with torchdiffeq, piece by piece.

    ``field`` may be a :class:`Flow`: its scheme's continuous limit is integrated over its
    interval (an LM flow gives ``u' = f/(1 + k(t))``). ``method`` is any torchdiffeq method;
    fixed-grid methods take ``step_size``. ``adjoint=True`` uses ``odeint_adjoint``.

    Returns ``u(t1)`` (shape of ``u0``), or the states at ``times`` (``(len(times), *u0.shape)``)
    when given; with ``return_stats`` also ``{"nfe": ..., "pieces": ...}``.
    """
    field, t0, t1, _ = _resolve(field, t0, t1)
    u0 = _checks.state(u0)
    rtol, atol = _checks.positive("rtol", rtol), _checks.positive("atol", atol)
    opts = dict(options or {})
    if step_size is not None:
        opts["step_size"] = _check_step("step_size", step_size, t0, t1)
    if u0.shape[0] == 0:
        out = _empty_result(u0, _check_times(times, t0, t1))
        return (out, {"nfe": 0, "pieces": len(field.segments(t0, t1))}) if return_stats else out
    solver = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    nfe = [0]

    def solve_piece(a: float, b: float, piece: int, u: Tensor, ts: list[float]) -> list[Tensor]:
        func = _PieceODE(field, piece)
        grid = torch.tensor(ts, dtype=u.dtype if u.is_floating_point() else torch.float64, device=u.device)
        kwargs: dict[str, Any] = dict(rtol=rtol, atol=atol, method=method, options=opts or None)
        if adjoint:
            kwargs["adjoint_params"] = tuple(field.parameters())
        try:
            values = solver(func, u, grid, **kwargs)
        except ValueError as err:  # torchdiffeq names its methods in its message
            raise ValueError(f"torchdiffeq: {err}") from None
        except AssertionError as err:  # torchdiffeq asserts when the adaptive step size underflows
            raise RuntimeError(
                f"torchdiffeq could not solve from t={a:g} to t={b:g} ({err}): the tolerances "
                f"rtol={rtol:g}, atol={atol:g} are too tight for {u.dtype}, or the solution "
                "blows up"
            ) from None
        nfe[0] += func.nfe
        return list(values)

    u, traj = _integrate_pieces(field, u0, t0, t1, times, solve_piece)
    out = u if traj is None else traj
    if return_stats:
        return out, {"nfe": nfe[0], "pieces": len(field.segments(t0, t1))}
    return out


class _PieceSDE(nn.Module):
    """One piece of a field as a torchsde Itô SDE on flattened states."""

    sde_type = "ito"

    def __init__(self, field: Field, piece: int, shape: torch.Size, per: str) -> None:
        super().__init__()
        self.field, self.piece, self.shape, self.per = field, piece, shape, per
        self.noise_type = "diagonal" if per == "element" else "general"

    def _unflat(self, y: Tensor) -> Tensor:
        return y.reshape(self.shape)

    def _flat(self, v: Tensor, y: Tensor) -> Tensor:
        return v.reshape(y.shape)

    def _g(self, g: Tensor | None, u: Tensor, y: Tensor) -> Tensor:
        if g is None:
            raise ValueError("sdeint needs a stochastic field (one with a diffusion)")
        g = self._flat(g.expand_as(u), y)
        return g if self.per == "element" else g.unsqueeze(-1)

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        return self._flat(self.field.drift(float(t.detach()), self._unflat(y), self.piece), y)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        u = self._unflat(y)
        return self._g(self.field.diffusion(float(t.detach()), u, self.piece), u, y)

    def f_and_g(self, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        u = self._unflat(y)
        f, g = self.field.drift_diffusion(float(t.detach()), u, self.piece)
        return self._flat(f, y), self._g(g, u, y)


def sdeint(
    field: Field | Flow,
    u0: Tensor,
    t1: float | None = None,
    *,
    t0: float | None = None,
    method: str = "euler",
    dt: float = 1e-3,
    per: str | None = None,
    times: Sequence[float] | Tensor | None = None,
    **sdeint_kwargs: Any,
) -> Tensor:
    """Solve the Itô SDE ``du = f dt + g dW`` with torchsde, piece by piece; ``u0`` of any shape.

    ``per`` matches the discrete noise granularity: ``sample`` (one Brownian motion per sample,
    the default), ``batch`` (one for the whole batch) or ``element`` (diagonal noise). A
    :class:`Flow` gives its continuous field, interval and its scheme's granularity.
    Returns ``u(t1)``, or the states at ``times`` stacked along a new first dimension.
    """
    import torchsde  # imported here: only SDE users pay for it

    field, t0, t1, flow = _resolve(field, t0, t1)
    if per is None:
        per = flow.noise.per if flow is not None and flow.noise is not None else "sample"
    if per not in PER_CHOICES:
        raise ValueError(f"unknown noise granularity per={per!r}; choose one of {PER_CHOICES}")
    if not field.stochastic:
        raise ValueError("sdeint needs a stochastic field (one with a diffusion); use odeint for an ODE")
    u0 = _checks.state(u0)
    dt = _check_step("dt", dt, t0, t1)
    if u0.shape[0] == 0:
        return _empty_result(u0, _check_times(times, t0, t1))
    shape = u0.shape
    flat_shape = (1, u0.numel()) if per == "batch" else (shape[0], u0[0].numel())

    def solve_piece(a: float, b: float, piece: int, u: Tensor, ts: list[float]) -> list[Tensor]:
        sde = _PieceSDE(field, piece, shape, per)
        grid = torch.tensor(ts, dtype=u.dtype, device=u.device)
        try:
            ys = torchsde.sdeint(sde, u.reshape(flat_shape), grid, method=method, dt=dt, **sdeint_kwargs)
        except AssertionError as err:  # torchsde checks its arguments with assertions
            raise ValueError(f"torchsde: {err}") from None
        return [y.reshape(shape) for y in ys]

    u, traj = _integrate_pieces(field, u0, t0, t1, times, solve_piece)
    return u if traj is None else traj
