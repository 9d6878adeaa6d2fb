"""Divergence: non-finite losses noted on the device during an epoch, non-finite weights found before a save.

Nothing here reads a device value per step: :meth:`DivergenceWatch.observe` only queues a few
kernels, and the first bad step is read once, at epoch end or when saving.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_NONE = 2**62  # "no bad step yet": larger than any step number


class DivergenceWatch:
    """Keeps, as a device tensor, the first step of the current epoch whose loss was not finite."""

    def __init__(self, device: torch.device) -> None:
        self._first = torch.full((), _NONE, dtype=torch.int64, device=device)

    def observe(self, loss: Tensor, step: int) -> None:
        """Note ``step`` (1-based within the epoch) if ``loss`` is NaN or infinite; no host sync."""
        bad_here = torch.where(torch.isfinite(loss.detach()).all(), _NONE, step)
        torch.minimum(self._first, bad_here, out=self._first)

    def reset(self) -> None:
        self._first.fill_(_NONE)

    def first_bad_step(self) -> int | None:
        """The first step of this epoch with a non-finite loss, or None (reads the device: one sync)."""
        return self.as_step(self._first)

    @staticmethod
    def as_step(first: Tensor) -> int | None:
        """A value of :meth:`tensor` (or a cross-process minimum of it) as a step number, or None."""
        value = int(first)
        return None if value == _NONE else value

    def tensor(self) -> Tensor:
        """The device tensor itself (for a cross-process minimum)."""
        return self._first


def nonfinite_tensors(model: nn.Module) -> list[str]:
    """Names of the model's floating-point parameters and buffers holding a NaN or infinity (one sync)."""
    named = [(k, v) for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()]
    if not named:
        return []
    flags = torch.stack([~torch.isfinite(v).all() for _, v in named]).cpu()
    return [k for (k, _), bad in zip(named, flags.tolist(), strict=True) if bad]
