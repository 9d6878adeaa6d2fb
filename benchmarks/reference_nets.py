"""Hand-written PyTorch twins of contdepth's ResNet-56 and LM-ResNet-56, and copying weights into them.

``PlainResNet`` computes the same map as ``cd.models.get("resnet56")`` (He et al. 2015:
post-activation, option-A shortcut) and ``LMResNet`` the same as ``cd.models.get("lm_resnet56")``
(pre-activation, LM-ResNet's two-step update ``x + k (x_prev - x) + F(x)`` per block).
:func:`copy_weights` copies contdepth's state into them and :func:`check_same_map` checks that the
logits agree. Used by ``throughput.py`` (seconds) and ``instructions.py`` (instruction counts).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class PlainBlock(nn.Module):
    """Post-activation basic block with option-A shortcut: relu(shortcut(x) + bn(conv(relu(bn(conv(x))))))."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        short = x
        if self.stride != 1 or self.pad:
            short = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.pad))
        return F.relu(short + out)


class PlainResNet(nn.Module):
    """He et al. (2015) CIFAR ResNet-(6n+2)."""

    def __init__(self, n: int = 9, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = _conv3x3(3, 16)
        self.bn = nn.BatchNorm2d(16)
        blocks, c_in = [], 16
        for i, width in enumerate((16, 32, 64)):
            for j in range(n):
                blocks.append(PlainBlock(c_in, width, 2 if (i > 0 and j == 0) else 1))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PreActBlock(nn.Module):
    """Pre-activation branch conv(relu(bn(conv(relu(bn(x)))))); a stage's first block also has a 1x1 projection."""

    def __init__(self, c_in: int, c_out: int, stride: int, project: bool) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if project else None
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out)

    def branch(self, a: Tensor) -> Tensor:
        return self.conv2(F.relu(self.bn2(self.conv1(a))))


class LMStage(nn.Module):
    """First block (change of space; its shortcut seeds x_prev), then x_{n+1} = x_n + k_n (x_{n-1} - x_n) + F_n(x_n)."""

    def __init__(self, c_in: int, c_out: int, stride: int, n: int) -> None:
        super().__init__()
        project = stride != 1 or c_in != c_out
        self.first = PreActBlock(c_in, c_out, stride, project)
        self.blocks = nn.ModuleList([PreActBlock(c_out, c_out, 1, False) for _ in range(n - 1)])
        self.k = nn.Parameter(torch.empty(n - 1).uniform_(-0.1, 0.0))

    def forward(self, x: Tensor) -> Tensor:
        first = self.first
        if first.shortcut is not None:
            a = F.relu(first.bn1(x))
            x_prev = first.shortcut(a)
            x = x_prev + first.branch(a)
        else:
            x_prev, x = x, x + first.branch(F.relu(first.bn1(x)))
        for k, block in zip(self.k, self.blocks, strict=True):
            x, x_prev = x + k * (x_prev - x) + block.branch(F.relu(block.bn1(x))), x
        return x


class LMResNet(nn.Module):
    """Pre-activation LM-ResNet-(6n+2) of Lu et al. (2018)."""

    def __init__(self, n: int = 9, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = _conv3x3(3, 16)
        self.stages = nn.Sequential(LMStage(16, 16, 1, n), LMStage(16, 32, 2, n), LMStage(32, 64, 2, n))
        self.bn = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn(self.stages(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


HAND: dict[str, Callable[[], nn.Module]] = {
    "resnet20": lambda: PlainResNet(3),
    "lm_resnet20": lambda: LMResNet(3),
    "resnet56": lambda: PlainResNet(9),
    "lm_resnet56": lambda: LMResNet(9),
}


def _is_k(name: str) -> bool:
    return name == "k" or name.endswith(".k")


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy contdepth's state into the hand-written net: same registration order, LM's k matched by stage."""
    s_items = [(n, t) for n, t in src.state_dict().items() if not _is_k(n)]
    d_items = [(n, t) for n, t in dst.state_dict().items() if not _is_k(n)]
    if len(s_items) != len(d_items):
        raise RuntimeError(f"contdepth net has {len(s_items)} tensors, the hand-written one {len(d_items)}")
    state = {}
    for (sn, st), (dn, dt) in zip(s_items, d_items, strict=True):
        if st.shape != dt.shape:
            raise RuntimeError(f"shape mismatch: {sn} {tuple(st.shape)} vs {dn} {tuple(dt.shape)}")
        state[dn] = st
    src_k = [t for n, t in src.state_dict().items() if _is_k(n)]
    dst_k = [n for n in dst.state_dict() if _is_k(n)]
    for name, value in zip(dst_k, src_k, strict=True):
        state[name] = value.reshape(-1)
    dst.load_state_dict(state)


def check_same_map(model: nn.Module, hand: nn.Module, x: Tensor) -> float:
    """Max |difference| of the logits in train mode (batch statistics) and eval mode; raises if large."""
    diffs = []
    with torch.no_grad():
        for train in (True, False):
            model.train(train)
            hand.train(train)
            diffs.append((model(x) - hand(x)).abs().max().item())
    copy_weights(model, hand)  # the train-mode pass moved both nets' running statistics alike; resync
    if max(diffs) > 1e-3:
        raise RuntimeError(f"the hand-written net differs from contdepth's by {max(diffs):.2e}: not the same map")
    return max(diffs)
