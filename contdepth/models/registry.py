"""Named models: ``available()``, ``get(name, ...)``, ``describe(name)``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import close_matches
from .cifar import resnet, resnext, shake_resnet
from .imagenet import imagenet_resnet
from .stage import ResidualNet


@dataclass(frozen=True)
class Entry:
    """A named model: ``build(scheme=, noise=, num_classes=, steps_per_block=, **kw)`` and its defaults."""

    build: Callable[..., ResidualNet]
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


def _add(name: str, entry: Entry) -> None:
    _MODELS[name] = entry


for _d in (20, 32, 44, 56, 110, 1202):
    _add(f"resnet{_d}", Entry(functools.partial(resnet, _d, preact=False), _d, "resnet", "euler"))
for _d in (20, 32, 44, 56, 110, 164, 1202):
    _add(f"preact_resnet{_d}", Entry(functools.partial(resnet, _d, preact=True), _d, "preact_resnet", "euler"))
_add("resnet164", Entry(functools.partial(resnet, 164, preact=True), 164, "preact_resnet", "euler"))
for _d in (20, 32, 44, 56, 110, 164):
    _add(f"lm_resnet{_d}", Entry(functools.partial(resnet, _d, preact=True), _d, "lm_resnet", "lm2"))
for _d, _w in ((20, 16), (26, 32), (26, 64), (26, 96)):
    _add(
        f"shake_resnet{_d}_2x{_w}d",
        Entry(functools.partial(shake_resnet, _d, _w), _d, "shake_shake", "euler_maruyama", "shake"),
    )
for _c in (8, 16):
    _add(f"resnext29_{_c}x64d", Entry(functools.partial(resnext, 29, _c, 64), 29, "resnext", "euler"))
    _add(f"lm_resnext29_{_c}x64d", Entry(functools.partial(resnext, 29, _c, 64), 29, "lm_resnext", "lm2"))
for _d in (50, 101):
    _add(
        f"resnet{_d}", Entry(functools.partial(imagenet_resnet, _d), _d, "imagenet_resnet", "euler", dataset="imagenet")
    )
    _add(
        f"lm_resnet{_d}",
        Entry(functools.partial(imagenet_resnet, _d), _d, "imagenet_lm_resnet", "lm2", dataset="imagenet"),
    )


def available() -> list[str]:
    """Every model name, in registration order (CIFAR first, then ImageNet)."""
    return list(_MODELS)


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
    steps_per_block: int = 1,
    **kw,
) -> ResidualNet:
    """Build a named model. ``scheme``/``noise`` override its defaults (``noise="none"`` turns a
    shake-shake model's noise off); ``**kw``: ``scheme_options`` (dict for every stage's scheme),
    ``checkpoint`` (per-step activation checkpointing), ``depth_basis`` (``blocks`` or ``linear``: weights
    interpolated in depth). ``num_classes`` defaults to the published
    network's: 1000 for ImageNet names, 10 for CIFAR ones."""
    entry = _entry(name)
    unknown = sorted(set(kw) - set(EXTRA_OPTIONS))
    if unknown:
        options = ["num_classes", "scheme", "noise", "steps_per_block", *EXTRA_OPTIONS]
        close = close_matches(unknown[0], options)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"get({name!r}): unknown option {unknown[0]!r}{hint} (options: {', '.join(options)})")
    return entry.build(
        scheme=entry.scheme if scheme is None else scheme,
        noise=entry.noise if noise is None else noise,
        num_classes=entry.num_classes if num_classes is None else num_classes,
        steps_per_block=steps_per_block,
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
