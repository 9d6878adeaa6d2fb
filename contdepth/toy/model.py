"""The toy classifier: a planar flow of small tanh-MLP blocks, then a linear read-out and a sigmoid.

The state lives in the plane (dimension 2) for the whole depth, so trajectories and decision
regions can be drawn. Block ``m`` of the :class:`~contdepth.fields.Blocks` field owns
``t in [m, m+1)``, so the horizon is ``T = blocks`` and one step per block is a ResNet.

Noise variants (all evaluated without noise, i.e. with the mean drift, in ``eval()`` mode):

- ``none``: deterministic, any of ``euler``, ``lm2``, ``rk4``.
- ``gaussian``: additive noise, ``dX = F_m(X) dt + σ dW`` with a 2-D Brownian motion (ξ drawn
  per element, so the diffusion matrix is ``a = σ² I``); ``euler`` becomes Euler–Maruyama.
- ``stochastic_depth`` (or any name of the two-point law in :mod:`contdepth.noise_names`: ``sd``,
  ``bernoulli``, ...): stochastic depth, ``f = p F_m``,
  ``g = sqrt(p(1-p)) F_m`` with the two-point law and ξ drawn per sample; with one step per block
  this is exactly ``x + η F_m(x)``, η ~ Bernoulli(p).
- ``dropout``: dropout on the hidden units inside each residual branch (the scheme is unchanged;
  the noise comes from the branch itself and is switched off by ``eval()``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .. import _checks, schemes
from ..fields import Blocks
from ..flow import Flow
from ..noise_names import is_no_noise, law_name
from ..schemes import Scheme
from ..schemes import get as get_scheme

SCHEMES = ("euler", "lm2", "rk4")
NOISES = ("none", "gaussian", "stochastic_depth", "dropout")
#: the toy's noise variant for each law (canonical name of :mod:`contdepth.noise_names`) it offers
VARIANT_OF_LAW = {"gaussian": "gaussian", "bernoulli": "stochastic_depth"}
_LAW_OF_VARIANT = {variant: law for law, variant in VARIANT_OF_LAW.items()}


def check_choice(value: str, valid: tuple[str, ...], aliases: dict[str, str], what: str) -> str:
    """Canonical name of ``value`` or a one-line ``ValueError`` listing the valid choices."""
    key = aliases.get(value.lower(), value.lower()) if isinstance(value, str) else value
    if key not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(valid)}")
    return key


def _noise_name(value: str) -> str:
    """The toy's name of a noise variant: a law's name or alias read through :mod:`contdepth.noise_names`,
    ``none``/``off``, or ``dropout``; a one-line ``ValueError`` listing :data:`NOISES` otherwise."""
    if is_no_noise(value):
        return "none"
    law = law_name(value)
    if law in VARIANT_OF_LAW:
        return VARIANT_OF_LAW[law]
    return check_choice(value, NOISES, {}, "noise")


def _scheme_name(value: str) -> str:
    """The registered name of a scheme (or alias) the toy runs, or a one-line ``ValueError``.

    The toy gives a scheme its noise itself, so a scheme defined by its noise is run as its
    noise-free step (``euler_maruyama`` -> ``euler``; with noise it is Euler–Maruyama again).
    """
    if isinstance(value, str) and value.lower() in schemes.available():
        cls = schemes.scheme_class(value)
        value = cls.noise_free or cls.name
    return check_choice(value, SCHEMES, {}, "scheme")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and noise of one toy model.

    ``steps`` defaults to ``blocks`` (one step per block: a ResNet). ``sigma`` is the additive
    diffusion (state units per sqrt(time)), ``survival`` the stochastic-depth keep probability p,
    ``dropout`` the drop probability of the hidden units.
    """

    scheme: str = "euler"
    noise: str = "none"
    blocks: int = 4
    hidden: int = 16
    steps: int | None = None
    sigma: float = 0.4
    survival: float = 0.7
    dropout: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", _scheme_name(self.scheme))
        object.__setattr__(self, "noise", _noise_name(self.noise))
        if self.steps is not None:
            _checks.count("steps", self.steps, multiple_of=self.blocks, unit="blocks")
        noisy = self.noise in _LAW_OF_VARIANT
        if noisy and not schemes.scheme_class(self.scheme).supports_noise:
            takers = [s for s in SCHEMES if schemes.scheme_class(s).supports_noise]
            raise ValueError(f"noise {self.noise!r} needs a scheme that takes noise; use {' or '.join(takers)}")
        if not 0.0 < self.survival <= 1.0:
            raise ValueError(f"survival probability must lie in (0, 1], got {self.survival}")

    @property
    def n_steps(self) -> int:
        return self.blocks if self.steps is None else self.steps

    @property
    def label(self) -> str:
        """``scheme/noise``, plus ``/N steps`` when not one step per block."""
        extra = f"/{self.n_steps} steps" if self.n_steps != self.blocks else ""
        return f"{self.scheme}/{self.noise}{extra}"

    def to_dict(self) -> dict:
        return {**asdict(self), "steps": self.n_steps}


class Additive(nn.Module):
    """Diffusion ``g(t, u) = σ`` (shaped like ``u``): additive noise."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, t: float, u: Tensor) -> Tensor:
        return torch.full_like(u, self.sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"


def branch(hidden: int, dropout: float = 0.0) -> nn.Sequential:
    """Residual branch ``F(u) = W2 dropout(tanh(W1 u + b1)) + b2`` on ``(N, 2)`` states."""
    layers: list[nn.Module] = [nn.Linear(2, hidden), nn.Tanh()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, 2))
    return nn.Sequential(*layers)


def _field(cfg: ModelConfig) -> Blocks:
    drop = cfg.dropout if cfg.noise == "dropout" else 0.0
    modules = [branch(cfg.hidden, drop) for _ in range(cfg.blocks)]
    if cfg.noise == "gaussian":
        return Blocks(modules, diffusion=Additive(cfg.sigma))
    if cfg.noise == "stochastic_depth":
        p = cfg.survival
        return Blocks(modules, drift_scale=p, diffusion_scale=math.sqrt(p * (1.0 - p)))
    return Blocks(modules)


def _scheme(cfg: ModelConfig, noise_seed: int | None) -> Scheme:
    opts: dict[str, Any]
    law = _LAW_OF_VARIANT.get(cfg.noise)
    if law == "gaussian":
        opts = dict(noise=law, per="element", seed=noise_seed)
    elif law == "bernoulli":
        opts = dict(noise=law, per="sample", seed=noise_seed, p=cfg.survival)
    else:
        return get_scheme(cfg.scheme)
    return get_scheme(cfg.scheme, **opts)  # euler with noise is Euler-Maruyama


class ToyModel(nn.Module):
    """``x (N, 2) -> logit (N,)``: flow to ``X_T``, then ``w · X_T + b``. ``phi`` is the sigmoid read-out."""

    def __init__(self, cfg: ModelConfig, flow: Flow, readout: nn.Linear) -> None:
        super().__init__()
        self.cfg = cfg
        self.flow = flow
        self.readout = readout

    def logits_of_state(self, x_T: Tensor) -> Tensor:
        return self.readout(x_T).squeeze(-1)

    def phi(self, x_T: Tensor) -> Tensor:
        """Terminal payoff ``φ(X_T) = sigmoid(w · X_T + b)``: the predicted probability of class 1."""
        return torch.sigmoid(self.logits_of_state(x_T))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits_of_state(self.flow(x))

    @torch.no_grad()
    def prob(self, x: Tensor) -> Tensor:
        """Probability of class 1 in the current mode (``eval()``: noise off, the mean drift)."""
        return torch.sigmoid(self(x))


def build_model(cfg: ModelConfig, seed: int = 0) -> ToyModel:
    """A freshly initialised model; ``seed`` fixes the weights (and LM's k) and the scheme's noise."""
    torch.manual_seed(seed)
    field = _field(cfg)
    flow = Flow(field, _scheme(cfg, noise_seed=seed + 7919), steps=cfg.n_steps)
    return ToyModel(cfg, flow, nn.Linear(2, 1))
