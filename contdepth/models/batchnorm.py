"""BatchNorm recalibration: running statistics re-estimated for the discretisation a net now runs at.

Statistics estimated at one step count are wrong at another: the states a block sees change with the
step. :func:`recalibrate_bn` resets every BatchNorm's running mean and variance and re-estimates them
as exact averages over the given images (``momentum=None``: a cumulative average, not the training
EMA, which would keep a trace of the reset values), with the net's noise off and no gradient. With
``per_step=True`` every evaluation of a flow's field (block ``m`` at time ``t``) gets statistics of its
own, since the several steps inside one block see different states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..fields import Blocks, Interpolated, StepBuffers


def batchnorms(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def fresh_statistics(module: nn.Module) -> dict[str, Tensor]:
    """Reset running statistics (mean 0, variance 1, count 0) for every BatchNorm inside ``module``, by
    buffer name relative to ``module``: the buffers one evaluation of ``module`` fills."""
    out: dict[str, Tensor] = {}
    for name, bn in module.named_modules():
        if isinstance(bn, _BatchNorm) and bn.track_running_stats:
            prefix = f"{name}." if name else ""
            assert bn.running_mean is not None and bn.running_var is not None
            out[prefix + "running_mean"] = torch.zeros_like(bn.running_mean)
            out[prefix + "running_var"] = torch.ones_like(bn.running_var)
            out[prefix + "num_batches_tracked"] = torch.zeros((), dtype=torch.long, device=bn.running_mean.device)
    return out


def _fields(model: nn.Module) -> list[Blocks | Interpolated]:
    return [m for m in model.modules() if isinstance(m, (Blocks, Interpolated))]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    batches: Iterable[Tensor],
    *,
    per_step: bool = True,
    forward: Callable[[Tensor], Tensor] | None = None,
) -> int:
    """Re-estimate the running statistics of every BatchNorm in ``model`` from ``batches`` (input tensors,
    ``(B, C, H, W)``, no labels) at the model's current scheme and step count; returns the images seen.

    The model runs in eval mode (noise off) with its BatchNorms in training mode, under ``no_grad``; it
    is left in eval mode. ``per_step``: each evaluation of a field's module (block ``m`` at time ``t``)
    gets its own statistics (:class:`~contdepth.fields.StepBuffers`), kept for that step grid;
    otherwise one set per BatchNorm (the choice for adaptive solvers, whose times change from batch to batch).
    ``forward``: how to run the net (default ``model(x)``), e.g. with its flows integrated adaptively.
    Raises ``ValueError`` when ``batches`` holds no image.
    """
    layers = batchnorms(model)
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over every batch, equally weighted
    fields = _fields(model)
    for field in fields:
        field.step_buffers = None
        if per_step:
            field.step_buffers = StepBuffers(fresh_statistics)
            field.step_buffers.recording = True
    model.eval()
    for bn in layers:
        bn.train()
    seen = 0
    try:
        run = model if forward is None else forward
        for x in batches:
            run(x)
            seen += int(x.shape[0])
    finally:
        for bn, momentum in zip(layers, momenta, strict=True):
            bn.momentum = momentum
        for field in fields:
            if field.step_buffers is not None:
                field.step_buffers.recording = False
        model.eval()
    if seen == 0:
        raise ValueError("recalibrate_bn: no images given; pass batches of input images")
    return seen


def clear_step_statistics(model: nn.Module) -> None:
    """Drop the per-step statistics of :func:`recalibrate_bn` (the modules' own statistics serve again)."""
    for field in _fields(model):
        field.step_buffers = None
