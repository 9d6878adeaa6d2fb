"""ImageNet ResNets (He et al. 2015, v1 bottleneck, stride on the 3x3 conv as in torchvision).

224x224 inputs by design; any size >= 32 works (adaptive pooling). LM-ResNet-50/101 is
``scheme="lm2"``: one LM scheme (one k per block) per stage, history seeded at every transition.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .blocks import BottleneckBranch, conv, init_weights, projection
from .cifar import check_sizes, head
from .registry import register_model
from .stage import ResidualNet, StagePlan

LAYERS: dict[int, tuple[int, ...]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def imagenet_resnet(
    depth: int = 50,
    scheme: str = "euler",
    noise: str | None = None,
    num_classes: int = 1000,
    steps_per_block: int = 1,
    *,
    scheme_options: dict | None = None,
    checkpoint: bool = False,
    depth_basis: str = "blocks",
) -> ResidualNet:
    """ResNet-50/101/152: 7x7/2 stem + max-pool, four stages of post-activation bottlenecks
    (3x3 width ``64 * 2^i``, output ``256 * 2^i``), ReLU after every addition. ``depth_basis``: as
    :func:`~contdepth.models.resnet`."""
    check_sizes(num_classes=num_classes)
    if isinstance(depth, bool) or depth not in LAYERS:
        raise ValueError(f"ImageNet ResNet depth must be one of {sorted(LAYERS)}, got {depth!r}")
    layers = LAYERS[depth]
    plan = StagePlan(sum(layers), scheme, noise, steps_per_block, scheme_options, checkpoint, depth_basis=depth_basis)
    stem = nn.Sequential(
        conv(3, 64, 7, stride=2),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    relu = nn.ReLU()
    stages, c_in = [], 64
    for i, n in enumerate(layers):
        stride, width, c_out = (1 if i == 0 else 2), 64 * 2**i, 256 * 2**i
        branches = [BottleneckBranch(c_in, width, c_out, stride)]
        branches += [BottleneckBranch(c_out, width, c_out) for _ in range(n - 1)]
        stages.append(plan.stage(branches, projection(c_in, c_out, stride), post=relu))
        c_in = c_out
    model = ResidualNet(stem, stages, head(c_in, num_classes), plan)
    init_weights(model)
    return model


# ------------------------------------------------------------------------------------------ named models


@register_model(depth=50, family="imagenet_resnet", scheme="euler", dataset="imagenet")
def resnet50(**kw: Any) -> ResidualNet:
    """ResNet-50 for ImageNet (He et al. 2015)."""
    return imagenet_resnet(50, **kw)


@register_model(depth=50, family="imagenet_lm_resnet", scheme="lm2", dataset="imagenet")
def lm_resnet50(**kw: Any) -> ResidualNet:
    """LM-ResNet-50 for ImageNet (Lu et al. 2018): ResNet-50 under the LM scheme."""
    return imagenet_resnet(50, **kw)


@register_model(depth=101, family="imagenet_resnet", scheme="euler", dataset="imagenet")
def resnet101(**kw: Any) -> ResidualNet:
    """ResNet-101 for ImageNet (He et al. 2015)."""
    return imagenet_resnet(101, **kw)


@register_model(depth=101, family="imagenet_lm_resnet", scheme="lm2", dataset="imagenet")
def lm_resnet101(**kw: Any) -> ResidualNet:
    """LM-ResNet-101 for ImageNet (Lu et al. 2018): ResNet-101 under the LM scheme."""
    return imagenet_resnet(101, **kw)
