"""How ``contdepth train`` computes on a CPU when not told: compiled, channels_last, for runs that pay it back.

Measured with ``benchmarks/cpu_training.py`` (2-core AMD EPYC, torch 2.13, batch 128,
preact_resnet20): ``torch.compile`` (inductor's C++ kernels) with channels_last trains 1.32x as many
images per second as eager NCHW, and channels_last alone 1.09x. Compiling costs 20-50 s once, which
that speed-up pays back after about 150,000 training images (three CIFAR epochs), so shorter runs
(smoke runs, tests) stay eager. On CUDA nothing is chosen for the user.
"""

from __future__ import annotations

import os
from typing import Any

import torch

CIFAR_TRAIN_IMAGES = 50_000  # CIFAR-10 and CIFAR-100 alike
#: Training images (epochs x images per epoch) from which compiling pays for itself on a CPU.
COMPILE_PAYS_BACK_IMAGES = 150_000


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolves_to_cpu(device: str | None) -> bool:
    """Whether ``--device device`` trains on the CPU (no device: CUDA when available)."""
    if device is not None:
        return str(device).split(":")[0] == "cpu"
    return not torch.cuda.is_available()


def cpu_defaults(given: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The speed settings to add to ``given`` (a run's explicit settings) for a CPU run of ``epochs``.

    When the run trains on a CPU on at least :data:`COMPILE_PAYS_BACK_IMAGES` images:
    ``compile_mode="default"`` unless ``given`` sets ``compile`` or ``compile_mode``, and
    ``channels_last=True`` unless it sets ``channels_last``. Nothing otherwise.
    """
    per_epoch = given.get("subset") or CIFAR_TRAIN_IMAGES
    if not resolves_to_cpu(given.get("device")) or per_epoch * epochs < COMPILE_PAYS_BACK_IMAGES:
        return {}
    out: dict[str, Any] = {}
    if "compile" not in given and "compile_mode" not in given:
        out["compile_mode"] = "default"
    if "channels_last" not in given:
        out["channels_last"] = True
    return out
