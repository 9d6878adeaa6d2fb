"""Mixed precision: bf16 autocast where the processor computes bf16 natively, float32 elsewhere.

``--amp auto`` (the default) picks bf16 autocast on a CPU with AVX512-BF16 or AMX units, where it
trains about 1.7 times as many images per second as float32 on a 2-core AMD EPYC with AVX512-BF16
(benchmarks/results/cpu_training_loop.json). On a CPU without them bf16 is emulated and slower than
float32 (PyTorch issue #118499), and on CUDA nothing is chosen for the user, so ``auto`` means
float32 there.

Under autocast the convolutions and matrix products run in bf16; the loss, BatchNorm's running
statistics, scheme parameters (LM's k), the noise draws and every adaptive (continuous-limit)
integration stay in float32.
"""

from __future__ import annotations

import contextlib
import functools

import torch

AMP_CHOICES = ("auto", "none", "bf16")


@functools.cache
def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as ``torch.cpu`` reports it."""
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_tile"))


def resolve_amp(amp: str, device: torch.device | str) -> str:
    """The mode a run computes in, ``"none"`` or ``"bf16"``; ``"auto"`` is bf16 on a CPU with bf16 units.

    Raises ``ValueError`` naming the choices for an unknown ``amp``.
    """
    if amp not in AMP_CHOICES:
        raise ValueError(f"unknown amp mode {amp!r}; choose one of: {', '.join(AMP_CHOICES)}")
    if amp != "auto":
        return amp
    kind = torch.device(device).type
    return "bf16" if kind == "cpu" and cpu_has_bf16_units() else "none"


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for ``amp="bf16"`` (resolved), no change otherwise."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if amp != "none":
        raise ValueError(f"autocast takes a resolved mode ('none' or 'bf16'), got {amp!r}")
    return contextlib.nullcontext()
