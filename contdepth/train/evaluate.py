"""``contdepth eval``: test accuracy of a trained run, optionally under another scheme / step count.

>>> evaluate_run("runs/lm56", scheme="rk4", steps_per_block=2)    # doctest: +SKIP
{'test_acc': 0.93, 'test_error': 7.0, ...}
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import CifarData, DataError, DeviceLoader, load_cifar
from .amp import AMP_CHOICES, autocast, resolve_amp
from .argtypes import positive_int, report_error
from .backends import apply_backend_flags, backend_flags
from .build import model_from_config
from .compiling import COMPILE_MODES, compile_module, effective_mode
from .distributed import resolve_device
from .weights import load_run_config, load_weights_into, read_trained_state, rediscretise


@torch.no_grad()
def eval_sums(
    model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device, amp: str = "none"
) -> Tensor:
    """``[summed cross-entropy, correct, count]`` (float64, on ``device``) of ``model`` in eval mode.

    ``amp``: ``"none"``, ``"bf16"`` (autocast) or ``"auto"`` (:func:`~contdepth.train.amp.resolve_amp`).
    """
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    seen = 0
    mode = resolve_amp(amp, device)
    for x, y in batches:
        with autocast(mode, device):
            logits = model(x)
        logits = logits.float()  # the loss in float32 under any autocast
        sums += torch.stack(
            [F.cross_entropy(logits, y, reduction="sum").double(), (logits.argmax(1) == y).sum().double()]
        )
        seen += y.shape[0]
    return torch.cat([sums, torch.tensor([seen], dtype=torch.float64, device=device)])


def evaluate_run(
    run_dir: str | Path,
    scheme: str | None = None,
    steps_per_block: int | None = None,
    *,
    data_dir: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    test_subset: int | None = None,
    amp: str | None = None,
    compile_mode: str | None = None,
    model: nn.Module | None = None,
    data: CifarData | None = None,
) -> dict[str, Any]:
    """Test loss/accuracy of the run's latest weights, rebuilt from its config and re-discretised.

    Args:
        run_dir: a directory written by ``contdepth train`` (``checkpoint.pt``, or ``weights.fp16.pt``
            alone as in committed results).
        scheme, steps_per_block: evaluate under this scheme / step count (default: as trained).
        data_dir, device, batch_size, test_subset: override the run's settings.
        amp: ``auto`` (default: bf16 autocast on a CPU with bf16 units), ``bf16`` or ``none``.
        compile_mode: ``torch.compile`` the model in this mode (see ``contdepth.train.compiling``);
            the reported ``seconds`` then include compiling.
        model: a freshly built module of the run's architecture, for runs of a model not in the zoo.
        data: the data set, already read (saves re-reading it when sweeping schemes).

    Returns ``dict(test_acc (fraction), test_error (%), test_loss, images, scheme, steps_per_block,
    trained_scheme, trained_steps_per_block, epochs_done, seconds, ...)``.
    """
    cfg = load_run_config(run_dir)
    run = Path(run_dir)
    trained_state = read_trained_state(run)
    dev = resolve_device(device)
    effective_mode(compile_mode, dev)  # an unknown mode fails before any work
    if model is None:
        model = model_from_config(cfg, trained=True)
    load_weights_into(model, trained_state, cfg.model)
    trained = (getattr(model, "scheme", cfg.scheme), getattr(model, "steps_per_block", cfg.steps_per_block))
    rediscretise(model, scheme, steps_per_block)
    model.to(dev)
    if data is None:
        data = load_cifar(cfg.dataset, data_dir or cfg.data_dir, train=False)
    subset = test_subset if test_subset is not None else cfg.test_subset
    loader = DeviceLoader(
        data.test.spread(subset),
        batch_size or cfg.eval_batch_size,
        train=False,
        mean=data.mean,
        std=data.std,
        device=dev,
    )
    net = compile_module(model, compile_mode, dev)
    start = time.perf_counter()
    amp_used = resolve_amp(amp or "auto", dev)
    loss_sum, correct, seen = eval_sums(net, loader.batches(), dev, amp_used).tolist()
    return {
        "run": str(run),
        "model": cfg.model,
        "dataset": cfg.dataset,
        "scheme": getattr(model, "scheme", scheme),
        "steps_per_block": getattr(model, "steps_per_block", steps_per_block),
        "trained_scheme": trained[0],
        "trained_steps_per_block": trained[1],
        "test_acc": correct / seen,
        "test_error": 100 * (1 - correct / seen),
        "test_loss": loss_sum / seen,
        "images": int(seen),
        "epochs_done": trained_state.epoch,
        "weights": trained_state.source.name,
        "seconds": time.perf_counter() - start,
        "device": str(dev),
        "compile_mode": effective_mode(compile_mode, dev),
        "amp": amp_used,
    }


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--run", required=True, help="run directory written by `contdepth train`")
    a("--scheme", help="evaluate under this scheme (euler, lm2, rk4, heun, ...; default: as trained)")
    a("--steps-per-block", type=positive_int, help="steps per residual block (default: as trained)")
    a("--data-dir", help="data folder (default: the run's)")
    a("--device", help="cuda or cpu (default: cuda when available)")
    a("--batch-size", type=positive_int, help="evaluation batch size (default: the run's, 500)")
    a(
        "--test-subset",
        type=positive_int,
        metavar="N",
        help="N test images evenly spaced through the split (default: the run's, all)",
    )
    a(
        "--compile-mode",
        choices=COMPILE_MODES,
        help="torch.compile the model: default, reduce-overhead (CUDA graphs, CUDA only), max-autotune "
        "(worth it for large test sets only: compiling takes longer than evaluating 10,000 images)",
    )
    a("--amp", choices=AMP_CHOICES, help="bf16 autocast: auto (default: on a CPU with bf16 units), bf16 or none")
    a("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        apply_backend_flags(backend_flags(resolve_device(args.device).type, deterministic=False))
        result = evaluate_run(
            args.run,
            args.scheme,
            args.steps_per_block,
            data_dir=args.data_dir,
            device=args.device,
            batch_size=args.batch_size,
            test_subset=args.test_subset,
            compile_mode=args.compile_mode,
            amp=args.amp,
        )
    except (ValueError, TypeError, FileNotFoundError, DataError) as err:
        return report_error("eval", err)
    except OSError as err:  # the run or the data cannot be read
        where = f" ({err.filename})" if err.filename else ""
        return report_error("eval", f"{err.strerror or err}{where}")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['model']} (trained: {result['trained_scheme']}, {result['trained_steps_per_block']} step/block, "
            f"{result['epochs_done']} epochs) under {result['scheme']} with {result['steps_per_block']} step/block: "
            f"test acc {100 * result['test_acc']:.2f}% (error {result['test_error']:.2f}%), "
            f"loss {result['test_loss']:.4f}, {result['images']} images, {result['seconds']:.1f}s"
        )
    return 0
