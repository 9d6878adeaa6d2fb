"""Regions of absolute stability of the registered deterministic schemes.

A scheme applied to ``u' = λu`` with step ``h`` is a linear recurrence in ``z = hλ``; its
characteristic polynomial ``P(ζ; z) = Σ_ij C[i, j] z^i ζ^j`` has one root per step of history.
The scheme is stable at ``z`` when every root satisfies the root condition: ``|ζ| <= 1``, and the
roots on the unit circle are simple. One representation covers every family:

* one-step schemes with stability polynomial ``R(z)``: ``P = ζ - R(z)`` (stable iff ``|R(z)| <= 1``);
* linear multistep schemes ``ρ(ζ) - z σ(ζ)`` (AB2, LM-ResNet's two-step scheme);
* the partitioned RevNet schemes on ``x' = a y, y' = b x`` (``z² = h² ab``):
  ``P = ζ² - (2 + z²) ζ + 1``.

Each scheme gives its own polynomial (:meth:`~contdepth.schemes.Scheme.characteristic`), so a newly
registered scheme has its region here with no change to this module.

``boundary(n)`` traces the root locus ``{z : P(e^{iθ}; z) = 0}``, which contains the boundary of
the region (for a one-step scheme it is exactly ``|R(z)| = 1``).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..schemes.characteristic import Characteristic

if TYPE_CHECKING:
    from ..schemes import Scheme

#: root-condition slack: a root with ``|ζ| <= 1 + tol`` counts as inside the unit disc
DEFAULT_TOL = 1e-9
#: roots closer than this on the unit circle count as repeated (a double root is perturbed by ~sqrt(eps))
REPEAT_TOL = 1e-6


def _roots_batched(coeffs: np.ndarray) -> np.ndarray:
    """Roots of many polynomials at once: ``coeffs`` (N, d+1), highest degree last -> (N, d) complex.

    Eigenvalues of the companion matrices; the leading coefficient must not vanish.
    """
    n, d1 = coeffs.shape
    d = d1 - 1
    if d == 0:
        return np.zeros((n, 0), dtype=complex)
    lead = coeffs[:, -1]
    if np.any(lead == 0):
        raise ValueError("the characteristic polynomial loses degree at some z")
    if d == 1:
        return (-coeffs[:, 0] / lead)[:, None]
    companion = np.zeros((n, d, d), dtype=complex)
    companion[:, 1:, :-1] = np.eye(d - 1)
    companion[:, :, -1] = -coeffs[:, :-1] / lead[:, None]
    return np.linalg.eigvals(companion)


def root_condition(roots: np.ndarray, tol: float = DEFAULT_TOL) -> np.ndarray:
    """``(N, d)`` roots -> ``(N,)`` bool: all ``|ζ| <= 1 + tol`` and those on the circle simple."""
    mod = np.abs(roots)
    ok = np.all(mod <= 1.0 + tol, axis=1)
    d = roots.shape[1]
    on_circle = mod >= 1.0 - max(tol, REPEAT_TOL)
    for i in range(d):
        for j in range(i + 1, d):
            repeated = np.abs(roots[:, i] - roots[:, j]) < REPEAT_TOL
            ok &= ~(repeated & on_circle[:, i] & on_circle[:, j])
    return ok


@dataclass(frozen=True)
class StabilityRegion:
    """The stability region of one scheme (with its options fixed).

    Attributes:
        name: the scheme's registered name, with options (``"lm2(k=-0.2)"``).
        coeffs: ``C`` of shape ``(degree in z + 1, degree in ζ + 1)``:
            ``P(ζ; z) = Σ_ij C[i, j] z^i ζ^j``.
        kind: ``"one-step"``, ``"multistep"`` or ``"partitioned"``.
        note: what the region means for this scheme, in one line.
    """

    name: str
    coeffs: np.ndarray = field(repr=False)
    kind: str
    note: str = ""

    def characteristic(self, z: complex) -> np.ndarray:
        """Coefficients in ζ (lowest degree first) of ``P(·; z)`` at one ``z``."""
        powers = np.asarray(z, dtype=complex) ** np.arange(self.coeffs.shape[0])
        return powers @ self.coeffs

    def roots(self, z) -> np.ndarray:
        """Roots ζ of ``P(ζ; z)``: ``z`` of any shape -> shape ``(*z.shape, degree in ζ)``."""
        z = np.asarray(z, dtype=complex)
        flat = z.reshape(-1)
        powers = flat[:, None] ** np.arange(self.coeffs.shape[0])[None, :]
        return _roots_batched(powers @ self.coeffs).reshape(*z.shape, -1)

    def contains(self, z, tol: float = DEFAULT_TOL) -> np.ndarray:
        """Whether the scheme is stable at ``z = hλ``: complex array in, bool array of its shape out."""
        z = np.asarray(z, dtype=complex)
        if z.size == 0:
            return np.zeros(z.shape, dtype=bool)
        roots = self.roots(z).reshape(z.size, -1)
        return root_condition(roots, tol).reshape(z.shape)

    def boundary(self, n: int = 400) -> np.ndarray:
        """Root locus ``{z : P(e^{iθ}; z) = 0}`` at ``n`` angles in ``[0, 2π]``: ``(branches, n)`` complex.

        Each row is one root followed continuously in θ, so ``plot(b.real, b.imag)`` per row draws
        the curve; the boundary of the region lies on it.
        """
        if not isinstance(n, int) or n < 2:
            raise ValueError(f"boundary needs n >= 2 angles, got {n!r}")
        from scipy.optimize import linear_sum_assignment

        zeta = np.exp(1j * np.linspace(0.0, 2.0 * math.pi, n))
        by_z = zeta[:, None] ** np.arange(self.coeffs.shape[1])[None, :] @ self.coeffs.T  # (n, deg_z + 1)
        roots = _roots_batched(by_z)  # (n, deg_z)
        for i in range(1, n):  # follow each branch: match roots to the previous angle's
            cost = np.abs(roots[i][None, :] - roots[i - 1][:, None])
            _, order = linear_sum_assignment(cost)
            roots[i] = roots[i][order]
        return roots.T.copy()

    def real_interval(self, search: float = 20.0, tol: float = 1e-12) -> tuple[float, float]:
        """The interval of the real axis around 0 where the scheme is stable, by bisection.

        Ends farther than ``search`` from 0 are reported as ``±inf``; 0 itself must be stable.
        """
        if not bool(self.contains(0.0, tol=1e-13)):
            raise ValueError(f"{self.name}: z = 0 is not stable, there is no interval around it")

        def end(sign: float) -> float:
            inside, step = 0.0, 1e-3
            while True:  # walk out until unstable, then bisect
                probe = sign * min(search, abs(inside) + step)
                if not bool(self.contains(probe, tol=1e-13)):
                    break
                if abs(probe) >= search:
                    return sign * math.inf
                inside, step = probe, step * 2
            outside = probe
            while abs(outside - inside) > tol * max(1.0, abs(inside)):
                mid = 0.5 * (inside + outside)
                if bool(self.contains(mid, tol=1e-13)):
                    inside = mid
                else:
                    outside = mid
            return inside

        return end(-1.0), end(1.0)


# ----------------------------------------------------------------------------- from the schemes
def _region(name: str, characteristic: Characteristic) -> StabilityRegion:
    """The region of the scheme ``name`` with this characteristic polynomial (its options named)."""
    if characteristic.options:
        name += "(" + ", ".join(f"{key}={value:g}" for key, value in characteristic.options.items()) + ")"
    coeffs = np.asarray(characteristic.coeffs, dtype=complex)
    return StabilityRegion(name, coeffs, characteristic.kind, characteristic.note)


def _has_region(cls: type[Scheme]) -> bool:
    return cls.noise_free is None and cls.characteristic() is not None


def known_schemes() -> list[str]:
    """Registered scheme names (canonical) that have a stability region."""
    from .. import schemes

    names = {schemes.canonical(name) for name in schemes.available()}
    return sorted(name for name in names if _has_region(schemes.scheme_class(name)))


def _option_names(cls: type[Scheme]) -> list[str]:
    params = inspect.signature(cls.characteristic).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def stability_region(scheme: str | Scheme, **options: Any) -> StabilityRegion:
    """The region of absolute stability of a registered deterministic scheme.

    Args:
        scheme: a registered name or alias (``"euler"``, ``"resnet"``, ``"rk4"``, ``"lm2"``, ...) or
            a built :class:`~contdepth.schemes.Scheme` (its options, such as polynet's ``terms``, are
            read unless given; lm2's ``k`` must be given).
        **options: the options of the scheme's :meth:`~contdepth.schemes.Scheme.characteristic`:
            ``k`` for lm2 (one value; default 0), ``terms`` for polynet (default 2).

    Raises ``ValueError`` for a stochastic or unknown scheme and for options it does not take.
    """
    from .. import schemes

    if isinstance(scheme, schemes.Scheme):
        cls = type(scheme)
        options = options or scheme.characteristic_options()
    elif isinstance(scheme, str):
        cls = schemes.scheme_class(scheme)  # ValueError naming the registered schemes
    else:
        raise TypeError(f"scheme must be a registered name or a Scheme, got {type(scheme).__name__}")
    name = cls.name
    if cls.noise_free is not None:
        raise ValueError(
            f"scheme {name!r} is stochastic and has no region of absolute stability; its noise-free (eval-mode) "
            f"step is {cls.noise_free}: use stability_region({cls.noise_free!r})"
        )
    takes = _option_names(cls)
    if any(key not in takes for key in options):
        if takes:
            raise ValueError(f"scheme {name!r} takes only {', '.join(takes)}, got {sorted(options)}")
        raise ValueError(f"scheme {name!r} takes no options {sorted(options)}")
    characteristic = cls.characteristic(**options)
    if characteristic is None:
        raise ValueError(f"no stability region is known for scheme {name!r}; known: {', '.join(known_schemes())}")
    return _region(name, characteristic)


def region_of_step(scheme: Scheme, t_mid: float | None = None, noise_off: bool = True) -> StabilityRegion:
    """The region that governs one step of a flow run by ``scheme`` (a built scheme) at time ``t_mid``.

    A scheme with parameters that change with time (lm2's k) uses those of the interval holding
    ``t_mid``; a scheme whose noise is off (eval mode) is judged by its deterministic step
    (``euler_maruyama`` -> ``euler``).
    """
    if scheme.noise_free is not None and noise_off:
        return stability_region(scheme.noise_free)
    return stability_region(type(scheme).name, **scheme.characteristic_options(t_mid or 0.0))
