"""Training on CIFAR: the paper's recipe, device-resident data, checkpoints with exact resume, DDP.

>>> from contdepth.train import TrainConfig, Trainer, evaluate_run      # doctest: +SKIP
>>> Trainer(TrainConfig(model="lm_resnet20", data_dir="data", out="runs/lm20")).fit()
>>> evaluate_run("runs/lm20", scheme="rk4", steps_per_block=2)["test_acc"]
>>> net = load_run("runs/lm20")                                         # the trained nn.Module, eval mode

``Trainer(config)`` sets the run up as it is built: :func:`build_parts` gives everything it trains with as
one frozen :class:`TrainerParts` (``Trainer(build_parts(config))`` is the same run), from the settings
:meth:`TrainConfig.resolve` fills in and checks (:class:`ResolvedConfig`).
"""

import warnings
from typing import Any

from ..runs.folder import RunFolderError
from .config import ResolvedConfig, TrainConfig
from .evaluate import evaluate_run
from .loading import load_run
from .parts import TrainerParts, build_parts
from .trainer import Trainer

__all__ = [
    "ResolvedConfig",
    "RunFolderError",
    "TrainConfig",
    "Trainer",
    "TrainerParts",
    "build_parts",
    "evaluate_run",
    "load_run",
]


def __getattr__(name: str) -> Any:
    if name == "RunExists":  # the earlier name of RunFolderError, kept for code that uses it
        warnings.warn(
            "contdepth.train.RunExists is deprecated: use contdepth.train.RunFolderError (the same class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return RunFolderError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
