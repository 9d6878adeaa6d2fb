"""Scheme registry: names -> scheme classes, ``get`` builds one, ``available`` lists them and
``registered`` asks the classes what they can do.

A new scheme is one module with a :class:`~.base.Scheme` subclass (its ``step``, its declared orders
and noise support, and :meth:`~.base.Scheme.characteristic`; or an
:class:`~.explicit_rk.ExplicitRungeKutta` with its tableau) decorated with
``@register("name", *aliases)``, imported in ``contdepth/schemes/__init__.py``; flows, models and
stability regions find it by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._checks import check_options
from .base import Scheme

#: the class attributes :func:`registered` selects by
CAPABILITIES = (
    "supports_noise",
    "multistep",
    "invertible",
    "requires_coupled",
    "has_momentum",
    "ode_order",
    "strong_order",
    "weak_order",
    "noise_free",
)

_REGISTRY: dict[str, type[Scheme]] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *aliases: str) -> Callable[[type[Scheme]], type[Scheme]]:
    """Class decorator: register a scheme under ``name`` and optional aliases.

    Raises ``TypeError`` for a class that does not declare its orders and noise support
    (:data:`~.base.DECLARED`, see :meth:`~.base.Scheme.check_declared`) and ``ValueError`` for a taken name.
    """

    def wrap(cls: type[Scheme]) -> type[Scheme]:
        for key in (name, *aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"scheme name {key!r} is already registered")
        cls.name = name
        cls.check_declared()
        _REGISTRY[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return wrap


def available() -> list[str]:
    """Registered scheme names (aliases included), sorted."""
    return sorted([*_REGISTRY, *_ALIASES])


def registered(**capabilities: object) -> list[str]:
    """Canonical names of the registered schemes whose class attributes have the given values, sorted:
    ``registered(supports_noise=True)`` (the schemes that take noise), ``registered(invertible=True)``;
    with no arguments, every scheme. Attributes: those of :data:`CAPABILITIES`."""
    check_options("registered()", capabilities, CAPABILITIES)
    return sorted(name for name, cls in _REGISTRY.items() if all(getattr(cls, k) == v for k, v in capabilities.items()))


def canonical(name: str) -> str:
    """The registered name behind ``name`` or an alias of it."""
    key = name.lower() if isinstance(name, str) else name
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise ValueError(f"unknown scheme {name!r}; available: {', '.join(available())}")
    return key


def scheme_class(name: str) -> type[Scheme]:
    """The class registered under ``name`` or an alias of it."""
    return _REGISTRY[canonical(name)]


def get(scheme: str | Scheme, **options: Any) -> Scheme:
    """A new scheme by name with options (``get("lm2", k=-0.05, learnable=False)``), or ``scheme`` as given."""
    if isinstance(scheme, Scheme):
        if options:
            raise ValueError("options were given for a scheme that is already built")
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a name or a Scheme, got {type(scheme).__name__}")
    cls = scheme_class(scheme)
    params = inspect.signature(cls.__init__).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):  # schemes taking law options check their own
        check_options(f"scheme {cls.name!r}", options, [p.name for p in params if p.name != "self"])
    try:
        return cls(**options)
    except TypeError as err:
        if str(err).startswith(f"scheme {cls.name!r}"):
            raise
        raise TypeError(f"scheme {cls.name!r}: {err}") from None
