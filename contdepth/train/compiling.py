"""``torch.compile`` modes for training and evaluation, and what each becomes on a given device.

``default`` compiles the model (fewer kernels, no per-op Python); ``reduce-overhead`` also records
CUDA graphs, so a whole forward and backward is launched as one graph (CUDA only: elsewhere it is
``default``); ``max-autotune`` also searches kernel configurations (long compile, for long runs).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# the torch.compile backend; tests swap in "eager" (dynamo tracing only), which takes no mode
BACKEND = "inductor"


def check_mode(mode: str | None) -> None:
    """Raise ``ValueError`` naming the valid modes when ``mode`` is neither None nor one of them."""
    if mode is not None and mode not in COMPILE_MODES:
        raise ValueError(f"unknown compile mode {mode!r}; choose one of: {', '.join(COMPILE_MODES)}")


def effective_mode(mode: str | None, device: torch.device) -> str | None:
    """The mode used on ``device``: CUDA graphs exist only on CUDA, so ``reduce-overhead`` is ``default`` elsewhere."""
    check_mode(mode)
    if mode == "reduce-overhead" and device.type != "cuda":
        return "default"
    return mode


def uses_cuda_graphs(mode: str | None, device: torch.device) -> bool:
    return effective_mode(mode, device) == "reduce-overhead"


def compile_module(module: nn.Module, mode: str | None, device: torch.device) -> nn.Module:
    """``module`` compiled in ``effective_mode(mode, device)``, or ``module`` itself when ``mode`` is None."""
    mode = effective_mode(mode, device)
    if mode is None:
        return module
    # torch.compile of a module returns a module (OptimizedModule); its annotation says only "callable"
    if BACKEND == "inductor":
        return cast(nn.Module, torch.compile(module, mode=mode))
    return cast(nn.Module, torch.compile(module, backend=BACKEND))


def mark_step(mode: str | None, device: torch.device) -> None:
    """Tell CUDA-graph trees a new iteration begins (its outputs of the last one may then be overwritten)."""
    if uses_cuda_graphs(mode, device):
        torch.compiler.cudagraph_mark_step_begin()
