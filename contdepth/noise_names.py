"""The one vocabulary of noise names: each noise law's canonical name and the other spellings of it.

The noise laws (:func:`contdepth.noise.get_law`, :class:`contdepth.Noise`, a scheme's ``noise=``),
the model zoo's noise specs (``sd:P``, ``gaussian:SIGMA``, ``shake``) and the toy's noise variants
all read a name through :func:`law_name`, so a spelling names the same law everywhere; each of them
then says which laws it offers and under which name of its own (a spec's ``sd``, the toy's
``stochastic_depth``).
"""

from __future__ import annotations

#: canonical law name -> the other spellings of it
LAW_ALIASES: dict[str, tuple[str, ...]] = {
    "gaussian": ("normal", "gauss"),
    "rademacher": (),
    "uniform": ("shake", "shake_shake"),
    "bernoulli": ("two_point", "stochastic_depth", "sd"),
}

#: spellings of "no noise" (where a choice of noise may be none)
NO_NOISE = ("none", "off")

_CANONICAL = {spelling: law for law, aliases in LAW_ALIASES.items() for spelling in (law, *aliases)}


def law_names() -> list[str]:
    """Every spelling of a law, canonical names and aliases, sorted."""
    return sorted(_CANONICAL)


def law_name(spelling: object) -> str | None:
    """The canonical law that ``spelling`` names (case and surrounding spaces ignored), or ``None``."""
    if not isinstance(spelling, str):
        return None
    return _CANONICAL.get(spelling.strip().lower())


def is_no_noise(spelling: object) -> bool:
    """Whether ``spelling`` says "no noise" (``none``, ``off``, or an empty string)."""
    return isinstance(spelling, str) and spelling.strip().lower() in ("", *NO_NOISE)
