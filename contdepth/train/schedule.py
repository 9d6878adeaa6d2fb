"""Learning-rate schedules as a factor of the step count, driven by torch's ``LambdaLR`` (stepped per batch)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


class RecipeFactor:
    """lr multiplier after ``step`` optimiser steps: linear warm-up, then step, cosine or linear decay.

    Epochs are counted in optimiser steps (``steps_per_epoch`` each); step decay multiplies by
    ``gamma`` from each milestone epoch on (milestone 80 = the 81st epoch onwards), cosine anneals
    to zero over ``epochs`` and linear falls in a straight line to zero at the end of ``epochs``
    (budgeted training: Li, Yumer and Ramanan, ICLR 2020). A plain object (not a closure) so
    ``LambdaLR`` checkpoints it.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        epochs: int,
        *,
        schedule: str = "step",
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
    ) -> None:
        self.steps_per_epoch = int(steps_per_epoch)
        self.epochs = int(epochs)
        self.schedule = schedule
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.warmup_epochs = float(warmup_epochs)

    def __call__(self, step: int) -> float:
        epoch_float = step / self.steps_per_epoch
        if self.schedule == "cosine":
            main = 0.5 * (1.0 + math.cos(math.pi * min(epoch_float / self.epochs, 1.0)))
        elif self.schedule == "linear":
            main = max(0.0, 1.0 - epoch_float / self.epochs)
        else:
            main = self.gamma ** sum(step // self.steps_per_epoch >= m for m in self.milestones)
        warm_steps = self.warmup_epochs * self.steps_per_epoch
        if warm_steps > 0 and step < warm_steps:
            main *= (step + 1) / warm_steps
        return main


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    epochs: int,
    *,
    schedule: str,
    milestones: Sequence[int],
    gamma: float,
    warmup_epochs: float,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :class:`RecipeFactor`."""
    factor = RecipeFactor(
        steps_per_epoch, epochs, schedule=schedule, milestones=milestones, gamma=gamma, warmup_epochs=warmup_epochs
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
