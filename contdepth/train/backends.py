"""Process-wide numeric settings a CUDA user expects: cuDNN autotuning and TF32, or determinism."""

from __future__ import annotations

import os
from typing import Any

import torch


def backend_flags(device_type: str, deterministic: bool) -> dict[str, bool]:
    """The settings for a run on ``device_type``: on CUDA, ``cudnn_benchmark`` (autotuned convolutions)
    and TF32 matmuls/convolutions unless ``deterministic``; ``deterministic`` everywhere asks torch for
    deterministic algorithms (and turns TF32 off)."""
    cuda = device_type == "cuda"
    fast = cuda and not deterministic
    return {"cudnn_benchmark": fast, "tf32": fast, "deterministic": deterministic}


def apply_backend_flags(flags: dict[str, bool]) -> None:
    """Set torch's global switches as ``flags`` (from :func:`backend_flags`) says."""
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    torch.backends.cudnn.allow_tf32 = flags["tf32"]
    torch.backends.cuda.matmul.allow_tf32 = flags["tf32"]
    torch.backends.cudnn.deterministic = flags["deterministic"]
    if flags["deterministic"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS is deterministic only with it
    torch.use_deterministic_algorithms(flags["deterministic"])


def current_flags() -> dict[str, Any]:
    """The switches as torch has them now (for provenance)."""
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "deterministic": bool(torch.are_deterministic_algorithms_enabled()),
    }
