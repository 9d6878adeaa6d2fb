"""Test accuracy of a trained run, optionally under another scheme / step count (``contdepth eval``).

>>> evaluate_run("runs/lm56", scheme="rk4", steps_per_block=2)    # doctest: +SKIP
{'test_acc': 0.93, 'test_error': 7.0, ...}
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import _checks
from ..data import CifarData, DeviceLoader, load_cifar
from ..runs.weights import load_weights_into, read_trained_state
from .amp import autocast, resolve_amp
from .build import model_from_config
from .compiling import compile_module, effective_mode
from .config import TrainConfig
from .distributed import resolve_device
from .loading import load_run_config, rediscretise


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
    steps_per_block: float | None = None,
    *,
    depth_basis: str | None = None,
    knots_per_block: float | None = None,
    recalibrate_bn: int | None = None,
    per_step_bn: bool = True,
    samples: int | None = None,
    seed: int = 0,
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
        scheme, steps_per_block: evaluate under this scheme / step count (default: as trained); a fraction
            (½) for depth-continuous nets.
        depth_basis: ``linear`` evaluates a blockwise-trained net as weights continuous in depth (its
            blocks become the knots: the same net at its trained step count).
        knots_per_block: project a depth-continuous net onto this many knots per block (2: refined,
            ½: compressed) before re-discretising (:meth:`~contdepth.models.ResidualNet.reknot`).
        recalibrate_bn: re-estimate BatchNorm statistics at the new discretisation from this many training
            images (:func:`recalibration_batches`; ``recalibrated_images`` says how many it used), augmented
            as in training (:func:`~contdepth.models.recalibrate_bn`; ``per_step_bn``: one set
            per evaluation of a block, the default, else one per BatchNorm).
        samples: also run the net this many times with its noise on (:func:`~contdepth.models.monte_carlo`):
            ensemble, mean-field and single-draw accuracy, predictive entropy; ``seed`` seeds the draws and the
            recalibration images' augmentation.
        data_dir, device, batch_size, test_subset: override the run's settings.
        amp: ``auto`` (default: bf16 autocast on a CPU with bf16 units), ``bf16`` or ``none``.
        compile_mode: ``torch.compile`` the model in this mode (see ``contdepth.train.compiling``);
            the reported ``seconds`` then include compiling.
        model: a freshly built module of the run's architecture, for runs of a model not in the zoo.
        data: the data set, already read (saves re-reading it when sweeping schemes).

    Returns ``dict(test_acc (fraction), test_error (%), test_loss, images, scheme, steps_per_block,
    trained_scheme, trained_steps_per_block, epochs_done, seconds, recalibrated_images, ...)`` and, with
    ``samples``, ``monte_carlo`` (the dict of :func:`~contdepth.models.monte_carlo`).
    """
    check_eval_options(recalibrate_bn=recalibrate_bn, samples=samples, knots_per_block=knots_per_block)
    cfg = load_run_config(run_dir)
    run = Path(run_dir)
    trained_state = read_trained_state(run)
    dev = resolve_device(device)
    effective_mode(compile_mode, dev)  # an unknown mode fails before any work
    if model is None:
        model = model_from_config(cfg, trained=True)
    load_weights_into(model, trained_state, cfg.model)
    trained = (getattr(model, "scheme", cfg.scheme), getattr(model, "steps_per_block", cfg.steps_per_block))
    if depth_basis not in (None, getattr(model, "depth_basis", "blocks")):
        model = _with_depth_basis(model, cfg, depth_basis)
    if knots_per_block is not None:
        reknot = getattr(model, "reknot", None)
        if not callable(reknot):
            raise TypeError(f"{type(model).__name__} has no reknot(): it cannot change its number of knots")
        reknot(knots_per_block)
    rediscretise(model, scheme, steps_per_block)
    if samples:
        from ..models.sampling import has_noise

        if not has_noise(model):
            raise ValueError(f"--samples: {cfg.model} was trained without noise; Monte Carlo needs a noisy net")
    model.to(dev)
    if data is None or (recalibrate_bn and len(data.train) == 0):
        data = load_cifar(cfg.dataset, data_dir or cfg.data_dir, train=bool(recalibrate_bn))
    amp_used = resolve_amp(amp or "auto", dev)
    recal_seconds, recalibrated = 0.0, 0
    if recalibrate_bn:
        recal_start = time.perf_counter()
        from ..models import recalibrate_bn as recalibrate_bn_stats

        images = recalibration_batches(data, recalibrate_bn, seed, device=dev)
        with autocast(amp_used, dev):
            recalibrated = recalibrate_bn_stats(model, images, per_step=per_step_bn)
        recal_seconds = time.perf_counter() - recal_start
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
    loss_sum, correct, seen = eval_sums(net, loader.batches(), dev, amp_used).tolist()
    seconds = time.perf_counter() - start
    extra: dict[str, Any] = {}
    if samples:
        from ..models import monte_carlo  # the zoo is imported where it is used

        context = autocast(amp_used, dev)
        extra["monte_carlo"] = monte_carlo(model, loader.batches(), samples, seed=seed, autocast=context)
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
        "seconds": seconds,
        "recalibrated_images": recalibrated,
        "recalibration_seconds": recal_seconds,
        "device": str(dev),
        "compile_mode": effective_mode(compile_mode, dev),
        "amp": amp_used,
        **extra,
    }


RECALIBRATION_BATCH = 200  # images per recalibration batch (BatchNorm's batch statistics, as in training)


def recalibration_batches(
    data: CifarData,
    images: int,
    seed: int,
    *,
    batch: int = RECALIBRATION_BATCH,
    augment: bool = True,
    device: str | torch.device = "cpu",
) -> Iterable[Tensor]:
    """The inputs BatchNorm recalibration runs on: ``images`` training images evenly spaced (all of them when there
    are fewer), in batches of ``batch`` (at most the images), augmented as in training under ``seed`` (which then
    drops a last partial batch) or as they are. Normalised ``(B, 3, 32, 32)`` tensors on ``device``."""
    split = data.train.spread(images)
    loader = DeviceLoader(
        split, min(batch, len(split)), train=augment, seed=seed, mean=data.mean, std=data.std, device=device
    )
    if augment:
        loader.begin_epoch()
    return (x for x, _ in loader.batches())


def check_eval_options(
    *, recalibrate_bn: object = None, samples: object = None, knots_per_block: object = None
) -> None:
    """One line naming the valid range for a bad ``recalibrate_bn``, ``samples`` or ``knots_per_block``, before
    any work (``TypeError`` for a value of the wrong type, ``ValueError`` for one out of range)."""
    for name, value in (("recalibrate_bn", recalibrate_bn), ("samples", samples)):
        if value is not None:
            _checks.count(name, value)
    if knots_per_block is not None:
        _checks.positive("knots_per_block", knots_per_block)


def _with_depth_basis(model: nn.Module, cfg: TrainConfig, depth_basis: str) -> nn.Module:
    """The run's net rebuilt with ``depth_basis``, holding the trained weights (the state-dict keys agree)."""
    new = model_from_config(cfg, depth_basis=depth_basis)
    new.load_state_dict(model.state_dict())
    new.rediscretise(steps_per_block=getattr(model, "steps_per_block", cfg.steps_per_block))
    return new
