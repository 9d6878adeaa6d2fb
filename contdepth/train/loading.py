"""A run folder loaded back: the settings it was trained with, as a :class:`~.config.TrainConfig`, and its
trained module (:func:`load_run`), rebuilt from the model zoo and re-discretised on request.

>>> net = load_run("results/cifar10-cpu/lm_resnet20-s0")                # doctest: +SKIP
>>> rk4 = load_run("results/cifar10-cpu/lm_resnet20-s0", scheme="rk4", steps_per_block=4)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ..runs.files import CHECKPOINT, CONFIG
from ..runs.records import saved_settings
from ..runs.weights import load_weights_into, read_trained_state
from .build import model_from_config
from .config import TrainConfig


def saved_run_config(run: Path) -> TrainConfig | None:
    """The settings saved in ``run``: its ``config.json``, else its checkpoint's copy; None if neither exists."""
    saved = saved_settings(run)
    return None if saved is None else TrainConfig.from_saved(*saved)


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The config a run was trained with (``config.json``, else the checkpoint's copy)."""
    run = Path(run_dir)
    if not str(run_dir).strip():
        raise ValueError("--run is empty; name a folder written by `contdepth train`")
    if run.exists() and not run.is_dir():
        raise ValueError(f"--run {run} is a file; name the folder written by `contdepth train`")
    cfg = saved_run_config(run)
    if cfg is not None:
        return cfg
    raise FileNotFoundError(f"{run.resolve()} is not a training run (no {CONFIG} or {CHECKPOINT})")


def load_run(
    run_dir: str | os.PathLike,
    *,
    scheme: str | None = None,
    steps_per_block: int | None = None,
    model: nn.Module | None = None,
) -> nn.Module:
    """The trained module of a run folder, on the CPU in eval mode, in float32.

    Args:
        run_dir: a folder written by ``contdepth train`` (``config.json`` with ``checkpoint.pt`` or
            ``weights.fp16.pt``), such as the committed ``results/cifar10-cpu/<run>``.
        scheme, steps_per_block: re-discretise the trained weights (default: as trained).
        model: a freshly built module of the run's architecture, for models not in the zoo.
    """
    cfg = load_run_config(run_dir)
    trained = read_trained_state(run_dir)
    net = model if model is not None else model_from_config(cfg, trained=True)
    load_weights_into(net, trained, cfg.model)
    rediscretise(net, scheme, steps_per_block)
    return net.eval()


def rediscretise(model: nn.Module, scheme: str | None, steps_per_block: float | None) -> None:
    """``model.rediscretise(scheme=, steps_per_block=)`` when either is given; one line for a model without it."""
    if scheme is None and steps_per_block is None:
        return
    method = getattr(model, "rediscretise", None)
    if not callable(method):
        raise TypeError(
            f"{type(model).__name__} has no rediscretise(): it cannot be evaluated with another "
            "scheme or steps per block"
        )
    method(scheme=scheme, steps_per_block=steps_per_block)
