"""Flow: a field unrolled by a scheme over ``[t0, t1]`` in a fixed number of steps, as an ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from . import _checks
from .fields import Coupled, Field
from .noise import Noise, NoiseLaw, as_noise
from .schemes import get as get_scheme
from .schemes import registered
from .schemes.base import Scheme, StepContext, StepField

#: Steps one flow may take: building one costs about 40 µs a step (per-step tables), so more would stall
#: for minutes before the first forward; the limit they approach is what ``cd.odeint`` computes.
MAX_STEPS = 1 << 16
_TOO_MANY_STEPS = "for the continuous limit, integrate the field with cd.odeint (an adaptive solver)"


class Flow(nn.Module):
    """The map ``u(t0) -> u(t1)`` of ``field`` under ``scheme`` with ``steps`` equal steps.

    Args:
        field: a :class:`~contdepth.fields.Field` (``Blocks``, ``Tied``, ``Coupled``, ...).
        scheme: a registered name (see ``contdepth.schemes.available()``) or a built scheme.
        steps: number of steps (required); for a ``Blocks`` field every block boundary inside
            ``(t0, t1)`` must fall on the step grid, so use a multiple of the number of blocks.
        t0, t1: time interval; ``t1`` defaults to the field's horizon (M for M blocks).
        noise: the noise source (:class:`~contdepth.noise.Noise`, or a law name such as
            ``"gaussian"``): ξ of all steps is drawn from it in one call per forward and each step
            adds ``sqrt(h) g ξ`` (a source with ``backward="independent"`` draws each step's ξ_b for
            the backward pass too). The scheme must accept noise (``euler``, ``lm2``) and the field
            must have a diffusion. Default: the noise the scheme was built with, if any
            (``cd.schemes.get("euler_maruyama", noise=..., seed=...)``), else none.
        noise_at_eval: keep injecting noise in eval mode (noise is on in training mode only).
        checkpoint: per-step activation checkpointing (``torch.utils.checkpoint``): activations
            of a step are recomputed in backward instead of stored.
        reversible: backpropagate by reconstructing states with the scheme's exact inverse
            (``revnet``/``leapfrog``), storing no intermediate activations.
        post_step: optional map applied after every step (the ReLU of a post-activation ResNet).

    Note: under ``checkpoint`` or ``reversible``, BatchNorm layers in training mode see the
    recomputed forward too, so their running statistics are updated twice per step.
    """

    _noise_table: Tensor | None  # buffer: per-step law parameters of the noise (None without)

    def __init__(
        self,
        field: Field,
        scheme: str | Scheme = "euler",
        *,
        steps: int,
        t0: float = 0.0,
        t1: float | None = None,
        noise: None | str | NoiseLaw | Noise = None,
        noise_at_eval: bool = False,
        checkpoint: bool = False,
        reversible: bool = False,
        post_step: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(field, Field):
            raise TypeError(f"Flow needs a contdepth Field (Blocks, Tied, ...), got {type(field).__name__}")
        self.field = field
        self.scheme = get_scheme(scheme)
        self.steps = _checks.count("steps", steps, maximum=MAX_STEPS, why=_TOO_MANY_STEPS)
        t0, t1 = _checks.interval(field, t0, t1)
        self.t0, self.t1 = t0, t1
        self.h = (t1 - t0) / self.steps
        self.noise_at_eval = bool(noise_at_eval)
        self.checkpoint = bool(checkpoint)
        self.reversible = bool(reversible)
        self.post_step = post_step
        self.noise = self._adopt_noise(as_noise(noise))
        self._validate_scheme()
        self.pieces = self._step_pieces()
        self.scheme.setup(self._scheme_breaks())
        self._contexts = self._build_contexts()
        self.register_buffer(
            "_noise_table", None if self.noise is None else self.noise.step_table(self.pieces), persistent=False
        )

    # ----------------------------------------------------------------- set-up
    def _adopt_noise(self, noise: Noise | None) -> Noise | None:
        """The flow's noise source: the one given, else the one the scheme was built with."""
        own = self.scheme.noise
        if noise is not None and own is not None and noise is not own:
            raise ValueError(
                f"noise was given both to the flow and to scheme {self.scheme.name!r}; give it to the flow only"
            )
        noise = noise if noise is not None else own
        if noise is not None and not self.scheme.supports_noise:
            raise ValueError(
                f"scheme {self.scheme.name!r} takes no noise increment; schemes that do: "
                f"{', '.join(registered(supports_noise=True))}"
            )
        return noise

    def _validate_scheme(self) -> None:
        s = self.scheme
        if s.requires_coupled and not isinstance(self.field, Coupled):
            raise TypeError(f"scheme {s.name!r} needs a contdepth.Coupled field (x' = f1(y), y' = f2(x))")
        if self.noise is not None:
            if not self.field.stochastic:
                raise ValueError(
                    f"the flow injects noise ({self.noise.law!r}) but the field has no diffusion; give the field a "
                    "diffusion (Tied(..., diffusion=g), Blocks(..., diffusion_scale=c)) or no noise"
                )
            self.noise.check_pieces(max(1, len(self.field.breakpoints()) - 1))
        if self.reversible:
            if not s.invertible:
                raise ValueError(
                    f"reversible=True needs an invertible scheme ({', '.join(registered(invertible=True))}), "
                    f"not {s.name!r}"
                )
            if self.post_step is not None:
                raise ValueError("reversible=True cannot be combined with post_step (it is not invertible)")
            if self.checkpoint:
                raise ValueError("choose reversible or checkpoint, not both")

    def _inner_breakpoints(self) -> list[float]:
        return [b for b in self.field.breakpoints() if self.t0 < b < self.t1]

    def _step_pieces(self) -> list[int]:
        tol = 1e-9 * max(1.0, abs(self.t1), abs(self.t0))
        for b in self._inner_breakpoints():
            ratio = (b - self.t0) / self.h
            if abs(ratio - round(ratio)) * self.h > tol:
                n_pieces = len(self._inner_breakpoints()) + 1
                raise ValueError(
                    f"steps={self.steps} puts no step boundary at the field's block boundary t={b:g}; "
                    f"the field has {n_pieces} blocks in [{self.t0:g}, {self.t1:g}]: use a multiple of {n_pieces} steps"
                )
        return [self.field.piece(self.t0 + (n + 0.5) * self.h) for n in range(self.steps)]

    def _scheme_breaks(self) -> tuple[float, ...]:
        """Intervals for time-dependent scheme parameters: the field's blocks, else the step grid."""
        inner = self._inner_breakpoints()
        if inner or len(self.field.breakpoints()) >= 2:
            return (self.t0, *inner, self.t1)
        return tuple(self.t0 + n * self.h for n in range(self.steps)) + (self.t1,)

    @property
    def times(self) -> Tensor:
        """Step grid, shape ``(steps + 1,)``, float64."""
        return torch.linspace(self.t0, self.t1, self.steps + 1, dtype=torch.float64)

    def refine(self, steps: int | None = None, scheme: str | Scheme | None = None) -> Flow:
        """The same trained field under another step count and/or scheme (weights shared).

        Switching away from an LM scheme integrates its continuous limit ``u' = f/(1 + k(t))``.
        The noise source goes with it to a scheme that accepts noise (unless the new scheme brings
        its own); a deterministic scheme integrates the drift.
        """
        steps = self.steps if steps is None else steps
        if scheme is None:
            new_scheme, field = self.scheme, self.field
        else:
            new_scheme = get_scheme(scheme)
            same_kind = isinstance(new_scheme, type(self.scheme)) or isinstance(self.scheme, type(new_scheme))
            field = self.field if same_kind else self.scheme.continuous_field(self.field)
        noise = None
        if new_scheme.noise is None and new_scheme.supports_noise:
            noise = self.noise
        return Flow(
            field,
            new_scheme,
            steps=steps,
            t0=self.t0,
            t1=self.t1,
            noise=noise,
            noise_at_eval=self.noise_at_eval,
            checkpoint=self.checkpoint,
            reversible=self.reversible and new_scheme.invertible,
            post_step=self.post_step,
        )

    def with_field(self, field: Field) -> Flow:
        """This flow (scheme, steps, interval, noise, options) over another field of the same horizon: a
        field whose weights were re-projected, say."""
        return Flow(
            field,
            self.scheme,
            steps=self.steps,
            t0=self.t0,
            t1=self.t1,
            noise=self.noise,
            noise_at_eval=self.noise_at_eval,
            checkpoint=self.checkpoint,
            reversible=self.reversible,
            post_step=self.post_step,
        )

    # ---------------------------------------------------------------- running
    def _build_contexts(self) -> tuple[StepContext, ...]:
        """The noise-free context of every step, built with the flow: no Python work (and no
        state for ``torch.compile`` to guard on) when it runs."""
        return tuple(
            StepContext(
                StepField(self.field, piece),
                self.t0 + n * self.h,
                self.h,
                n,
                piece,
                n == 0 or piece != self.pieces[n - 1],
            )
            for n, piece in enumerate(self.pieces)
        )

    def _check_input(self, u0: Tensor, u_prev: Tensor | None) -> None:
        _checks.state(u0, complex_ok=True)
        if u_prev is not None:
            if not isinstance(u_prev, Tensor):
                raise TypeError(f"u_prev must be a tensor or None, got {type(u_prev).__name__}")
            if u_prev.shape != u0.shape:
                raise ValueError(
                    f"the history u_prev has shape {tuple(u_prev.shape)} but the state has shape {tuple(u0.shape)}; "
                    "give the state one block before t0, shaped like u0"
                )

    def _run(self, u0: Tensor, u_prev: Tensor | None, keep: bool) -> tuple[Tensor, list[Tensor]]:
        self._check_input(u0, u_prev)
        if u0.shape[0] == 0:  # an empty batch: nothing to integrate
            return u0.clone(), [u0.clone() for _ in range(self.steps + 1)] if keep else []
        if u_prev is not None and self.h != 1.0:
            # u_prev is the state one unit of time before t0; a step of h looks back only h, so the
            # two-step kick k (u_prev - u0) stays O(h) and refinement converges to odeint(flow).
            u_prev = torch.add(u0, u_prev - u0, alpha=self.h)
        state = self.scheme.init_state(u0, u_prev)
        u, path = u0, [u0] if keep else []
        use_ckpt = self.checkpoint and torch.is_grad_enabled()
        contexts = self._contexts
        xis: tuple[Tensor, ...] | None = None
        backs: tuple[Tensor, ...] | None = None  # the backward pass's ξ, when drawn apart from the forward's
        if self.noise is not None and (self.training or self.noise_at_eval):
            xi, xi_back = self.noise.draw_pair(u0, self.pieces, self._noise_table)  # every step's ξ in one call
            xis = xi.unbind(0)
            backs = None if xi_back is None else xi_back.unbind(0)
        step, post_step = self.scheme.step, self.post_step  # submodule lookups, once rather than per step
        for n in range(self.steps):
            if xis is None:
                ctx = contexts[n]
            else:
                ctx = contexts[n].with_noise(xis[n], None if backs is None else backs[n])
            if use_ckpt:
                u, state = torch_checkpoint(step, ctx, u, state, use_reentrant=False)
            else:
                u, state = step(ctx, u, state)
            if post_step is not None:
                u = post_step(u)
            if keep:
                path.append(u)
        return u, path

    def forward(self, u0: Tensor, u_prev: Tensor | None = None) -> Tensor:
        """``u(t1)`` from ``u(t0) = u0``.

        ``u_prev`` seeds a multistep scheme's history: the state one unit of time (one block)
        before ``t0``, interpolated linearly to one step back when the step ``h`` is not 1.
        """
        if self.reversible and torch.is_grad_enabled():
            params = tuple(p for p in self.field.parameters() if p.requires_grad)
            # torch.autograd.Function.apply carries no annotations
            out: Tensor = _ReversibleFlow.apply(self, u0, *params)  # type: ignore[no-untyped-call]
            return out
        return self._run(u0, u_prev, keep=False)[0]

    def trajectory(self, u0: Tensor, u_prev: Tensor | None = None) -> Tensor:
        """All states on the step grid, shape ``(steps + 1, *u0.shape)``."""
        return torch.stack(self._run(u0, u_prev, keep=True)[1])

    def extra_repr(self) -> str:
        extras = [f"steps={self.steps}", f"t0={self.t0:g}", f"t1={self.t1:g}", f"h={self.h:g}"]
        extras += [name for name in ("noise_at_eval", "checkpoint", "reversible") if getattr(self, name)]
        return ", ".join(extras)


@runtime_checkable
class HasFlows(Protocol):
    """A model that lists the flows it runs, in order (a re-discretised net: its active flows)."""

    def flows(self) -> list[Flow]: ...


class _ReversibleFlow(torch.autograd.Function):
    """Backprop through an invertible flow by reconstructing each state from the next one."""

    @staticmethod
    def forward(ctx: Any, flow: Flow, u0: Tensor, *params: Tensor) -> Tensor:
        with torch.no_grad():
            u = flow._run(u0, None, keep=False)[0]
        ctx.flow = flow
        ctx.save_for_backward(u)
        return u

    @staticmethod
    def backward(ctx: Any, grad_u: Tensor) -> tuple[Tensor | None, ...]:
        flow: Flow = ctx.flow
        (u,) = ctx.saved_tensors
        params = [p for p in flow.field.parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) for p in params]
        contexts = flow._contexts
        for n in reversed(range(flow.steps)):
            step_ctx = contexts[n]
            with torch.no_grad():
                u_before = flow.scheme.inverse_step(step_ctx, u)
            with torch.enable_grad():
                u_in = u_before.detach().requires_grad_(True)
                u_out, _ = flow.scheme.step(step_ctx, u_in, None)
                got = torch.autograd.grad(u_out, [u_in, *params], grad_u, allow_unused=True)
            grad_u = got[0]
            for acc, g in zip(grads, got[1:], strict=True):
                if g is not None:
                    acc.add_(g)
            u = u_before
        return (None, grad_u, *grads)
