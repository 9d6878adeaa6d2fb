"""A stage's first block: one Euler(–Maruyama) step of size 1 with a projection shortcut."""

from __future__ import annotations

from torch import Tensor, nn

from ..fields import Blocks
from ..noise import Noise, add_scaled_noise
from .blocks import PreActBranch


class Transition(nn.Module):
    """First block of a stage: a change of space, not a time step of the stage's flow.

    ``x1 = post(P a + a_0 F(a) + c_0 F(a) ξ)`` with ``a = pre(x0)`` (the shared BN-ReLU of a
    pre-activation branch, else ``a = x0``): one Euler(–Maruyama) step of size 1 with a projection
    shortcut ``P``. Returns ``(x1, P a)``; ``P a`` seeds the stage flow's multistep history. The
    scales and the noise source come from the net's noise spec; ξ is drawn from ``noise`` (its law,
    granularity and seed, as a flow draws) in training mode only (eval: ``P a + a_0 F(a)``, the mean);
    a source with ``backward="independent"`` also draws the ξ_b the gradient is taken with.

    Args:
        branch: residual branch ``(B, C_in, H, W) -> (B, C_out, H/s, W/s)``; a :class:`PreActBranch`
            shares its ``pre`` with a projection shortcut; a branch with ``drift_diffusion`` gives
            its own g.
        shortcut: ``P``, same shapes as the branch (``nn.Identity()`` where the space is unchanged).
        post: optional map after the addition (ReLU of a post-activation net).
        drift_scale, diffusion_scale: ``a_0`` and ``c_0`` (see :class:`~contdepth.fields.Blocks`).
        noise: the :class:`~contdepth.noise.Noise` source of ξ (``None``: deterministic), for one block.
    """

    _noise_table: Tensor | None  # buffer: the law's parameters for this block (None without noise)

    def __init__(
        self,
        branch: nn.Module,
        shortcut: nn.Module,
        *,
        post: nn.Module | None = None,
        drift_scale: float | None = None,
        diffusion_scale: float | None = None,
        noise: Noise | None = None,
    ) -> None:
        super().__init__()
        body: nn.Module = branch
        self.pre: nn.Module = nn.Identity()
        if isinstance(branch, PreActBranch) and not isinstance(shortcut, nn.Identity):  # shared pre-activation
            self.pre, body = branch.pre, branch.body
        self.shortcut = shortcut
        self.field = Blocks(
            [body],
            drift_scale=None if drift_scale is None else [drift_scale],
            diffusion_scale=None if diffusion_scale is None else [diffusion_scale],
        )
        self.post = post if post is not None else nn.Identity()
        if noise is not None:
            noise.check_pieces(1, "a transition")
        self.noise = noise
        self.noise_at_eval = False  # as Flow.noise_at_eval: keep the noise on in eval mode (Monte Carlo evaluation)
        self.register_buffer("_noise_table", None if noise is None else noise.step_table((0,)), persistent=False)

    def forward(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        a = self.pre(x0)
        p = self.shortcut(a)
        if (self.training or self.noise_at_eval) and self.noise is not None:
            f, g = self.field.drift_diffusion(0.0, a, 0)
            out = p + f
            if g is not None:
                xi, xi_back = self.noise.draw_pair(g, (0,), self._noise_table)
                out = add_scaled_noise(out, g, xi[0], None if xi_back is None else xi_back[0])
        else:
            out = p + self.field.drift(0.0, a, 0)
        return self.post(out), p
