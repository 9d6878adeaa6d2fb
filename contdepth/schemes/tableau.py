"""Butcher tableaux of explicit Runge–Kutta methods, in exact rational arithmetic.

A tableau with ``s`` stages says how one step is taken::

    k_i = f(t + c_i h, u + h Σ_{j<i} a_ij k_j),    u_next = u + h Σ_i b_i k_i,    c_i = Σ_j a_ij

and, from the same numbers, what the step does to ``u' = λu`` (its stability polynomial) and which
order conditions it meets. :class:`~contdepth.schemes.ExplicitRungeKutta` turns a tableau into a scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

#: an entry of a tableau: an exact number (``1``, ``Fraction(1, 6)``, ``"1/6"``) or a float (taken exactly)
Entry = int | float | Fraction | str

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _exact(value: Entry) -> Fraction:
    if isinstance(value, bool):
        raise TypeError(f"a tableau entry must be a number or a fraction such as '1/6', got {value!r}")
    try:
        return Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise TypeError(f"a tableau entry must be a number or a fraction such as '1/6', got {value!r}") from None


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge–Kutta method as its coefficients (exact fractions).

    Args:
        a: one row per stage, row ``i`` (from 0) holding the ``i`` weights ``a_ij`` of the earlier
            stages: ``[[], ["1/2"], [0, "1/2"], [0, 0, 1]]`` for the classical RK4.
        b: the weights of the stages in the update, one per stage.

    The nodes are the row sums, ``c_i = Σ_j a_ij`` (so every stage is consistent to first order).
    """

    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    _floats: tuple[tuple[tuple[float, tuple[float, ...]], ...], tuple[float, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __init__(self, a: Sequence[Sequence[Entry]], b: Sequence[Entry]) -> None:
        rows = tuple(tuple(_exact(x) for x in row) for row in a)
        weights = tuple(_exact(x) for x in b)
        if not weights:
            raise ValueError("a Butcher tableau needs at least one stage")
        if len(rows) != len(weights):
            raise ValueError(
                f"the tableau has {len(rows)} rows of a but {len(weights)} weights b; give one of each per stage"
            )
        for i, row in enumerate(rows):
            if len(row) != i:
                raise ValueError(
                    f"row {i} of a has {len(row)} entries; an explicit method's row i holds the i weights of the "
                    "stages before it (row 0 is empty)"
                )
        object.__setattr__(self, "a", rows)
        object.__setattr__(self, "b", weights)
        stages = tuple((float(sum(row, Fraction(0))), tuple(float(x) for x in row)) for row in rows)
        object.__setattr__(self, "_floats", (stages, tuple(float(x) for x in weights)))

    @property
    def stages(self) -> int:
        """The number of stages ``s`` (drift evaluations per step)."""
        return len(self.b)

    @property
    def c(self) -> tuple[Fraction, ...]:
        """The nodes ``c_i = Σ_j a_ij``: stage ``i`` evaluates the field at ``t + c_i h``."""
        return tuple(sum(row, Fraction(0)) for row in self.a)

    @property
    def float_stages(self) -> tuple[tuple[float, tuple[float, ...]], ...]:
        """``(c_i, (a_i0, ..., a_i,i-1))`` per stage as floats, for the step."""
        return self._floats[0]

    @property
    def float_weights(self) -> tuple[float, ...]:
        """``b`` as floats, for the step."""
        return self._floats[1]

    def _a_times(self, v: Sequence[Fraction]) -> tuple[Fraction, ...]:
        return tuple(sum((x * y for x, y in zip(row, v, strict=False)), Fraction(0)) for row in self.a)

    def _b_dot(self, v: Sequence[Fraction]) -> Fraction:
        return sum((x * y for x, y in zip(self.b, v, strict=True)), Fraction(0))

    def stability_polynomial(self) -> tuple[Fraction, ...]:
        """``R(z) = 1 + z bᵀ(I - zA)⁻¹ 1`` as coefficients, lowest power first: ``R`` is what one step
        does to ``u' = λu`` (``u_next = R(hλ) u``). ``A`` is nilpotent, so ``R`` has degree at most
        ``s``: its coefficients are ``1`` and ``bᵀ A^j 1`` (trailing zeros dropped)."""
        coeffs = [Fraction(1)]
        v: tuple[Fraction, ...] = (Fraction(1),) * self.stages
        for _ in range(self.stages):
            coeffs.append(self._b_dot(v))
            v = self._a_times(v)
        while len(coeffs) > 2 and coeffs[-1] == 0:
            coeffs.pop()
        return tuple(coeffs)

    def order_conditions(self, order: int) -> list[str]:
        """The order conditions up to ``order`` (at most 4) that the tableau fails, as text; empty when
        it meets them all, i.e. when its local error is O(h^(order+1)) on every smooth ODE."""
        if not 1 <= order <= 4:
            raise ValueError(f"order conditions are written out up to order 4, asked for {order}")
        c = self.c
        c2 = [x * x for x in c]
        ac = self._a_times(c)
        conditions = [
            (1, "Σ b = 1", self._b_dot([Fraction(1)] * self.stages), Fraction(1)),
            (2, "Σ b c = 1/2", self._b_dot(c), Fraction(1, 2)),
            (3, "Σ b c² = 1/3", self._b_dot(c2), Fraction(1, 3)),
            (3, "Σ b A c = 1/6", self._b_dot(ac), Fraction(1, 6)),
            (4, "Σ b c³ = 1/4", self._b_dot([x * y for x, y in zip(c2, c, strict=True)]), Fraction(1, 4)),
            (4, "Σ b c A c = 1/8", self._b_dot([x * y for x, y in zip(c, ac, strict=True)]), Fraction(1, 8)),
            (4, "Σ b A c² = 1/12", self._b_dot(self._a_times(c2)), Fraction(1, 12)),
            (4, "Σ b A A c = 1/24", self._b_dot(self._a_times(ac)), Fraction(1, 24)),
        ]
        return [f"{text} (it is {value})" for p, text, value, want in conditions if p <= order and value != want]

    def polynomial_text(self) -> str:
        """The stability polynomial written out: ``1 + z + z²/2 + z³/6``."""
        text = ""
        for power, coeff in enumerate(self.stability_polynomial()):
            if coeff == 0:
                continue
            sign = "-" if coeff < 0 else "+"
            num, den = abs(coeff.numerator), coeff.denominator
            z = "" if power == 0 else "z" + (str(power).translate(_SUPERSCRIPT) if power > 1 else "")
            if not z:
                term = str(num) + (f"/{den}" if den != 1 else "")
            else:
                term = (f"{num}" if num != 1 else "") + z + (f"/{den}" if den != 1 else "")
            text += (f" {sign} " if text else ("-" if sign == "-" else "")) + term
        return text or "0"
