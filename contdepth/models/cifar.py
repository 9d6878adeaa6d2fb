"""CIFAR models (32x32 inputs; any size works through adaptive pooling).

* :func:`resnet` — depth ``6n+2`` (basic) or ``9n+2`` (bottleneck), plain (He et al. 2015:
  post-activation, option-A shortcut, ReLU after the addition) or pre-activation (He et al. 2016:
  1x1 projection of the pre-activated input at stage transitions). LM-ResNet is ``scheme="lm2"``.
* :func:`shake_resnet` — shake-shake ResNet-26 2xWd (Gastaldi 2017) as an Euler–Maruyama SDE.
* :func:`resnext` — ResNeXt-29 CxDd (Xie et al. 2017), post-activation grouped bottlenecks.

Three stages at widths ``(16, 32, 64)`` (ResNeXt ``(256, 512, 1024)``), strides 1, 2, 2. Every
stage is a :class:`~.stage.Stage`: a transition (its first block; identity shortcut where the
space does not change), then a flow whose multistep history starts from the shortcut.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from torch import nn

from .blocks import (
    BasicBranch,
    BottleneckBranch,
    PadShortcut,
    PreActBasicBranch,
    PreActBottleneckBranch,
    ShakeBranchPair,
    ShakeShortcut,
    conv3x3,
    init_weights,
    projection,
)
from .registry import register_model
from .stage import ResidualNet, StagePlan

BranchFn = Callable[[int, int], nn.Module]  # (c_in, stride) -> branch


def check_sizes(**sizes: object) -> None:
    """Raise ``ValueError`` naming the first of ``sizes`` (depth, width, num_classes, ...) not an integer >= 1."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_flags(**flags: object) -> None:
    """Raise ``TypeError`` naming the first of ``flags`` that is not a bool (None allowed where it means "auto")."""
    for name, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")


def head(c: int, num_classes: int, preact: bool = False) -> nn.Sequential:
    """(BN-ReLU if pre-activation) - global average pool - linear: ``(B, c, H, W) -> (B, num_classes)``."""
    check_sizes(num_classes=num_classes)
    layers: list[nn.Module] = [nn.BatchNorm2d(c), nn.ReLU()] if preact else []
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))


def _blocks_per_stage(depth: int, bottleneck: bool | None) -> tuple[int, bool]:
    fits6, fits9 = depth >= 8 and (depth - 2) % 6 == 0, depth >= 11 and (depth - 2) % 9 == 0
    if bottleneck is None:
        bottleneck = depth == 164 or (fits9 and not fits6)
    if bottleneck and not fits9:
        raise ValueError(f"a bottleneck CIFAR ResNet has depth 9n+2 (11, 20, ..., 164), got {depth}")
    if not bottleneck and not fits6:
        raise ValueError(
            f"a basic CIFAR ResNet has depth 6n+2 (8, 14, 20, ...); 9n+2 takes bottleneck=True; got {depth}"
        )
    return (depth - 2) // (9 if bottleneck else 6), bottleneck


def resnet(
    depth: int,
    scheme: str = "euler",
    preact: bool = True,
    noise: str | None = None,
    num_classes: int = 10,
    steps_per_block: int = 1,
    bottleneck: bool | None = None,
    *,
    scheme_options: dict | None = None,
    checkpoint: bool = False,
    depth_basis: str = "blocks",
) -> ResidualNet:
    """CIFAR ResNet of ``depth`` = 6n+2 (basic) or 9n+2 (bottleneck; default at 164 and where 6n+2
    does not fit). ``preact=False`` is He et al. 2015 (option-A shortcut; a post-activation
    bottleneck uses a projection). ``noise``: see :mod:`.noise_spec`. ``scheme_options`` go to every
    stage's scheme (``{"k": 0.0, "learnable": False}`` for lm2). ``depth_basis``: ``blocks`` (a ResNet) or
    ``linear`` (weights continuous in depth, :class:`~contdepth.fields.Interpolated`)."""
    check_sizes(depth=depth, num_classes=num_classes)
    check_flags(preact=preact, bottleneck=bottleneck)
    n, bottleneck = _blocks_per_stage(depth, bottleneck)
    plan = StagePlan(3 * n, scheme, noise, steps_per_block, scheme_options, checkpoint, depth_basis=depth_basis)
    stem: nn.Module = conv3x3(3, 16) if preact else nn.Sequential(conv3x3(3, 16), nn.BatchNorm2d(16), nn.ReLU())
    post = None if preact else nn.ReLU()
    stages, c_in = [], 16
    for i, width in enumerate((16, 32, 64)):
        stride, c_out = (1 if i == 0 else 2), (4 * width if bottleneck else width)
        branch = _resnet_branch(width, c_out, preact, bottleneck)
        if stride == 1 and c_in == c_out:
            shortcut: nn.Module = nn.Identity()
        elif preact:
            shortcut = projection(c_in, c_out, stride, bn=False)
        else:
            shortcut = projection(c_in, c_out, stride) if bottleneck else PadShortcut(c_in, c_out, stride)
        branches = [branch(c_in, stride)] + [branch(c_out, 1) for _ in range(n - 1)]
        stages.append(plan.stage(branches, shortcut, post=post))
        c_in = c_out
    model = ResidualNet(stem, stages, head(c_in, num_classes, preact), plan)
    init_weights(model)
    return model


def _resnet_branch(width: int, c_out: int, preact: bool, bottleneck: bool) -> BranchFn:
    if bottleneck:
        wide = PreActBottleneckBranch if preact else BottleneckBranch
        return lambda c_in, stride: wide(c_in, width, c_out, stride)
    basic = PreActBasicBranch if preact else BasicBranch
    return lambda c_in, stride: basic(c_in, c_out, stride)


def shake_resnet(
    depth: int = 26,
    width: int = 32,
    scheme: str = "euler_maruyama",
    noise: str | None = "shake",
    num_classes: int = 10,
    steps_per_block: int = 1,
    *,
    scheme_options: dict | None = None,
    checkpoint: bool = False,
    depth_basis: str = "blocks",
) -> ResidualNet:
    """Shake-shake ResNet ``depth``-2x``width``d: stages of (depth-2)/6 branch pairs at widths
    ``(w, 2w, 4w)``. Training draws ``η ~ U(0, 1)`` per sample and block for the forward pass and,
    with ``noise='shake'`` (default: Gastaldi's Shake-Shake-Image), an independent ``β`` of the same
    law for the backward; ``noise='shake:same'`` backpropagates through η. Eval uses the mean
    ``(F1+F2)/2``. ``noise='none'`` trains the mean field deterministically."""
    check_sizes(depth=depth, width=width, num_classes=num_classes)
    n, _ = _blocks_per_stage(depth, bottleneck=False)
    plan = StagePlan(
        3 * n, scheme, noise, steps_per_block, scheme_options, checkpoint, two_branch=True, depth_basis=depth_basis
    )
    stem = nn.Sequential(conv3x3(3, 16), nn.BatchNorm2d(16))
    stages, c_in = [], 16
    for i, c_out in enumerate((width, 2 * width, 4 * width)):
        stride = 1 if i == 0 else 2
        branches = [ShakeBranchPair(c_in, c_out, stride)] + [ShakeBranchPair(c_out, c_out) for _ in range(n - 1)]
        stages.append(plan.stage(branches, ShakeShortcut(c_in, c_out, stride)))
        c_in = c_out
    model = ResidualNet(stem, stages, nn.Sequential(nn.ReLU(), head(c_in, num_classes)), plan)
    init_weights(model)
    return model


def resnext(
    depth: int = 29,
    cardinality: int = 8,
    base_width: int = 64,
    scheme: str = "euler",
    noise: str | None = None,
    num_classes: int = 10,
    steps_per_block: int = 1,
    *,
    scheme_options: dict | None = None,
    checkpoint: bool = False,
    depth_basis: str = "blocks",
) -> ResidualNet:
    """ResNeXt-``depth`` ``cardinality``x``base_width``d for CIFAR: (depth-2)/9 grouped bottlenecks
    per stage, 3x3 width ``cardinality * base_width * 2^i``, outputs ``(256, 512, 1024)``."""
    check_sizes(depth=depth, cardinality=cardinality, base_width=base_width, num_classes=num_classes)
    n, _ = _blocks_per_stage(depth, bottleneck=True)
    plan = StagePlan(3 * n, scheme, noise, steps_per_block, scheme_options, checkpoint, depth_basis=depth_basis)
    stem = nn.Sequential(conv3x3(3, 64), nn.BatchNorm2d(64), nn.ReLU())
    stages, c_in = [], 64
    for i in range(3):
        stride, width, c_out = (1 if i == 0 else 2), cardinality * base_width * 2**i, 256 * 2**i
        branches = [BottleneckBranch(c_in, width, c_out, stride, cardinality)]
        branches += [BottleneckBranch(c_out, width, c_out, 1, cardinality) for _ in range(n - 1)]
        stages.append(plan.stage(branches, projection(c_in, c_out, stride), post=nn.ReLU()))
        c_in = c_out
    model = ResidualNet(stem, stages, head(c_in, num_classes), plan)
    init_weights(model)
    return model


# ------------------------------------------------------------------------------------------ named models
# Each builder below is a name of the zoo (``contdepth.models.get(name)``); ``**kw`` are those of its family's
# builder (scheme, noise, num_classes, steps_per_block, scheme_options, checkpoint, depth_basis).


@register_model(depth=20, family="resnet", scheme="euler")
def resnet20(**kw: Any) -> ResidualNet:
    """ResNet-20 (He et al. 2015: post-activation, option-A shortcut)."""
    return resnet(20, preact=False, **kw)


@register_model(depth=32, family="resnet", scheme="euler")
def resnet32(**kw: Any) -> ResidualNet:
    """ResNet-32 (He et al. 2015: post-activation, option-A shortcut)."""
    return resnet(32, preact=False, **kw)


@register_model(depth=44, family="resnet", scheme="euler")
def resnet44(**kw: Any) -> ResidualNet:
    """ResNet-44 (He et al. 2015: post-activation, option-A shortcut)."""
    return resnet(44, preact=False, **kw)


@register_model(depth=56, family="resnet", scheme="euler")
def resnet56(**kw: Any) -> ResidualNet:
    """ResNet-56 (He et al. 2015: post-activation, option-A shortcut)."""
    return resnet(56, preact=False, **kw)


@register_model(depth=110, family="resnet", scheme="euler")
def resnet110(**kw: Any) -> ResidualNet:
    """ResNet-110 (He et al. 2015: post-activation, option-A shortcut)."""
    return resnet(110, preact=False, **kw)


@register_model(depth=1202, family="resnet", scheme="euler")
def resnet1202(**kw: Any) -> ResidualNet:
    """ResNet-1202 (He et al. 2015: post-activation, option-A shortcut)."""
    return resnet(1202, preact=False, **kw)


@register_model(depth=20, family="preact_resnet", scheme="euler")
def preact_resnet20(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-20 (He et al. 2016), Euler steps."""
    return resnet(20, preact=True, **kw)


@register_model(depth=32, family="preact_resnet", scheme="euler")
def preact_resnet32(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-32 (He et al. 2016), Euler steps."""
    return resnet(32, preact=True, **kw)


@register_model(depth=44, family="preact_resnet", scheme="euler")
def preact_resnet44(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-44 (He et al. 2016), Euler steps."""
    return resnet(44, preact=True, **kw)


@register_model(depth=56, family="preact_resnet", scheme="euler")
def preact_resnet56(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-56 (He et al. 2016), Euler steps."""
    return resnet(56, preact=True, **kw)


@register_model(depth=110, family="preact_resnet", scheme="euler")
def preact_resnet110(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-110 (He et al. 2016), Euler steps."""
    return resnet(110, preact=True, **kw)


@register_model(depth=164, family="preact_resnet", scheme="euler")
def preact_resnet164(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-164 (He et al. 2016), Euler steps."""
    return resnet(164, preact=True, **kw)


@register_model(depth=1202, family="preact_resnet", scheme="euler")
def preact_resnet1202(**kw: Any) -> ResidualNet:
    """Pre-activation ResNet-1202 (He et al. 2016), Euler steps."""
    return resnet(1202, preact=True, **kw)


@register_model(depth=164, family="preact_resnet", scheme="euler")
def resnet164(**kw: Any) -> ResidualNet:
    """ResNet-164 as published: the pre-activation bottleneck net (He et al. 2016)."""
    return resnet(164, preact=True, **kw)


@register_model(depth=20, family="lm_resnet", scheme="lm2")
def lm_resnet20(**kw: Any) -> ResidualNet:
    """LM-ResNet-20 (Lu et al. 2018): the pre-activation ResNet-20 under the LM scheme."""
    return resnet(20, preact=True, **kw)


@register_model(depth=32, family="lm_resnet", scheme="lm2")
def lm_resnet32(**kw: Any) -> ResidualNet:
    """LM-ResNet-32 (Lu et al. 2018): the pre-activation ResNet-32 under the LM scheme."""
    return resnet(32, preact=True, **kw)


@register_model(depth=44, family="lm_resnet", scheme="lm2")
def lm_resnet44(**kw: Any) -> ResidualNet:
    """LM-ResNet-44 (Lu et al. 2018): the pre-activation ResNet-44 under the LM scheme."""
    return resnet(44, preact=True, **kw)


@register_model(depth=56, family="lm_resnet", scheme="lm2")
def lm_resnet56(**kw: Any) -> ResidualNet:
    """LM-ResNet-56 (Lu et al. 2018): the pre-activation ResNet-56 under the LM scheme."""
    return resnet(56, preact=True, **kw)


@register_model(depth=110, family="lm_resnet", scheme="lm2")
def lm_resnet110(**kw: Any) -> ResidualNet:
    """LM-ResNet-110 (Lu et al. 2018): the pre-activation ResNet-110 under the LM scheme."""
    return resnet(110, preact=True, **kw)


@register_model(depth=164, family="lm_resnet", scheme="lm2")
def lm_resnet164(**kw: Any) -> ResidualNet:
    """LM-ResNet-164 (Lu et al. 2018): the pre-activation ResNet-164 under the LM scheme."""
    return resnet(164, preact=True, **kw)


@register_model(depth=20, family="shake_shake", scheme="euler_maruyama", noise="shake")
def shake_resnet20_2x16d(**kw: Any) -> ResidualNet:
    """Shake-shake ResNet-20 2x16d (Gastaldi 2017) as an Euler-Maruyama SDE."""
    return shake_resnet(20, 16, **kw)


@register_model(depth=26, family="shake_shake", scheme="euler_maruyama", noise="shake")
def shake_resnet26_2x32d(**kw: Any) -> ResidualNet:
    """Shake-shake ResNet-26 2x32d (Gastaldi 2017) as an Euler-Maruyama SDE."""
    return shake_resnet(26, 32, **kw)


@register_model(depth=26, family="shake_shake", scheme="euler_maruyama", noise="shake")
def shake_resnet26_2x64d(**kw: Any) -> ResidualNet:
    """Shake-shake ResNet-26 2x64d (Gastaldi 2017) as an Euler-Maruyama SDE."""
    return shake_resnet(26, 64, **kw)


@register_model(depth=26, family="shake_shake", scheme="euler_maruyama", noise="shake")
def shake_resnet26_2x96d(**kw: Any) -> ResidualNet:
    """Shake-shake ResNet-26 2x96d (Gastaldi 2017) as an Euler-Maruyama SDE."""
    return shake_resnet(26, 96, **kw)


@register_model(depth=29, family="resnext", scheme="euler")
def resnext29_8x64d(**kw: Any) -> ResidualNet:
    """ResNeXt-29 8x64d (Xie et al. 2017)."""
    return resnext(29, 8, 64, **kw)


@register_model(depth=29, family="lm_resnext", scheme="lm2")
def lm_resnext29_8x64d(**kw: Any) -> ResidualNet:
    """LM-ResNeXt-29 8x64d: ResNeXt-29 8x64d under the LM scheme."""
    return resnext(29, 8, 64, **kw)


@register_model(depth=29, family="resnext", scheme="euler")
def resnext29_16x64d(**kw: Any) -> ResidualNet:
    """ResNeXt-29 16x64d (Xie et al. 2017)."""
    return resnext(29, 16, 64, **kw)


@register_model(depth=29, family="lm_resnext", scheme="lm2")
def lm_resnext29_16x64d(**kw: Any) -> ResidualNet:
    """LM-ResNeXt-29 16x64d: ResNeXt-29 16x64d under the LM scheme."""
    return resnext(29, 16, 64, **kw)
