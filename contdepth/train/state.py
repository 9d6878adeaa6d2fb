"""Where a run stands: epochs and steps done, the epochs' rows, the sessions, and the current epoch so far.

:class:`TrainState` is what a checkpoint keeps of the loop itself (the weights, optimiser, schedule, data
order and random streams are kept beside it, see :func:`~contdepth.runs.checkpoint.training_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .divergence import DivergenceWatch


class EpochMeter:
    """The current epoch so far, on this process: summed loss and correct count (kept on ``device``: no host
    sync per step), images seen, training seconds, the epoch's learning rate, seconds spent compiling, and
    the first step whose loss was not finite (:class:`DivergenceWatch`).

    :meth:`state_dict` holds what a checkpoint keeps; the compile seconds and the watch belong to the
    session (a resumed epoch counts its own compiling, and only finite states are ever saved).
    """

    def __init__(self, device: torch.device, lr: float = 0.0) -> None:
        self.device = device
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum (nats), correct count
        self.seen = 0
        self.seconds = 0.0
        self.lr = lr
        self.compile_seconds = 0.0
        self.watch = DivergenceWatch(device)

    def observe(self, loss: Tensor, logits: Tensor, labels: Tensor, step: int) -> None:
        """Add one step's mean ``loss`` and the correct count of ``logits`` (B, classes) against ``labels`` (B,);
        ``step`` is 1-based within the epoch. Queues a few kernels, reads nothing back."""
        n = labels.shape[0]
        correct = (logits.argmax(1) == labels).sum()
        self.sums += torch.stack([loss.detach().double() * n, correct.double()])
        self.seen += n
        self.watch.observe(loss, step)

    def means(self) -> tuple[float, float]:
        """Mean loss and accuracy of the steps so far (reads the device: a host sync)."""
        loss_sum, correct = self.sums.tolist()
        seen = max(self.seen, 1)
        return loss_sum / seen, correct / seen

    def reset(self) -> None:
        """Start a new epoch (the learning rate is set when it begins)."""
        self.sums.zero_()
        self.seen = 0
        self.seconds = 0.0
        self.compile_seconds = 0.0
        self.watch.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"sums": self.sums.cpu(), "seen": self.seen, "seconds": self.seconds, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = state["sums"].to(self.device)
        self.seen = int(state["seen"])
        self.seconds = float(state["seconds"])
        self.lr = float(state["lr"])


@dataclass
class TrainState:
    """The loop's progress: ``epoch`` epochs completed, ``batch`` optimiser steps done in epoch ``epoch + 1``,
    one ``history`` row per completed epoch, one ``sessions`` entry (provenance) per start or resume, and the
    current epoch's :class:`EpochMeter`."""

    meter: EpochMeter = field(default_factory=lambda: EpochMeter(torch.device("cpu")))
    epoch: int = 0
    batch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def end_epoch(self, row: dict[str, Any]) -> None:
        """Record the finished epoch's ``row`` and start the next one."""
        self.history.append(row)
        self.epoch, self.batch = row["epoch"], 0
        self.meter.reset()

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's ``epoch``, ``batch``, ``partial`` (the meter), ``history`` and ``sessions``."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "partial": self.meter.state_dict(),
            "history": self.history,
            "sessions": self.sessions,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` gave (``sessions`` may be missing: none recorded)."""
        self.history = list(state["history"])
        self.sessions = list(state.get("sessions", []))
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self.meter.load_state_dict(state["partial"])
