"""`contdepth train` on a CPU compiles and uses channels_last for runs long enough to pay compiling back."""

from __future__ import annotations

import argparse

import pytest

from contdepth.cli.train import config_from_args, configure
from contdepth.train.speed import COMPILE_PAYS_BACK_IMAGES


def _config(*argv: str):
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(list(argv))
    args.resume = args.overwrite = False
    return config_from_args(args)


@pytest.mark.parametrize(
    "argv, compile_mode, channels_last",
    [
        (["--device", "cpu"], "default", True),  # 160 epochs of 50,000 images
        (["--device", "cpu", "--epochs", "3"], "default", True),
        (["--device", "cpu", "--epochs", "2", "--subset", "1000"], None, False),  # a smoke run stays eager
        (["--device", "cpu", "--no-compile"], None, True),
        (["--device", "cpu", "--no-channels-last"], "default", False),
        (["--device", "cpu", "--compile-mode", "max-autotune"], "max-autotune", True),
        (["--device", "cpu", "--no-compile", "--no-channels-last"], None, False),
        (["--device", "cuda"], None, False),  # nothing chosen for a GPU
    ],
)
def test_cpu_runs_pick_compile_and_channels_last_unless_told(argv, compile_mode, channels_last):
    cfg = _config(*argv)
    assert (cfg.compile_mode, cfg.channels_last, cfg.compile) == (compile_mode, channels_last, compile_mode is not None)


def test_the_threshold_is_in_training_images():
    epochs = 4
    enough = -(-COMPILE_PAYS_BACK_IMAGES // epochs)
    assert _config("--device", "cpu", "--epochs", str(epochs), "--subset", str(enough)).compile
    assert not _config("--device", "cpu", "--epochs", str(epochs), "--subset", str(enough - 1)).compile
