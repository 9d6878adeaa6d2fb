"""Keyword options checked against the valid ones, with a close match named in the error."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def check_options(owner: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise ``TypeError`` naming the valid options (and the closest one) for any unknown option."""
    valid = list(valid)
    for name in given:
        if name in valid:
            continue
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        if not close:  # catches a wrong case too: K -> k
            close = [v for v in valid if v.lower() == str(name).lower()][:1]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        choices = ", ".join(valid) if valid else "none"
        raise TypeError(f"{owner}: unknown option {name!r}{hint}; valid options: {choices}")
