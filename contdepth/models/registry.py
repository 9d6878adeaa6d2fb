"""Named models: ``@register_model`` on a builder, ``available()``, ``get(name, ...)``, ``describe(name)``.

A builder is registered under its function's name with what the table of models shows:

>>> @register_model(depth=20, family="preact_resnet", scheme="euler")       # doctest: +SKIP
... def preact_resnet20(**kw: Any) -> ResidualNet:
...     return resnet(20, preact=True, **kw)

Trained weights are asked for by name: ``get("preact_resnet20", pretrained=True)`` (the model's default
weights) or ``get("preact_resnet20.cifar10_cpu_s1", pretrained=True)``; :mod:`contdepth.pretrained` keeps them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .._checks import close_matches
from .stage import ResidualNet

Builder = Callable[..., ResidualNet]


@dataclass(frozen=True)
class Entry:
    """A named model: ``build(scheme=, noise=, num_classes=, steps_per_block=, **kw)`` and its defaults."""

    build: Builder
    depth: int
    family: str
    scheme: str
    noise: str | None = None
    dataset: str = "cifar"

    @property
    def num_classes(self) -> int:
        """The class count of the published network: 1000 on ImageNet, 10 on CIFAR."""
        return 1000 if self.dataset == "imagenet" else 10


_MODELS: dict[str, Entry] = {}


def register_model(
    *, depth: int, family: str, scheme: str, noise: str | None = None, dataset: str = "cifar"
) -> Callable[[Builder], Builder]:
    """Decorator: register a builder under its function's name (lower case) with its depth, family, default
    scheme and noise and its data set (``cifar`` or ``imagenet``); ``ValueError`` for a taken name."""

    def wrap(build: Builder) -> Builder:
        name = build.__name__.lower()
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = Entry(build, depth, family, scheme, noise, dataset)
        return build

    return wrap


def available() -> list[str]:
    """Every model name, in registration order (CIFAR first, then ImageNet)."""
    return list(_MODELS)


def list_models(*, pretrained: bool = False) -> list[str]:
    """Every model name (:func:`available`) or, with ``pretrained``, every name with trained weights
    (``model.tag``, such as ``preact_resnet20.cifar10_cpu_s0``), each model's default first."""
    if not pretrained:
        return available()
    from ..pretrained import pretrained_names  # deferred: trained weights are read through the layers above

    return pretrained_names()


def _entry(name: str) -> Entry:
    if not isinstance(name, str) or name.lower() not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _MODELS[name.lower()]


def default_scheme(name: str) -> str:
    """The scheme a named model is built with when given none (a registered name)."""
    return _entry(name).scheme


#: options of :func:`get` beyond ``num_classes``, ``scheme``, ``noise`` and ``steps_per_block``
EXTRA_OPTIONS = ("scheme_options", "checkpoint", "depth_basis")


def get(
    name: str,
    *,
    num_classes: int | None = None,
    scheme: str | None = None,
    noise: str | None = None,
    steps_per_block: int | None = None,
    **kw: Any,
) -> ResidualNet:
    """Build a named model. ``scheme``/``noise`` override its defaults (``noise="none"`` turns a
    shake-shake model's noise off); ``**kw``: ``scheme_options`` (dict for every stage's scheme),
    ``checkpoint`` (per-step activation checkpointing), ``depth_basis`` (``blocks`` or ``linear``: weights
    interpolated in depth). ``num_classes`` defaults to the published
    network's: 1000 for ImageNet names, 10 for CIFAR ones; ``steps_per_block`` to 1.

    ``pretrained=True`` (keyword): the trained net the project ships under ``name`` (a model's default weights,
    or ``model.tag`` from ``list_models(pretrained=True)``), on the CPU in eval mode, in float32; ``scheme`` and
    ``steps_per_block`` re-discretise it (default: as trained). See :func:`contdepth.pretrained.load_pretrained`."""
    pretrained = kw.pop("pretrained", False)  # in **kw: callers pass build options as **dict[str, str]
    if not isinstance(pretrained, bool):
        raise TypeError(f"get({name!r}): pretrained must be True or False, got {pretrained!r}")
    if pretrained or (isinstance(name, str) and "." in name):
        if not pretrained:
            raise ValueError(
                f"{name!r} names trained weights: pass pretrained=True, or {name.partition('.')[0]!r} for an "
                "untrained net"
            )
        from ..pretrained import load_pretrained  # deferred: trained weights are read through the layers above

        return load_pretrained(
            name, scheme=scheme, steps_per_block=steps_per_block, num_classes=num_classes, noise=noise, **kw
        )
    entry = _entry(name)
    unknown = sorted(set(kw) - set(EXTRA_OPTIONS))
    if unknown:
        options = ["num_classes", "scheme", "noise", "steps_per_block", *EXTRA_OPTIONS, "pretrained"]
        close = close_matches(unknown[0], options)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"get({name!r}): unknown option {unknown[0]!r}{hint} (options: {', '.join(options)})")
    return entry.build(
        scheme=entry.scheme if scheme is None else scheme,
        noise=entry.noise if noise is None else noise,
        num_classes=entry.num_classes if num_classes is None else num_classes,
        steps_per_block=1 if steps_per_block is None else steps_per_block,
        **kw,
    )


@functools.cache
def _count(name: str) -> int:
    try:
        with torch.device("meta"):  # counts shapes without allocating or initialising weights
            model = get(name)
    except (NotImplementedError, RuntimeError):
        model = get(name)
    return sum(p.numel() for p in model.parameters())


def describe(name: str) -> dict:
    """``dict(name, depth, params, scheme, family, noise, dataset, num_classes)``; ``params`` for
    10 classes (ImageNet names: 1000), LM's k included."""
    entry = _entry(name)
    return dict(
        name=name.lower(),
        depth=entry.depth,
        params=_count(name.lower()),
        scheme=entry.scheme,
        family=entry.family,
        noise=entry.noise or "none",
        dataset=entry.dataset,
        num_classes=entry.num_classes,
    )
