"""Seeded two-class data in the plane: two moons or two interleaved spirals, with label noise.

Everything is generated in code (nothing downloaded). Inputs are float32 of shape ``(N, 2)``,
roughly centred on the origin within ``[-2, 2]²``; labels are float32 of shape ``(N,)`` in {0, 1}.
Label noise flips a fraction of the *training* labels only: the test labels are clean, so test
accuracy measures how well the true class boundary was recovered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

DATASETS = ("moons", "spirals")


@dataclass
class ToyData:
    """Train/test split. ``x_*``: ``(N, 2)`` float32; ``y_*``: ``(N,)`` float32 in {0, 1}."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    flipped: Tensor  # bool (N_train,): which training labels were flipped

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.y_train)} train ({int(self.flipped.sum())} labels flipped), "
            f"{len(self.y_test)} test"
        )


def _moons(n: int, jitter: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two interleaving half circles of radius 1, centred so the pair sits around the origin."""
    y = (torch.rand(n, generator=gen) < 0.5).float()
    angle = math.pi * torch.rand(n, generator=gen)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1.0 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    x = torch.where(y[:, None] > 0.5, lower, upper) - torch.tensor([0.5, 0.25])
    return x + jitter * torch.randn(n, 2, generator=gen), y


def _spirals(n: int, jitter: float, gen: torch.Generator, turns: float = 1.0) -> tuple[Tensor, Tensor]:
    """Two interleaved Archimedean spirals (one rotated by π), radius up to 1.6."""
    y = (torch.rand(n, generator=gen) < 0.5).float()
    s = torch.rand(n, generator=gen).sqrt()  # uniform density along the arm's area
    angle = 2.0 * math.pi * turns * s + math.pi * y
    radius = 0.2 + 1.4 * s
    x = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return x + jitter * torch.randn(n, 2, generator=gen), y


def make_data(
    name: str = "moons",
    n_train: int = 300,
    n_test: int = 3000,
    label_noise: float = 0.1,
    jitter: float = 0.15,
    seed: int = 0,
) -> ToyData:
    """Draw a seeded train/test split; ``label_noise`` is the fraction of training labels flipped."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label_noise must lie in [0, 0.5), got {label_noise}")
    gen = torch.Generator().manual_seed(int(seed))
    draw = _moons if name == "moons" else _spirals
    x_train, y_train = draw(n_train, jitter, gen)
    x_test, y_test = draw(n_test, jitter, gen)
    flipped = torch.rand(n_train, generator=gen) < label_noise
    y_train = torch.where(flipped, 1.0 - y_train, y_train)
    return ToyData(name, x_train, y_train, x_test, y_test, flipped)
