"""The characteristic polynomial of a scheme's step on the test equation ``u' = λu``.

With ``z = hλ`` a step is a linear recurrence; its characteristic polynomial is
``P(ζ; z) = Σ_ij c[i][j] z^i ζ^j``, with one root ζ per step of history. Each scheme gives its own
(:meth:`~contdepth.schemes.Scheme.characteristic`), and
:func:`contdepth.analysis.stability_region` turns it into the scheme's region of absolute stability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

KINDS = ("one-step", "multistep", "partitioned")


@dataclass(frozen=True)
class Characteristic:
    """``P(ζ; z) = Σ_ij coeffs[i][j] z^i ζ^j`` of one scheme, its options fixed.

    Attributes:
        coeffs: rows by power of ``z``, columns by power of ``ζ`` (lowest first).
        kind: ``"one-step"``, ``"multistep"`` or ``"partitioned"``.
        note: what the polynomial (or the region) is, in one line.
        options: the scheme options it was built with (``{"k": -0.2}`` for lm2), named in the region.
    """

    coeffs: tuple[tuple[float, ...], ...]
    kind: str
    note: str = ""
    options: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not self.coeffs or len({len(row) for row in self.coeffs}) != 1 or len(self.coeffs[0]) < 2:
            raise ValueError("coeffs must be a rectangular table with at least one power of ζ (two columns)")

    @classmethod
    def one_step(cls, r: Sequence[float], note: str = "", **options: float) -> Characteristic:
        """``P = ζ - R(z)`` of a one-step scheme with stability function ``R(z) = Σ r_i z^i`` (lowest first)."""
        rows = [(-float(c), 0.0) for c in r]
        rows[0] = (rows[0][0], 1.0)
        return cls(tuple(rows), "one-step", note, dict(options))

    @classmethod
    def multistep(
        cls, rho: Sequence[float], sigma: Sequence[float], note: str = "", **options: float
    ) -> Characteristic:
        """``ρ(ζ) - z σ(ζ)`` of the linear multistep scheme ``Σ ρ_j x_{n+j} = h Σ σ_j f_{n+j}`` (lowest first)."""
        degree = max(len(rho), len(sigma))
        rows = (
            tuple(float(c) for c in [*rho, *[0.0] * (degree - len(rho))]),
            tuple(-float(c) for c in [*sigma, *[0.0] * (degree - len(sigma))]),
        )
        return cls(rows, "multistep", note, dict(options))


def taylor(order: int) -> list[float]:
    """``[1, 1, 1/2, ..., 1/order!]``: the stability function of an explicit Runge–Kutta method of
    ``order`` stages and order (up to 4)."""
    return [1.0 / math.factorial(j) for j in range(order + 1)]
