"""Layers of the model zoo: residual branches ``F(u)``, shortcuts ``P(u)``, conv helpers, init.

No stage or flow logic lives here (see :mod:`.transition` and :mod:`.stage`).

Every map takes ``(B, C_in, H, W)`` to ``(B, C_out, H/s, W/s)`` for stride ``s``. Inside a stage
(``C_in = C_out``, ``s = 1``) a branch is a block of a :class:`~contdepth.fields.Blocks` field.
Pre-activation branches split into ``pre`` (BN-ReLU) and ``body`` so a stage transition can feed
the pre-activated input to both the branch and the projection shortcut.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Bias-free conv with "same" padding, He-normal initialised (fan_out, ReLU gain) once."""
    device = torch.empty(()).device  # honours a `with torch.device(...)` block
    # big layers skip PyTorch's default init (overwritten below); for small ones that detour costs more
    big = c_in * c_out * kernel * kernel // groups >= 1 << 18
    layer = nn.Conv2d(
        c_in,
        c_out,
        kernel,
        stride=stride,
        padding=kernel // 2,
        groups=groups,
        bias=False,
        device="meta" if big else device,
    )
    if big:
        layer = layer.to_empty(device=device)
    if not layer.weight.is_meta:
        nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    return layer


def conv3x3(c_in: int, c_out: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return conv(c_in, c_out, 3, stride, groups)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return conv(c_in, c_out, 1, stride)


# The branches name their layers and call them in an explicit forward (ReLU as F.relu) rather than
# nesting nn.Sequential containers: every container or ReLU module call costs a few microseconds of
# Python per block, which an eager GPU run pays on every step.
class BNReLU(nn.Module):
    """``relu(bn(u))``: the pre-activation of He et al. 2016."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)

    def forward(self, u: Tensor) -> Tensor:
        return F.relu(self.bn(u))


class BasicBranch(nn.Module):
    """Post-activation basic branch (He et al. 2015): conv3x3-BN-ReLU-conv3x3-BN."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, u: Tensor) -> Tensor:
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(u)))))


class BottleneckBranch(nn.Module):
    """Post-activation bottleneck (ResNet v1, ResNeXt with ``groups > 1``):
    conv1x1-BN-ReLU-conv3x3(groups, stride)-BN-ReLU-conv1x1-BN; ``width`` is the 3x3 conv's."""

    def __init__(self, c_in: int, width: int, c_out: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv1 = conv1x1(c_in, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, c_out)
        self.bn3 = nn.BatchNorm2d(c_out)

    def forward(self, u: Tensor) -> Tensor:
        a = F.relu(self.bn1(self.conv1(u)))
        a = F.relu(self.bn2(self.conv2(a)))
        return self.bn3(self.conv3(a))


class PreActBranch(nn.Module):
    """A pre-activation branch ``body(pre(u))`` with ``pre`` = BN-ReLU (He et al. 2016); a stage
    transition feeds ``pre(u)`` to both ``body`` and its projection shortcut."""

    def __init__(self, c_in: int, body: nn.Module) -> None:
        super().__init__()
        self.pre = BNReLU(c_in)
        self.body = body

    def forward(self, u: Tensor) -> Tensor:
        return self.body(self.pre(u))


class PreActBasicBody(nn.Module):
    """conv3x3-BN-ReLU-conv3x3: the body of a pre-activation basic branch."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)

    def forward(self, a: Tensor) -> Tensor:
        return self.conv2(F.relu(self.bn2(self.conv1(a))))


class PreActBottleneckBody(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1: the body of a pre-activation bottleneck."""

    def __init__(self, c_in: int, width: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv1x1(c_in, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, c_out)

    def forward(self, a: Tensor) -> Tensor:
        a = F.relu(self.bn2(self.conv1(a)))
        return self.conv3(F.relu(self.bn3(self.conv2(a))))


class PreActBasicBranch(PreActBranch):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(c_in, PreActBasicBody(c_in, c_out, stride))


class PreActBottleneckBranch(PreActBranch):
    """BN-ReLU-conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1; ``c_out = 4 width`` in ResNet-164."""

    def __init__(self, c_in: int, width: int, c_out: int, stride: int = 1) -> None:
        super().__init__(c_in, PreActBottleneckBody(c_in, width, c_out, stride))


class ShakeBranchPair(nn.Module):
    """Shake-shake's two branches (Gastaldi 2017), each ReLU-conv3x3-BN-ReLU-conv3x3-BN.

    ``drift_diffusion(u) -> ((F1+F2)/2, (F1-F2)/sqrt 12)``: with a uniform ξ and step 1,
    Euler–Maruyama gives ``u + η F1 + (1-η) F2``, ``η ~ U(0, 1)``; the mean is the eval-mode block.
    The backward weight (the same η, or an independent β) is the noise source's ``backward``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.branch1 = self._branch(c_in, c_out, stride)
        self.branch2 = self._branch(c_in, c_out, stride)

    @staticmethod
    def _branch(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.ReLU(),
            conv3x3(c_in, c_out, stride),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            conv3x3(c_out, c_out),
            nn.BatchNorm2d(c_out),
        )

    def drift_diffusion(self, u: Tensor) -> tuple[Tensor, Tensor]:
        f1, f2 = self.branch1(u), self.branch2(u)
        return 0.5 * (f1 + f2), (f1 - f2) / math.sqrt(12.0)

    def forward(self, u: Tensor) -> Tensor:
        return self.drift_diffusion(u)[0]


# ------------------------------------------------------------------------------------ shortcuts
class PadShortcut(nn.Module):
    """He et al.'s parameter-free option A: subsample by ``stride``, zero-pad the new channels."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        if c_out < c_in:
            raise ValueError(f"PadShortcut cannot reduce channels ({c_in} -> {c_out})")
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, u: Tensor) -> Tensor:
        u = u[:, :, :: self.stride, :: self.stride]
        return F.pad(u, (0, 0, 0, 0, 0, self.extra)) if self.extra else u


def projection(c_in: int, c_out: int, stride: int = 1, bn: bool = True) -> nn.Module:
    """1x1-conv projection shortcut (option B), followed by BN in post-activation nets."""
    conv = conv1x1(c_in, c_out, stride)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out)) if bn else conv


class ShakeShortcut(nn.Module):
    """Shake-shake's projection: ReLU, then two strided 1x1 convs (one on the input shifted by a
    pixel, so together they see every position) to ``c_out/2`` channels each, concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"ShakeShortcut needs an even channel count, got {c_out}")
        self.stride = stride
        self.conv1 = conv1x1(c_in, c_out // 2)
        self.conv2 = conv1x1(c_in, c_out // 2)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, u: Tensor) -> Tensor:
        u = F.relu(u)
        shifted = F.pad(u[:, :, 1:, 1:], (0, 1, 0, 1))
        s = self.stride
        return self.bn(torch.cat([self.conv1(u[:, :, ::s, ::s]), self.conv2(shifted[:, :, ::s, ::s])], dim=1))


def init_weights(model: nn.Module) -> None:
    """Unit BN scale and zero shift, zero linear bias; convs made by :func:`conv` are already He-normal."""
    for m in model.modules():
        if any(p.is_meta for p in m.parameters(recurse=False)):
            continue  # shapes only (parameter counting)
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
