"""Going on from a checkpoint: read it back, check that it holds this run, and restore the loop from it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DeviceLoader
from ..runs import checkpoint as ckpt
from ..runs.files import CHECKPOINT
from ..runs.folder import RunFolderError
from . import distributed as dist_util
from .config import ResolvedConfig, TrainConfig, differences
from .state import TrainState


def load_checkpoint(out: Path, config: ResolvedConfig) -> dict[str, Any]:
    """The checkpoint in ``out``; ``RunFolderError`` where it was started with other settings than ``config``
    (runtime settings apart), :class:`~contdepth.runs.checkpoint.CheckpointError` where it is damaged."""
    path = out / CHECKPOINT
    state = ckpt.load(path)
    try:
        saved = TrainConfig.from_dict(state["config"])
    except (ValueError, TypeError) as err:
        raise ckpt.damaged(path, f"its config is not valid: {err}") from None
    diffs = differences(saved, config.to_dict())
    if diffs:
        raise RunFolderError(
            f"--resume: {out} was started with other settings ({'; '.join(diffs)}); "
            "resume continues the same run: drop those options or choose another --out"
        )
    return state


def restore(
    saved: dict[str, Any],
    state: TrainState,
    dist: dist_util.Dist,
    *,
    out: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DeviceLoader,
) -> None:
    """Load the checkpoint ``saved`` into ``state`` and the rest, and this process's random streams (a note on
    rank 0 where the data order or the model's streams cannot go on exactly)."""
    try:
        order_kept = ckpt.restore_training(
            saved, state, model=model, optimizer=optimizer, scheduler=scheduler, loader=loader
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as err:  # another model
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ckpt.damaged(out / CHECKPOINT, f"does not fit this run: {first}") from None
    if not order_kept and dist.main:
        print(
            "note: the data order of the resumed run restarts (checkpoint from another device type)",
            file=sys.stderr,
        )
    rngs = saved["rng"]
    if len(rngs) == dist.world:
        ckpt.set_rng_state(rngs[dist.rank]["rng"])
        ckpt.set_module_generator_states(model, rngs[dist.rank]["modules"])
    elif dist.main:
        print(
            f"note: the checkpoint was written by {len(rngs)} processes, this run has {dist.world}; "
            "the model's random streams restart (the data order is still exact)",
            file=sys.stderr,
        )
