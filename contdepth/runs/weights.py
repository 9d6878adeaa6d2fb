"""A run's trained weights: the fp16 file a finished run keeps, and the latest weights a run folder holds.

``weights.fp16.pt`` holds the model's state dict with floating tensors in float16 (half the size of
float32; a depth-20 CIFAR net is about 0.55 MB), the epoch it was saved at and the model's name.
With ``config.json`` beside it, it is all that ``contdepth eval``, ``contdepth analyze`` and
:func:`contdepth.train.load_run` need; ``checkpoint.pt`` (float32, with optimiser state) is used instead
when present (:func:`read_trained_state`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import checkpoint as ckpt
from .files import CHECKPOINT, WEIGHTS


def half_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with floating tensors in float16 (integer buffers such as BatchNorm's counter kept)."""
    return {k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.cpu() for k, v in state.items()}


def save_weights(state: dict[str, Tensor], path: str | os.PathLike, *, model: str, epoch: int) -> Path:
    """Write ``state`` (a model's state dict) as fp16 weights to ``path`` atomically; returns the path."""
    path = Path(path)
    ckpt.save_atomic({"format": 1, "model_name": model, "epoch": int(epoch), "model": half_state(state)}, path)
    return path


def export_weights(run_dir: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """``RUN/weights.fp16.pt`` (or ``dest``) from the run's ``checkpoint.pt`` (for runs saved before weights
    were kept); returns the path written."""
    run = Path(run_dir)
    state = ckpt.load(run / CHECKPOINT)
    model = str(state["config"].get("model", "?"))
    return save_weights(state["model"], run / WEIGHTS if dest is None else dest, model=model, epoch=state["epoch"])


@dataclass
class TrainedState:
    """The weights a run folder holds: ``state`` (a state dict), ``epoch`` and the file they came from."""

    state: dict[str, Tensor]
    epoch: int
    source: Path


def read_trained_state(run_dir: str | os.PathLike) -> TrainedState:
    """The run's latest weights: ``checkpoint.pt`` when present, else ``weights.fp16.pt``.

    Raises ``FileNotFoundError`` when the folder has neither and :class:`~.checkpoint.CheckpointError`
    (one line naming the file) when the one it has is damaged.
    """
    run = Path(run_dir)
    if (run / CHECKPOINT).is_file():
        state = ckpt.load(run / CHECKPOINT)
        return TrainedState(state["model"], int(state["epoch"]), run / CHECKPOINT)
    path = run / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{run.resolve()} has no trained weights (neither {CHECKPOINT} nor {WEIGHTS})")
    saved = _load_weights_file(path)
    return TrainedState(saved["model"], int(saved["epoch"]), path)


def _load_weights_file(path: Path) -> dict[str, Any]:
    return ckpt.load(
        path,
        required=("model", "epoch"),
        kind="weights file",
        advice="restore a copy of it (git checkout, for committed runs)",
    )


def load_weights_into(model: nn.Module, trained: TrainedState, model_name: str) -> None:
    """Load ``trained`` into ``model`` (cast to its dtypes); one line naming the file when they do not fit."""
    try:
        model.load_state_dict(trained.state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ckpt.CheckpointError(
            f"{trained.source} does not fit {model_name} (the model its run folder names): {first}"
        ) from None
