"""Full-batch training of a toy model and its accuracy (noise off at evaluation).

The objective is an optimal-control cost: the terminal cost (binary cross-entropy of the read-out
of ``X_T``, averaged over one draw of the noise per update) plus a running cost ``λ ∫ |dX/dt|² dt``
(the flow's kinetic energy, discretised as ``Σ_n |x_{n+1} - x_n|² / h`` along the scheme's own
trajectory). Without the running cost the flow stretches the plane without bound to beat additive
noise; with it, trajectories stay short and the Kolmogorov equation stays well conditioned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F

from .data import ToyData
from .model import ToyModel


@dataclass(frozen=True)
class ToyTrainConfig:
    """Adam on the whole training set: ``iters`` updates at learning rate ``lr`` (cosine-decayed);
    ``kinetic`` is the weight λ of the running cost."""

    iters: int = 600
    lr: float = 0.02
    kinetic: float = 0.01

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    """Accuracies in [0, 1] of the noise-free model, wall time in seconds, per-update losses."""

    train_acc: float
    test_acc: float
    seconds: float
    losses: list[float] = field(default_factory=list)


@torch.no_grad()
def accuracy(model: ToyModel, x: Tensor, y: Tensor) -> float:
    """Fraction of ``x`` classified as ``y`` by the mean (noise-free) model."""
    was_training = model.training
    model.eval()
    pred = (model(x) > 0).float()
    model.train(was_training)
    return float((pred == y).float().mean())


def objective(model: ToyModel, x: Tensor, y: Tensor, kinetic: float) -> Tensor:
    """Terminal cross-entropy plus ``kinetic · mean_samples Σ_n |Δx_n|² / h`` (one noise draw)."""
    if kinetic == 0.0:
        return F.binary_cross_entropy_with_logits(model(x), y)
    path = model.flow.trajectory(x)  # (steps + 1, N, 2)
    energy = (path[1:] - path[:-1]).pow(2).sum(dim=(0, 2)).mean() / model.flow.h
    return F.binary_cross_entropy_with_logits(model.logits_of_state(path[-1]), y) + kinetic * energy


def fit(
    model: ToyModel,
    data: ToyData,
    cfg: ToyTrainConfig = ToyTrainConfig(),
    on_step: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train ``model`` in place on ``data``; ``on_step(iteration, loss)`` reports progress."""
    start = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iters)
    model.train()
    losses = []
    for it in range(cfg.iters):
        loss = objective(model, data.x_train, data.y_train, cfg.kinetic)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(it, losses[-1])
    model.eval()
    return FitResult(
        train_acc=accuracy(model, data.x_train, data.y_train),
        test_acc=accuracy(model, data.x_test, data.y_test),
        seconds=time.perf_counter() - start,
        losses=losses,
    )
