"""Checks shared by the public entry points, each written once: numbers, intervals, states, counts,
keyword options, the piece (block) that owns a time, and the close match named in an error."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Protocol

from torch import Tensor


class Field(Protocol):
    """What these checks read of a field (:class:`contdepth.fields.Field` has it), named here so that this
    leaf module imports nothing of the package."""

    @property
    def horizon(self) -> float | None: ...

    def breakpoints(self) -> tuple[float, ...]: ...

    def piece(self, t: float) -> int: ...


def close_matches(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` choices close to ``word`` (difflib), else one that differs from it only in case."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=n, cutoff=cutoff)
    if not close:  # catches a wrong case too: K -> k
        close = [c for c in choices if c.lower() == str(word).lower()][:1]
    return close


def check_options(owner: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise ``TypeError`` naming the valid options (and the closest one) for any unknown option."""
    valid = list(valid)
    for name in given:
        if name in valid:
            continue
        close = close_matches(name, valid)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        choices = ", ".join(valid) if valid else "none"
        raise TypeError(f"{owner}: unknown option {name!r}{hint}; valid options: {choices}")


#: how a net's block weights depend on depth: ``blocks`` (piecewise constant, a ResNet) or ``linear`` (knots
#: at the blocks' left ends, interpolated linearly between them: :class:`contdepth.fields.Interpolated`)
DEPTH_BASES = ("blocks", "linear")


def depth_basis(value: object) -> str:
    """``value`` if it names a depth basis, or a one-line error listing them."""
    if value not in DEPTH_BASES:
        raise ValueError(f"unknown depth_basis {value!r}; choose one of: {', '.join(DEPTH_BASES)}")
    return str(value)


def number(name: str, value: object) -> float:
    """``value`` as a float, or a one-line error naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (numbers.Real, Tensor))
        or (isinstance(value, Tensor) and value.numel() != 1)
    ):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def positive(name: str, value: object) -> float:
    """``value`` as a positive finite float, or a one-line error naming ``name``."""
    result = number(name, value)
    if not (math.isfinite(result) and result > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return result


def interval(field: Field, t0: object, t1: object) -> tuple[float, float]:
    """``(t0, t1)`` as finite floats with ``t1 > t0``; ``t1`` defaults to the field's horizon."""
    t0 = number("t0", t0)
    if t1 is None:
        t1 = field.horizon
        if t1 is None:
            raise ValueError("t1 is required for a field without a natural horizon (a Tied field)")
    t1 = number("t1", t1)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"t0 and t1 must be finite, got t0={t0}, t1={t1}")
    if t1 <= t0:
        raise ValueError(f"t1 must be greater than t0, got t0={t0}, t1={t1}")
    return t0, t1


def state(u0: object, complex_ok: bool = False) -> Tensor:
    """The initial state: a floating-point (or, where ``complex_ok``, complex) tensor, batch dimension first."""
    if not isinstance(u0, Tensor):
        raise TypeError(f"the initial state must be a tensor, got {type(u0).__name__}")
    if u0.dim() < 1:
        raise ValueError("the initial state needs a batch dimension first")
    if not (u0.is_floating_point() or (complex_ok and u0.is_complex())):
        kinds = "floating point (or complex)" if complex_ok else "floating point"
        raise TypeError(f"states must be {kinds}, got dtype {u0.dtype}; convert with u0.float()")
    return u0


def count(
    name: str, value: object, multiple_of: int = 1, unit: str = "", maximum: int | None = None, why: str = ""
) -> int:
    """``value`` as an integer >= 1 (a multiple of ``multiple_of``, the number of ``unit``; at most ``maximum``,
    for the reason ``why``), or a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1 or value % multiple_of:
        need = ">= 1" if multiple_of == 1 else f"a positive multiple of {unit}={multiple_of}"
        raise ValueError(f"{name} must be {need}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}" + (f": {why}" if why else ""))
    return value


def piece_of(t: float, breaks: Sequence[float]) -> int:
    """Index of the piece of ``breaks`` (sorted times) that owns ``t``: pieces are left-closed, the
    first and last extended to all times before and after; 0 with fewer than two breaks."""
    index = 0  # a plain loop rather than bisect: torch.compile traces it without a graph break
    for b in breaks[1:-1]:
        if t >= b:
            index += 1
    return index


def sub_piece(sub: Field, breaks: Sequence[float], piece: int | None) -> int | None:
    """The piece of ``sub`` that owns piece ``piece`` of ``breaks`` (located by its midpoint); ``None``
    when no piece is given or either side has no pieces."""
    if piece is None or len(breaks) < 2 or len(sub.breakpoints()) < 2:
        return None
    return sub.piece(0.5 * (breaks[piece] + breaks[piece + 1]))
