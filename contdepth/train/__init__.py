"""Training on CIFAR: the paper's recipe, device-resident data, checkpoints with exact resume, DDP.

>>> from contdepth.train import TrainConfig, Trainer, evaluate_run      # doctest: +SKIP
>>> Trainer(TrainConfig(model="lm_resnet20", data_dir="data", out="runs/lm20")).fit()
>>> evaluate_run("runs/lm20", scheme="rk4", steps_per_block=2)["test_acc"]
>>> net = load_run("runs/lm20")                                         # the trained nn.Module, eval mode
"""

from .config import TrainConfig
from .evaluate import evaluate_run
from .trainer import RunExists, Trainer
from .weights import load_run

__all__ = ["RunExists", "TrainConfig", "Trainer", "evaluate_run", "load_run"]
