"""Noise specifications of the model zoo: ``None | "none" | "sd:P" | "gaussian:SIGMA" | "shake[:same]"``.

A spec says, for block ``l`` of ``L`` in the whole net (1-based, transition blocks included),
which drift scale ``a_l`` and diffusion scale ``c_l`` the branch ``F_l`` gets and which noise law
draws ξ, so that one Euler–Maruyama step of size 1 is the published layer:

* ``sd:P`` — stochastic depth (Huang et al. 2016): survival ``p_l = 1 - l/L (1 - P)``,
  ``a_l = p_l``, ``c_l = sqrt(p_l (1 - p_l))``, two-point law: ``x + η F(x)``, ``η ~ Bernoulli(p_l)``.
* ``gaussian:SIGMA`` — multiplicative Gaussian noise: ``x + F + SIGMA F ξ``, ``ξ ~ N(0, 1)``.
* ``shake`` — shake-shake: the two-branch block gives its own ``((F1+F2)/2, (F1-F2)/sqrt 12)``,
  uniform law: ``x + η F1 + (1 - η) F2``, ``η ~ U(0, 1)``. The backward pass takes the gradient of
  ``x + β F1 + (1 - β) F2`` with ``β`` an independent draw of the same law (Gastaldi 2017's
  Shake-Shake-Image, the best of his CIFAR variants; hence the default). ``shake:same`` (alias
  ``shake:keep``, Gastaldi's Shake-Keep) backpropagates through the forward ``η``: the pathwise
  gradient of the Euler–Maruyama step. The forward pass, and so the SDE it is a step of, is the
  same in both; ``shake:independent`` (alias ``shake:shake``) spells the default out.

ξ is drawn per sample. In eval mode the noise is off and the drift ``a_l F_l`` (the mean) is used.
The kind is read as a law name of :mod:`contdepth.noise_names` (``stochastic_depth``, ``bernoulli``
and ``two_point`` name ``sd``; ``normal`` and ``gauss`` name ``gaussian``; ``uniform`` and
``shake_shake`` name ``shake``); ``none``, ``off`` or an empty string is no noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..noise import Bernoulli, Gaussian, Noise, NoiseLaw, Uniform
from ..noise_names import is_no_noise, law_name

KINDS = ("sd", "gaussian", "shake")
#: the kind of spec for each law (canonical name of :mod:`contdepth.noise_names`) the model zoo offers
KIND_OF_LAW = {"bernoulli": "sd", "gaussian": "gaussian", "uniform": "shake"}
CHOICES = (
    "None or 'none' (no noise), 'sd:P' (stochastic depth, final survival P in (0, 1]), "
    "'gaussian:SIGMA' (SIGMA >= 0), 'shake' or 'shake:same' (shake-shake models only; "
    "backward weight independent of the forward one, or the same)"
)
#: spellings of the shake-shake backward weight after ``shake:`` (Gastaldi's names as aliases)
SHAKE_BACKWARD = {
    "": "independent",
    "independent": "independent",
    "shake": "independent",
    "same": "same",
    "keep": "same",
}


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed noise option; ``level`` is ``P`` for ``sd``, ``SIGMA`` for ``gaussian``, 0 for ``shake``.

    ``backward``: the noise source's (:class:`~contdepth.noise.Noise`): ``independent`` (default for
    ``shake``) or ``same`` (the only choice for ``sd`` and ``gaussian``); ``None`` picks the kind's default.
    """

    kind: str
    level: float = 0.0
    backward: str | None = None

    def __post_init__(self) -> None:
        default = "independent" if self.kind == "shake" else "same"
        backward = default if self.backward is None else self.backward
        if backward not in ("same", "independent") or (backward != default and self.kind != "shake"):
            raise ValueError(f"noise {self.kind!r} takes no backward={self.backward!r}; choices: {CHOICES}")
        object.__setattr__(self, "backward", backward)

    def survival(self, block: int, total: int) -> float:
        """Survival probability of block ``block`` (1-based) of ``total`` (1 unless ``sd``)."""
        if self.kind != "sd":
            return 1.0
        return 1.0 - block / total * (1.0 - self.level)

    def scales(self, block: int, total: int) -> tuple[float | None, float | None]:
        """``(drift_scale a_l, diffusion_scale c_l)`` of block l = ``block``; ``None``: not scaled / no diffusion."""
        if self.kind == "sd":
            p = self.survival(block, total)
            return p, math.sqrt(p * (1.0 - p))
        if self.kind == "gaussian":
            return None, self.level
        return None, None  # shake: the branch pair returns its own diffusion

    def law(self, blocks: Sequence[int], total: int) -> NoiseLaw:
        """The standardised law ξ for the given global blocks (one Bernoulli p per block for ``sd``)."""
        if self.kind == "sd":
            return Bernoulli([self.survival(b, total) for b in blocks])
        if self.kind == "gaussian":
            return Gaussian()
        return Uniform()

    def source(self, blocks: Sequence[int], total: int) -> Noise:
        """The noise source of a flow (or transition) over the given global blocks: ξ per sample, global RNG."""
        return Noise(self.law(blocks, total), per="sample", backward=str(self.backward))

    def __str__(self) -> str:
        if self.kind == "shake":
            return "shake" if self.backward == "independent" else "shake:same"
        return f"{self.kind}:{self.level:g}"


def parse_noise(noise: None | str | NoiseSpec) -> NoiseSpec | None:
    """``None``/``"none"`` -> no noise; ``"sd:0.5"``, ``"gaussian:0.001"``, ``"shake"``, ``"shake:same"``
    -> a :class:`NoiseSpec`."""
    if noise is None or isinstance(noise, NoiseSpec):
        return noise
    if not isinstance(noise, str):
        raise TypeError(f"noise must be a string or None, got {type(noise).__name__}; choices: {CHOICES}")
    text = noise.strip().lower()
    if is_no_noise(text):
        return None
    kind, _, value = text.partition(":")
    kind = KIND_OF_LAW.get(law_name(kind) or "", kind)
    if kind not in KINDS:
        raise ValueError(f"unknown noise spec {noise!r}; choices: {CHOICES}")
    if kind == "shake":
        if value.strip() not in SHAKE_BACKWARD:
            raise ValueError(f"noise 'shake' takes ':same' or nothing, got {noise!r}; choices: {CHOICES}")
        return NoiseSpec("shake", backward=SHAKE_BACKWARD[value.strip()])
    try:
        level = float(value)
    except ValueError:
        raise ValueError(f"noise spec {noise!r} needs a number after ':'; choices: {CHOICES}") from None
    if kind == "sd" and not 0.0 < level <= 1.0:
        raise ValueError(
            f"stochastic depth needs a final survival probability in (0, 1], got {level}; choices: {CHOICES}"
        )
    if kind == "gaussian" and not (level >= 0.0 and math.isfinite(level)):
        raise ValueError(f"gaussian noise needs a finite level >= 0, got {level}; choices: {CHOICES}")
    return NoiseSpec(kind, level)
