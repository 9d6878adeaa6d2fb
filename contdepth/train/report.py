"""What a run reports: its ``results.json`` so far, the line each epoch prints, the lines of a divergence and
of a failed save, and the provenance of each session (how it computed, and how many runs shared the device)."""

from __future__ import annotations

import errno
import os
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..flow import HasFlows
from ..provenance import provenance as base_provenance
from ..runs.records import portable_command, portable_path
from .backends import current_flags
from .compiling import effective_mode
from .momentum import momentum

if TYPE_CHECKING:
    from ..data import CifarData
    from .config import ResolvedConfig
    from .state import TrainState


CONCURRENT_ENV = "CONTDEPTH_CONCURRENT_RUNS"  # how many runs share this device (set by whoever starts several)


def concurrent_runs() -> int:
    """``$CONTDEPTH_CONCURRENT_RUNS`` (runs sharing this device), 1 when unset.

    Raises ``ValueError`` when it is set to anything but a positive integer."""
    text = os.environ.get(CONCURRENT_ENV, "").strip()
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${CONCURRENT_ENV} must be a positive integer (runs sharing the device), got {text!r}")
    return value


def provenance(
    device: torch.device, seed: int, world: int, *, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Where a result came from (:func:`contdepth.provenance.provenance`), with the GPU, the CUDA and cuDNN
    versions, the number of processes and ``settings`` (how it computed: compile mode, AMP, flags, ...)."""
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    return {
        **base_provenance(None, seed, device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "processes": world,
        "cuda": None if torch.version.cuda is None else str(torch.version.cuda),
        "cudnn": None if cudnn is None else str(cudnn),
        **(settings or {}),
    }


def speed_settings(
    cfg: ResolvedConfig, device: torch.device, optimizer: torch.optim.Optimizer, concurrent: int, *, amp: str
) -> dict[str, Any]:
    """How a session computes: compile mode, AMP (as asked, ``cfg.amp``, and as resolved, ``amp``), memory
    format, backend switches, the optimiser's implementation, and how many runs share the device (``concurrent``)."""
    return {
        "compile_mode": cfg.compile_mode,
        "compile_mode_used": effective_mode(cfg.compile_mode, device),
        "amp": amp,
        "amp_requested": cfg.amp,
        "memory_format": "channels_last" if cfg.channels_last else "contiguous",
        **current_flags(),
        "optimizer": {"name": "SGD", **{k: optimizer.defaults.get(k) for k in ("fused", "foreach")}},
        "concurrent_runs": concurrent,
    }


def steady_timing(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Epoch seconds and images/s as medians over the epochs after each session's first (which compiles and
    warms up; all epochs when no other is left), and the compile time summed over the run."""
    firsts = {r.get("session", 0): r["epoch"] for r in reversed(rows)}
    steady = [r for r in rows if firsts[r.get("session", 0)] != r["epoch"]] or rows
    return {
        "epoch_seconds": statistics.median(r["seconds"] for r in steady),
        "images_per_s": statistics.median(r["images_per_s"] for r in steady),
        "timed_epochs": len(steady),
        "compile_seconds": sum(r.get("compile_seconds", 0.0) for r in rows),
    }


def epoch_line(row: dict[str, Any], epochs: int | None) -> str:
    """The line training prints for a finished epoch's ``row`` (of ``epochs``)."""
    k = f"  max|k| {row['max_abs_k']:.3f}" if "max_abs_k" in row else ""
    return (
        f"epoch {row['epoch']:>3}/{epochs}  lr {row['lr']:.4g}  "
        f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%  "
        f"test loss {row['test_loss']:.4f} acc {100 * row['test_acc']:.2f}%  "
        f"{row['seconds']:.1f}s {row['images_per_s']:.0f} img/s{k}"
    )


def divergence_line(epoch: int, why: str, saved_at: tuple[int, int] | None, checkpoint: Path) -> str:
    """What training says when epoch ``epoch`` diverged (``why``): the last good checkpoint (its epoch and
    batch, ``saved_at``) stays in ``checkpoint``."""
    if saved_at is None:
        kept = "no checkpoint was saved before it"
    else:
        kept = f"kept the last good checkpoint (epoch {saved_at[0]} batch {saved_at[1]}) in {checkpoint}"
    return f"training diverged in epoch {epoch} ({why}); {kept}; try a lower --lr or --warmup"


def failure_line(what: Path, err: OSError, saved_at: tuple[int, int] | None) -> str:
    """What training says when writing ``what`` failed (a full disk, say): what was kept (the checkpoint of
    epoch and batch ``saved_at``, if any) and how to go on."""
    reason = "no space left on device" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (err.strerror or str(err))
    if saved_at is None:  # nothing to resume: the same command starts the run again
        kept, then = "no checkpoint was saved before it", "run the same command again"
    else:
        kept = f"the last good checkpoint (epoch {saved_at[0]} batch {saved_at[1]}) is kept"
        then = "continue with --resume"
    return f"{reason} while saving {what}; {kept}; free some space and {then}"


def scheme_name(model: nn.Module, default: str | None) -> str | None:
    """The schemes ``model``'s flows integrate with (comma-separated), or ``default`` when it has none."""
    flows = model.flows() if isinstance(model, HasFlows) else []
    names = sorted({f.scheme.name for f in flows})
    return ",".join(names) if names else default


def results(
    cfg: ResolvedConfig,
    state: TrainState,
    *,
    model: nn.Module,
    data: CifarData,
    images: tuple[int, int],
    out: str | os.PathLike,
    diverged_at: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run's ``results.json`` so far: settings, test errors in % and accuracies as fractions, timing, the
    learned momentum ``k`` (LM models), the data copy, and each session's provenance. ``images``: the train
    and test images used; ``diverged_at``: the epoch and reason of a divergence; paths are kept portable."""
    rows = state.history
    res: dict[str, Any] = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "scheme": scheme_name(model, cfg.scheme),
        "noise": cfg.noise,
        "steps_per_block": cfg.steps_per_block,
        "trained_steps_per_block": cfg.trained_steps_per_block,
        "train_steps": cfg.train_steps,
        "refine_at": cfg.refine_at,
        "depth_basis": cfg.depth_basis,
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": cfg.epochs,
        "epochs_done": state.epoch,
        "complete": state.epoch >= cfg.epochs,
        "diverged": diverged_at is not None,
    }
    if diverged_at is not None:
        res["diverged_at"] = diverged_at
    if rows:
        best = min(rows, key=lambda r: (1 - r["test_acc"], r["epoch"]))
        res.update(
            {
                "final_test_error": 100 * (1 - rows[-1]["test_acc"]),
                "best_test_error": 100 * (1 - best["test_acc"]),
                "best_epoch": best["epoch"],
                "final_test_acc": rows[-1]["test_acc"],
                "final_test_loss": rows[-1]["test_loss"],
                "final_train_loss": rows[-1]["train_loss"],
                "final_train_acc": rows[-1]["train_acc"],
                "mean_images_per_s": sum(r["images_per_s"] for r in rows) / len(rows),
                "mean_epoch_seconds": sum(r["seconds"] for r in rows) / len(rows),
                **steady_timing(rows),
            }
        )
    ks = momentum(model)
    if ks:
        res["max_abs_k"] = max(abs(k) for stage in ks for k in stage)
        res["momentum_k"] = ks
    res["units"] = {"*_error": "% of test images", "*_acc": "fraction", "*_loss": "cross-entropy (nats)"}
    res["train_images"], res["test_images"] = images
    res["evaluated_on"] = f"validation: the last {cfg.validation} training images" if cfg.validation else "test"
    # paths as the run folder sees them (or folder names): results carry no paths of the machine
    res["data_dir"] = portable_path(data.root, out)
    if data.integrity is not None:
        res["data"] = data.integrity.to_dict()  # which copy of the data: fingerprint, official or not
    res["config"] = {
        **cfg.to_dict(),
        "data_dir": portable_path(cfg.data_dir, out),
        "out": Path(os.path.abspath(out)).name,
    }
    sessions = [{**s, "command": portable_command(s.get("command", ""), out)} for s in state.sessions]
    res["provenance"] = sessions[-1] if sessions else {}
    res["sessions"] = sessions
    return res
