"""Keyword options checked against the valid ones, with a close match named in the error."""

from __future__ import annotations

from collections.abc import Iterable

from ._checks import close_matches


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
