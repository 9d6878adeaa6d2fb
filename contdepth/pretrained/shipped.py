"""The trained runs the project ships, and where they are: the one list a finished run joins to get a name.

Every entry is a run folder of the repository's ``results/``, as ``<study>/<run>``. A wheel carries those
folders' ``config.json``, ``results.json`` and ``weights.fp16.pt`` as the package data ``contdepth/_shipped``
(``setup.py`` maps ``results/`` there); a checkout or an editable install reads ``results/`` in place.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED: tuple[str, ...] = (
    # the CPU study (`contdepth reproduce lu2018-cifar10-cpu`); its seed 0 is each model's default
    "cifar10-cpu/preact_resnet20-s0",
    "cifar10-cpu/lm_resnet20-s0",
    "cifar10-cpu/resnet20-s0",
    "cifar10-cpu/preact_resnet20-s1",
    "cifar10-cpu/lm_resnet20-s1",
    "cifar10-cpu/preact_resnet20-s2",
    "cifar10-cpu/lm_resnet20-s2",
    "cifar10-cpu/preact_resnet20-bf16-s0",
    # the depth dial: stochastic depth, survival 0.8 at the last block
    "depth-dial-cpu/preact_resnet20-sd0.8-s0",
    # the depth dial: a step count per batch drawn from {1, 2, 4}, with blockwise and with linear weights
    "depth-dial-cpu/preact_resnet20-steps1.2.4-s0",
    "depth-dial-cpu/preact_resnet20-linear-steps1.2.4-s0",
    # the depth dial: 1 step per block, doubled after epochs 10 and 20 (trained and evaluated at 4)
    "depth-dial-cpu/preact_resnet20-refine1.2.4-s0",
    # the depth dial: four Euler steps per block throughout (h = 1/4)
    "depth-dial-cpu/preact_resnet20-k4-s0",
    # the SDE study: Gaussian noise injection at the level chosen on held-out training images
    "sde-cpu/preact_resnet20-gaussian0.1-s0",
    # the SDE study: LM-ResNet-20 with stochastic depth (the paper's LM + SD, at depth 20)
    "sde-cpu/lm_resnet20-sd0.8-s0",
    # the SDE study: shake-shake at depth 20, 2 x 16 channels (uniform law, independent backward draw)
    "sde-cpu/shake_resnet20_2x16d-s0",
)
"""The shipped runs, in order: a model's first run here is its default (the plain model name)."""

PACKAGE_DATA = "_shipped"
"""The folder of the installed package holding the shipped runs (``results/`` of the checkout)."""


def shipped_root() -> Path:
    """The folder holding the shipped runs: the installed package's data, else the checkout's ``results/``."""
    package = Path(__file__).resolve().parent.parent
    for folder in (package / PACKAGE_DATA, package.parent / "results"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"no trained weights: neither {package / PACKAGE_DATA} (an installed wheel) nor {package.parent / 'results'} "
        "(a checkout) exists; reinstall contdepth from a wheel or a checkout"
    )
