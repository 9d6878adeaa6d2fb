"""Stages and nets: a stage is a :class:`~.transition.Transition` (change of space) followed by a
:class:`~contdepth.flow.Flow` over a :class:`~contdepth.fields.Blocks` field of residual branches;
the scheme does every residual update. :class:`StagePlan` hands out schemes, noise scales and
global block indices while a net is built; :class:`ResidualNet` stacks stem, stages and head.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .. import _checks, schemes
from ..fields import MAX_KNOTS, Blocks, Interpolated
from ..flow import MAX_STEPS, Flow
from ..noise import Noise
from ..schemes.base import Scheme
from .noise_spec import NoiseSpec, parse_noise
from .transition import Transition


# ------------------------------------------------------------------------------------- schemes
def noisy_schemes() -> list[str]:
    """Registered schemes that can inject noise, canonical names: ``cd.schemes.registered(supports_noise=True)``."""
    return schemes.registered(supports_noise=True)


def resolve_scheme(scheme: str, noise: NoiseSpec | None) -> str:
    """Canonical scheme name for a net with ``noise``; checks that the scheme accepts noise.

    ``euler`` with noise is Euler–Maruyama; ``euler_maruyama`` (``em``) names the same scheme.
    """
    if not isinstance(scheme, str):
        raise TypeError(
            f"scheme must be a registered name (every stage builds its own scheme), got {type(scheme).__name__}"
        )
    name = schemes.canonical(scheme)
    if noise is not None and not schemes.scheme_class(name).supports_noise:
        raise ValueError(
            f"scheme {scheme!r} cannot inject noise (noise={str(noise)!r}); schemes that can: "
            f"{', '.join(noisy_schemes())}; or pass noise='none'"
        )
    return name


def build_scheme(name: str, options: dict | None = None) -> Scheme:
    """A fresh scheme instance without noise of its own (one per stage: LM's k belong to one flow)."""
    kw = dict(options or {})
    if schemes.scheme_class(name).supports_noise:
        kw.setdefault("noise", None)  # the flow holds the noise source (euler_maruyama defaults to Gaussian)
    return schemes.get(name, **kw)


# -------------------------------------------------------------------------------------- stages
class Stage(nn.Module):
    """``x0 -> flow(x1, u_prev=P a)`` with ``(x1, P a) = transition(x0)``; either part may be absent.

    ``flow`` is the flow as built and owns the parameters (so ``state_dict`` keys never change).
    :meth:`rediscretise` swaps in a refinement of it for the forward pass: the field's weights are
    the same tensors (trained together), the noise source is the same; a new LM scheme's k is a new
    parameter, kept in ``rescheme`` (outside ``state_dict``; it starts at 0 and is not trained
    unless its parameters are given to the optimiser); returning to the built scheme uses the
    built flow again, with its own (trained) k.
    """

    def __init__(self, transition: Transition | None, flow: Flow | None, blocks: int) -> None:
        super().__init__()
        self.transition = transition
        self.flow = flow
        self.blocks = blocks  # blocks of the flow's field (the transition excluded)
        self.rescheme: Scheme | None = None  # a scheme rediscretise built with parameters of its own
        self._active: list[Flow | None] = [flow]  # a list keeps the refined flow out of the registry
        self._refined: dict[tuple[str, int], tuple[Scheme | None, Flow]] = {}  # (scheme, steps) -> built before

    @property
    def active_flow(self) -> Flow | None:
        return self._active[0]

    def rediscretise(self, scheme: str, steps_per_block: float) -> None:
        """Use ``scheme`` (canonical name) with ``steps_per_block`` steps of size ``1/steps_per_block``
        (a fraction such as ½ where the field has no jumps and ``steps_per_block * blocks`` is whole)."""
        base = self.flow
        if base is None:
            return
        steps = _whole_steps(steps_per_block, self.blocks)
        cached = self._refined.get((scheme, steps))
        if cached is not None:  # the same objects each time: a compiled net keeps its graphs
            self.rescheme, new = cached
            new.train(self.training)
            self._active[0] = new
            return
        self.rescheme = None
        if scheme == base.scheme.name:
            new = base if steps == base.steps else base.refine(steps=steps)
        else:
            # the new scheme starts from the trained net's own step where it can (lm2: k = 0, a ResNet)
            built = build_scheme(scheme, schemes.scheme_class(scheme).neutral_options())
            new = base.refine(steps=steps, scheme=built)  # keeps the noise source where the scheme takes one
            if any(True for _ in built.parameters()):  # a scheme's own parameters (lm2's k), made on the default device
                weight = next(base.field.parameters(), None)
                self.rescheme = built if weight is None else built.to(weight.device)
        new.train(self.training)
        self._active[0] = new
        self._refined[(scheme, steps)] = (self.rescheme, new)

    def reknot(self, knots: int) -> None:
        """Project a depth-continuous (``linear``) flow's weights onto ``knots`` knots (see
        :meth:`~contdepth.fields.Interpolated.with_knots`); the stage then owns the new weights and runs its
        built scheme and step count until re-discretised."""
        base = self.flow
        if base is None:
            return
        if not isinstance(base.field, Interpolated):
            raise ValueError(
                "only a depth-continuous net (depth_basis='linear') changes its number of knots; "
                "build the net with depth_basis='linear' (blockwise weights load into it unchanged)"
            )
        self.flow = base.with_field(base.field.with_knots(knots))
        self.rescheme = None
        self._refined = {}
        self._active[0] = self.flow

    def train(self, mode: bool = True) -> Stage:
        super().train(mode)
        if self.active_flow is not None:
            self.active_flow.train(mode)
        return self

    def forward(self, x: Tensor) -> Tensor:
        u_prev = None
        if self.transition is not None:
            x, u_prev = self.transition(x)
        flow = self.active_flow
        return x if flow is None else flow(x, u_prev)


class StagePlan:
    """Builds the stages of one net: schemes, noise scales and laws, global block numbering.

    Args:
        total_blocks: residual blocks ``L`` of the whole net (transitions included).
        scheme: scheme name for every stage flow (``euler`` with noise is Euler–Maruyama).
        noise: a noise spec (see :mod:`.noise_spec`).
        steps_per_block: ``s``; a flow over M blocks takes ``s M`` steps of size ``1/s``.
        scheme_options: keyword options of every stage's scheme (``{"k": 0.0, "learnable": False}``).
        checkpoint: per-step activation checkpointing in the flows.
        two_branch: the net is made of shake-shake branch pairs.
        depth_basis: ``blocks`` (a field of blocks) or ``linear`` (weights interpolated in depth between
            knots at the blocks' left ends; no noise).
    """

    def __init__(
        self,
        total_blocks: int,
        scheme: str = "euler",
        noise: None | str | NoiseSpec = None,
        steps_per_block: int = 1,
        scheme_options: dict | None = None,
        checkpoint: bool = False,
        two_branch: bool = False,
        depth_basis: str = "blocks",
    ) -> None:
        self.noise = parse_noise(noise)
        self.depth_basis = _checks.depth_basis(depth_basis)
        if self.depth_basis != "blocks" and self.noise is not None:
            raise ValueError(
                f"depth_basis={depth_basis!r} takes no noise (noise={str(self.noise)!r}); "
                "use depth_basis='blocks' for noisy nets"
            )
        if self.noise is not None and (self.noise.kind == "shake") != two_branch:
            raise ValueError(
                "noise 'shake' needs a shake-shake model (two-branch blocks)"
                if not two_branch
                else f"shake-shake models carry their own noise; use noise='shake' (default) or 'none', "
                f"not {str(self.noise)!r}"
            )
        self.scheme = resolve_scheme(scheme, self.noise)
        self.steps_per_block = check_steps_per_block(steps_per_block)
        if scheme_options is not None and not isinstance(scheme_options, dict):
            raise TypeError(f"scheme_options must be a dict of the scheme's options, got {scheme_options!r}")
        if not isinstance(checkpoint, bool):
            raise TypeError(f"checkpoint must be True or False, got {checkpoint!r}")
        self.scheme_options = scheme_options
        self.checkpoint = checkpoint
        self.total = total_blocks
        self.used = 0

    def _take(self, n: int) -> list[int]:
        blocks = list(range(self.used + 1, self.used + n + 1))
        self.used += n
        if self.used > self.total:
            raise RuntimeError(f"StagePlan: {self.used} blocks built, {self.total} planned")
        return blocks

    def transition(self, branch: nn.Module, shortcut: nn.Module, post: nn.Module | None = None) -> Transition:
        (block,) = self._take(1)
        if self.noise is None:
            return Transition(branch, shortcut, post=post)
        a, c = self.noise.scales(block, self.total)
        return Transition(
            branch, shortcut, post=post, drift_scale=a, diffusion_scale=c, noise=self.noise.source([block], self.total)
        )

    def flow(self, branches: Sequence[nn.Module], post_step: nn.Module | None = None) -> Flow:
        blocks = self._take(len(branches))
        drift_scale: list[float] | None = None
        diffusion_scale: list[float] | None = None
        noise: Noise | None = None
        if self.noise is not None:
            scales = [self.noise.scales(b, self.total) for b in blocks]
            drift_scale = _every_or_none([a for a, _ in scales])
            diffusion_scale = _every_or_none([c for _, c in scales])
            noise = self.noise.source(blocks, self.total)
        field = (
            Blocks(branches, drift_scale=drift_scale, diffusion_scale=diffusion_scale)
            if self.depth_basis == "blocks"
            else Interpolated(branches)
        )
        scheme = build_scheme(self.scheme, self.scheme_options)
        return Flow(
            field,
            scheme,
            steps=self.steps_per_block * len(branches),
            noise=noise,
            post_step=post_step,
            checkpoint=self.checkpoint,
        )

    def stage(
        self, branches: Sequence[nn.Module], shortcut: nn.Module | None = None, post: nn.Module | None = None
    ) -> Stage:
        """A stage; with ``shortcut``, ``branches[0]`` is the transition's branch. ``post``: map after each add."""
        branches = list(branches)
        transition = None
        if shortcut is not None:
            transition = self.transition(branches.pop(0), shortcut, post)
        flow = self.flow(branches, post) if branches else None
        return Stage(transition, flow, len(branches))


def check_steps_per_block(steps_per_block: object) -> int:
    return _checks.count("steps_per_block", steps_per_block)


def check_step_rate(steps_per_block: object) -> float:
    """Steps per block for re-discretising: an integer >= 1, or a positive fraction (½, ¼: fewer steps than
    blocks, for depth-continuous fields); one line naming the value otherwise."""
    if isinstance(steps_per_block, int) and not isinstance(steps_per_block, bool):
        return check_steps_per_block(steps_per_block)
    value = _checks.positive("steps_per_block", steps_per_block)
    return int(value) if value.is_integer() else value


def _whole_steps(steps_per_block: float, blocks: int) -> int:
    steps = steps_per_block * blocks
    if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
        raise ValueError(
            f"steps_per_block={steps_per_block:g} gives {steps:g} steps over a flow of {blocks} blocks; "
            "it must give a whole number of steps >= 1"
        )
    if steps > MAX_STEPS:
        raise ValueError(
            f"steps_per_block={steps_per_block:g} gives {steps:g} steps over a flow of {blocks} blocks, "
            f"more than the {MAX_STEPS} a flow may take; for the continuous limit use cd.odeint"
        )
    return int(round(steps))


# ----------------------------------------------------------------------------------------- nets
def _every_or_none(values: list[float | None]) -> list[float] | None:
    """Per-block scales when every block has one, else ``None`` (a noise spec scales all blocks or none)."""
    known = [v for v in values if v is not None]
    return known if len(known) == len(values) else None


class ResidualNet(nn.Module):
    """``stem -> stages -> head``: images ``(B, 3, H, W)`` -> logits ``(B, num_classes)``.

    Attributes ``scheme`` (canonical name in use), ``noise`` (:class:`NoiseSpec` or ``None``) and
    ``steps_per_block`` describe the current discretisation.
    """

    def __init__(self, stem: nn.Module, stages: Sequence[Stage], head: nn.Module, plan: StagePlan) -> None:
        super().__init__()
        if plan.used != plan.total:
            raise RuntimeError(f"StagePlan: {plan.used} blocks built, {plan.total} planned")
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.scheme: str = plan.scheme
        self.noise: NoiseSpec | None = plan.noise
        self.steps_per_block: float = plan.steps_per_block
        self.depth_basis: str = plan.depth_basis

    def flows(self) -> list[Flow]:
        """The stage flows in use, in order (stages made of a transition only have none)."""
        return [flow for s in self._stage_list() if (flow := s.active_flow) is not None]

    def _stage_list(self) -> list[Stage]:
        return [s for s in self.stages if isinstance(s, Stage)]  # all of them: __init__ takes Stages

    def rediscretise(self, scheme: str | None = None, steps_per_block: float | None = None) -> ResidualNet:
        """In place: every stage flow becomes ``flow.refine(steps=s * blocks, scheme=scheme)``.

        Weights are shared. Always refines the flow as built, so returning to the original scheme
        restores it (LM's trained k included). Leaving ``lm2`` integrates LM's continuous limit
        ``u' = f/(1+k)``; ``lm2`` on a non-LM net starts from k = 0 (the same map at s = 1).
        A scheme that accepts noise (``euler``, which ``euler_maruyama`` names too, ``lm2``) keeps the
        net's noise source; a deterministic scheme (``rk4``, ...) integrates the drift, i.e. the
        eval-mode network.
        """
        s = self.steps_per_block if steps_per_block is None else check_step_rate(steps_per_block)
        if scheme is None:
            name = self.scheme
        else:
            if not isinstance(scheme, str):
                raise TypeError(f"scheme must be a registered name, got {type(scheme).__name__}")
            name = schemes.canonical(scheme)
        for stage in self._stage_list():
            stage.rediscretise(name, s)
        self.scheme, self.steps_per_block = name, s
        return self

    def reknot(self, knots_per_block: float) -> ResidualNet:
        """In place: a depth-continuous net's weights projected onto ``knots_per_block`` knots per block
        (2: refined, ½: compressed; the whole number of knots per stage is rounded, at least 1), then
        re-discretised at its current scheme and step count. Refining is exact; compressing is the closest
        piecewise-linear fit (:meth:`~contdepth.fields.Interpolated.with_knots`)."""
        rate = _checks.positive("knots_per_block", knots_per_block)
        stages = [s for s in self._stage_list() if s.flow is not None]
        most = max((round(rate * s.blocks) for s in stages), default=0)
        if most > MAX_KNOTS:
            raise ValueError(
                f"knots_per_block={knots_per_block:g} gives {most} knots in a stage, more than the {MAX_KNOTS} "
                "a field may hold (each knot is a copy of a block's weights)"
            )
        for stage in stages:
            stage.reknot(max(1, round(rate * stage.blocks)))
        return self.rediscretise(self.scheme, self.steps_per_block)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def extra_repr(self) -> str:
        noise = "none" if self.noise is None else str(self.noise)
        return f"scheme={self.scheme!r}, noise={noise!r}, steps_per_block={self.steps_per_block}"
