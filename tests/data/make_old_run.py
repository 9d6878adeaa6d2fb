"""How ``tests/data/old_run/`` was made: a run folder written before the run-folder format moved to
``contdepth.runs`` (at commit ae9dc88), which later versions must still load and resume.

A depth-14 shake-shake net 2 x 2 channels wide under LM's scheme, without noise (6,713 parameters;
SGD without momentum, so the folder stays near 120 KB), trained on 16 images of the tiny synthetic
CIFAR-10 for 2 epochs and stopped after the first batch of epoch 2: a checkpoint part-way through an
epoch, its metrics and results after epoch 1 (the plots it wrote are left out). The folder is kept
as written; run this only to make a new fixture::

    python3 tests/data/make_old_run.py /tmp/fixture   # writes /tmp/fixture/old_run
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from torch import nn

EPOCHS, STOP_AT = 2, (2, 1)  # stop after batch 1 of epoch 2


def tiny_net() -> nn.Module:
    """The run's model (``config.model`` only names a zoo model; build this one to resume or load it)."""
    from contdepth.models.cifar import shake_resnet

    return shake_resnet(14, width=2, scheme="lm2", noise="none")


def settings(out: str = "old_run", data_dir: str = "data") -> dict:
    """The run's TrainConfig arguments (``out`` and ``data_dir`` may change on resume)."""
    return dict(
        model="shake_resnet20_2x16d",
        scheme="lm2",
        noise="none",
        data_dir=data_dir,
        out=out,
        epochs=EPOCHS,
        momentum=0.0,  # no momentum buffers: a third fewer tensors in the checkpoint
        batch_size=8,
        eval_batch_size=16,
        subset=16,
        test_subset=16,
        amp="none",
        progress=False,
        device="cpu",
    )


def main(where: str) -> None:
    from contdepth.data import write_fake_cifar
    from contdepth.train import TrainConfig, Trainer

    os.chdir(Path(where))  # relative paths: config.json and the checkpoint name no folder of this machine
    write_fake_cifar("data", "cifar10", train=40, test=32)

    def stop(trainer: Trainer, epoch: int, batch: int) -> None:
        if (epoch, batch) == STOP_AT:
            trainer.request_stop()

    trainer = Trainer(TrainConfig(**settings()), model=tiny_net(), on_batch_end=stop)
    trainer.fit()
    assert trainer.stopped and (trainer.epoch, trainer.batch) == (1, 1)


if __name__ == "__main__":
    main(sys.argv[1])
