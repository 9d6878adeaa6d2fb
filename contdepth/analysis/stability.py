"""Regions of absolute stability of the registered deterministic schemes.

A scheme applied to ``u' = λu`` with step ``h`` is a linear recurrence in ``z = hλ``; its
characteristic polynomial ``P(ζ; z) = Σ_ij C[i, j] z^i ζ^j`` has one root per step of history.
The scheme is stable at ``z`` when every root satisfies the root condition: ``|ζ| <= 1``, and the
roots on the unit circle are simple. One representation covers every family:

* one-step schemes with stability polynomial ``R(z)``: ``P = ζ - R(z)`` (stable iff ``|R(z)| <= 1``);
* linear multistep schemes ``ρ(ζ) - z σ(ζ)`` (AB2, LM-ResNet's two-step scheme);
* the partitioned RevNet schemes on ``x' = a y, y' = b x`` (``z² = h² ab``):
  ``P = ζ² - (2 + z²) ζ + 1``.

``boundary(n)`` traces the root locus ``{z : P(e^{iθ}; z) = 0}``, which contains the boundary of
the region (for a one-step scheme it is exactly ``|R(z)| = 1``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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


# ----------------------------------------------------------------------------- constructors
def one_step(name: str, stability_polynomial: list[float], note: str = "") -> StabilityRegion:
    """Region of a one-step scheme with ``R(z) = Σ c_i z^i`` (``stability_polynomial`` = c, lowest first)."""
    c = np.asarray(stability_polynomial, dtype=complex)
    coeffs = np.zeros((len(c), 2), dtype=complex)
    coeffs[:, 0] = -c
    coeffs[0, 1] = 1.0
    return StabilityRegion(name, coeffs, "one-step", note)


def multistep(name: str, rho: list[float], sigma: list[float], note: str = "") -> StabilityRegion:
    """Region of a linear multistep scheme ``Σ ρ_j x_{n+j} = h Σ σ_j f_{n+j}`` (coefficients lowest first)."""
    deg = max(len(rho), len(sigma))
    coeffs = np.zeros((2, deg), dtype=complex)
    coeffs[0, : len(rho)] = rho
    coeffs[1, : len(sigma)] = -np.asarray(sigma, dtype=complex)
    return StabilityRegion(name, coeffs, "multistep", note)


def _taylor(order: int) -> list[float]:
    return [1.0 / math.factorial(j) for j in range(order + 1)]


def _euler() -> StabilityRegion:
    return one_step("euler", _taylor(1), "|1 + z| <= 1")


def _heun() -> StabilityRegion:
    return one_step("heun", _taylor(2), "|1 + z + z²/2| <= 1")


def _midpoint() -> StabilityRegion:
    return one_step("midpoint", _taylor(2), "|1 + z + z²/2| <= 1")


def _rk4() -> StabilityRegion:
    return one_step("rk4", _taylor(4), "|1 + z + z²/2 + z³/6 + z⁴/24| <= 1")


def _polynet(terms: int = 2) -> StabilityRegion:
    if isinstance(terms, bool) or not isinstance(terms, int) or terms < 1:
        raise ValueError(f"polynet: terms must be an integer >= 1, got {terms!r}")
    return one_step(f"polynet(terms={terms})", [1.0] * (terms + 1), f"|1 + z + ... + z^{terms}| <= 1")


def _ab2() -> StabilityRegion:
    # x_{n+2} - x_{n+1} = h (3/2 f_{n+1} - 1/2 f_n)
    return multistep("ab2", [0.0, -1.0, 1.0], [-0.5, 1.5], "roots of ζ² - (1 + 3z/2) ζ + z/2")


def _lm2(k: float = 0.0) -> StabilityRegion:
    # x_{n+2} = (1 - k) x_{n+1} + k x_n + h f_{n+1}:  ρ(ζ) = ζ² - (1 - k) ζ - k = (ζ - 1)(ζ + k), σ(ζ) = ζ
    try:
        k = float(k)
    except (TypeError, ValueError):
        raise ValueError(f"lm2: k must be a real number, got {k!r}") from None
    if not math.isfinite(k):
        raise ValueError(f"lm2: k must be finite, got {k}")
    return multistep(f"lm2(k={k:g})", [-k, -(1.0 - k), 1.0], [0.0, 1.0], f"roots of ζ² - (1 - k + z) ζ - k, k = {k:g}")


def _partitioned(name: str) -> Callable[[], StabilityRegion]:
    def build() -> StabilityRegion:
        # on x' = a y, y' = b x both schemes have an area-preserving step matrix with trace 2 + h² ab
        coeffs = np.zeros((3, 3), dtype=complex)
        coeffs[0] = [1.0, -2.0, 1.0]
        coeffs[2, 1] = -1.0
        return StabilityRegion(
            name,
            coeffs,
            "partitioned",
            "roots of ζ² - (2 + z²) ζ + 1 with z² = h² ab on x' = a y, y' = b x: the segment z in i[-2, 2], "
            "open at ±2i; z = 0 fails the root condition (double root 1: linear growth when ab = 0)",
        )

    return build


_REGIONS: dict[str, Callable[..., StabilityRegion]] = {
    "euler": _euler,
    "heun": _heun,
    "midpoint": _midpoint,
    "rk4": _rk4,
    "polynet": _polynet,
    "ab2": _ab2,
    "lm2": _lm2,
    "revnet": _partitioned("revnet"),
    "leapfrog": _partitioned("leapfrog"),
}

_STOCHASTIC_HINT = {
    "euler_maruyama": "its noise-free (eval-mode) step is euler: use stability_region('euler')",
}


def known_schemes() -> list[str]:
    """Scheme names that have a stability region here."""
    return sorted(_REGIONS)


def _canonical(scheme: str) -> str:
    from ..schemes import canonical

    return canonical(scheme)  # ValueError naming the registered schemes


def stability_region(scheme, **options) -> StabilityRegion:
    """The region of absolute stability of a registered deterministic scheme.

    Args:
        scheme: a registered name or alias (``"euler"``, ``"resnet"``, ``"rk4"``, ``"lm2"``, ...) or
            a built :class:`~contdepth.schemes.Scheme` (its ``terms`` are read; lm2's ``k`` must be given).
        **options: ``k`` for lm2 (one value; default 0), ``terms`` for polynet (default 2).

    Raises ``ValueError`` for a stochastic or unknown scheme and for options it does not take.
    """
    from ..schemes import Scheme

    if isinstance(scheme, Scheme):
        name = type(scheme).name
        if name == "polynet" and "terms" not in options:
            options["terms"] = scheme.terms
        if name == "lm2" and "k" not in options:
            raise ValueError("lm2 has one k per block: pass stability_region(scheme, k=...) for the block's k")
    elif isinstance(scheme, str):
        name = _canonical(scheme)
    else:
        raise TypeError(f"scheme must be a registered name or a Scheme, got {type(scheme).__name__}")
    if name in _STOCHASTIC_HINT:
        raise ValueError(
            f"scheme {name!r} is stochastic and has no region of absolute stability; {_STOCHASTIC_HINT[name]}"
        )
    build = _REGIONS.get(name)
    if build is None:
        raise ValueError(f"no stability region is known for scheme {name!r}; known: {', '.join(known_schemes())}")
    try:
        return build(**options)
    except TypeError:
        raise ValueError(
            f"scheme {name!r} takes no options {sorted(options)}"
            if name not in ("lm2", "polynet")
            else f"scheme {name!r} takes only {'k' if name == 'lm2' else 'terms'}, got {sorted(options)}"
        ) from None


def region_of_step(scheme, t_mid: float | None = None, noise_off: bool = True) -> StabilityRegion:
    """The region that governs one step of a flow run by ``scheme`` (a built scheme) at time ``t_mid``.

    lm2 uses the k of the interval holding ``t_mid``; a scheme whose noise is off (eval mode) is
    judged by its deterministic step (``euler_maruyama`` -> ``euler``).
    """
    name = type(scheme).name
    if name == "euler_maruyama" and noise_off:
        return stability_region("euler")
    if name == "lm2":
        if getattr(scheme, "per_channel", None):
            raise ValueError("lm2 with one k per channel has no scalar stability region")
        k = 0.0 if not scheme.breaks else float(scheme.k.detach()[scheme.interval(t_mid or 0.0)])
        return stability_region("lm2", k=k)
    return stability_region(scheme)
