"""What a :class:`~contdepth.train.trainer.Trainer` works with, built in one go: :func:`build_parts`.

Building the parts sets a run up: it joins the process group, opens (and locks) the run folder and decides how
the run starts there (:mod:`contdepth.train.start`), builds model, data, loaders, optimiser, schedule and the
compiled nets, restores a resumed run from its checkpoint (:mod:`contdepth.train.resuming`), and writes the
run's ``config.json``. A start-up that fails or is interrupted leaves no new folder behind. The random streams
are drawn in one fixed order (the model's weights, then the data order), which exact resumption relies on.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data import CifarData, DeviceLoader
from ..runs import records
from ..runs.files import CONFIG
from ..runs.folder import RunFolder
from . import build, report
from . import distributed as dist_util
from .amp import resolve_amp
from .backends import apply_backend_flags, backend_flags
from .build import data_from_config
from .compiling import compile_module, effective_mode
from .config import ResolvedConfig, TrainConfig
from .interrupt import terminate_as_interrupt
from .progress import Progress, choose_style
from .resuming import load_checkpoint, restore
from .saver import RunSaver
from .start import plan
from .state import EpochMeter, TrainState


@dataclass(frozen=True)
class TrainerParts:
    """A run set up to train, on this process (its place in the process group is ``dist``).

    ``model`` is the bare model (its weights are what checkpoints keep); ``net`` trains it (DDP and/or
    compiled) and ``eval_net`` evaluates it (compiled, without DDP, whose per-forward buffer broadcast would
    need the same number of test batches on every process). ``state`` is where the run stands, restored
    from the checkpoint when it ``resumed``; ``saver`` writes the run folder; ``folder`` is the locked run
    folder on rank 0 (None on the other processes).
    """

    cfg: ResolvedConfig
    dist: dist_util.Dist
    device: torch.device
    amp: str  # the resolved mode, "none" or "bf16"
    backend_flags: dict[str, Any]
    concurrent_runs: int  # runs sharing the device
    folder: RunFolder | None
    model: nn.Module
    params: int
    data: CifarData
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    net: nn.Module
    eval_net: nn.Module
    criterion: nn.Module
    state: TrainState
    saver: RunSaver
    progress: Progress
    resumed: bool


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_parts(
    config: TrainConfig | ResolvedConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model: nn.Module | None = None,
) -> TrainerParts:
    """Set up the run ``config`` on this process (see the module docstring); the arguments are
    :class:`~contdepth.train.trainer.Trainer`'s."""
    cfg = config.resolve()
    out = Path(cfg.out)
    dist = dist_util.setup(cfg.device)
    folder: RunFolder | None = None
    try:
        with terminate_as_interrupt():
            device = dist.device
            amp = resolve_amp(cfg.amp, device)
            flags = backend_flags(device.type, cfg.deterministic)
            apply_backend_flags(flags)
            concurrent = report.concurrent_runs()
            if dist.main:
                folder = RunFolder(out, resume=resume, overwrite=overwrite).open()
            start = plan(out, cfg, resume=resume, overwrite=overwrite)
            if start.note and dist.main:
                print(start.note, file=sys.stderr, flush=True)
            saved = load_checkpoint(out, cfg) if start.resume else None
            seed_everything(cfg.seed)  # the weights (and LM's k) are the same on every process
            bare = model if model is not None else build.model_from_config(cfg)
            _check_step_recipe(bare, cfg)
            params = build.count_params(bare)
            data = _load_data(cfg, dist)
            # the model's own noise differs per process; the data order is shared
            seed_everything(cfg.seed + 1000 * dist.rank)
            bare = build.place_model(bare, cfg, device, distributed=dist.active)
            train_loader, test_loader = build.loaders_from_config(cfg, data, device, rank=dist.rank, world=dist.world)
            optimizer, scheduler = build.optimizer_from_config(bare, cfg, device, train_loader.num_batches)
            net, eval_net = _compiled_nets(bare, cfg, dist)
            state = TrainState(meter=EpochMeter(device, lr=float(optimizer.param_groups[0]["lr"])))
            kept: dict[str, Any] = {
                "model": bare,
                "optimizer": optimizer,
                "scheduler": scheduler,
                "loader": train_loader,
            }
            if saved is not None:
                restore(saved, state, dist, out=out, **kept)
            settings = report.speed_settings(cfg, device, optimizer, concurrent, amp=amp)
            state.sessions.append(report.provenance(device, cfg.seed, dist.world, settings=settings))
            if folder is not None:
                folder.create()
                folder.clear(start.clear)
                records.write_json(out / CONFIG, cfg.to_dict())
    except BaseException:
        if folder is not None:
            folder.abandon()
        dist_util.teardown(dist)
        raise
    parts = TrainerParts(
        cfg=cfg,
        dist=dist,
        device=device,
        amp=amp,
        backend_flags=flags,
        concurrent_runs=concurrent,
        folder=folder,
        model=bare,
        params=params,
        data=data,
        train_loader=train_loader,
        test_loader=test_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        net=net,
        eval_net=eval_net,
        criterion=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        state=state,
        saver=RunSaver(cfg, dist, saved_at=(state.epoch, state.batch) if saved is not None else None, **kept),
        progress=make_progress(cfg, dist, train_loader, test_loader),
        resumed=saved is not None,
    )
    if dist.main:
        print(_start_line(parts), flush=True)
    return parts


def make_progress(
    cfg: ResolvedConfig,
    dist: dist_util.Dist,
    train_loader: DeviceLoader,
    test_loader: DeviceLoader,
    style: str | None = None,
) -> Progress:
    """Progress on stderr (rank 0 only): a bar on a terminal, a line every ``progress_every`` s otherwise."""
    if style is None:
        style = choose_style(cfg.progress and dist.main, sys.stderr)
    return Progress(
        style,
        epochs=cfg.epochs,
        batches=len(train_loader),
        eval_batches=len(test_loader),
        images_per_batch=cfg.batch_size,
        every=cfg.progress_every,
    )


def _check_step_recipe(model: nn.Module, cfg: ResolvedConfig) -> None:
    if (cfg.train_steps or cfg.refine_at) and not callable(getattr(model, "rediscretise", None)):
        raise ValueError(
            f"--train-steps and --refine-at change the step count, which {type(model).__name__} "
            "cannot (it has no rediscretise())"
        )


def _load_data(cfg: ResolvedConfig, dist: dist_util.Dist) -> CifarData:
    first = cfg.download and dist.active
    if first and not dist.main:
        dist_util.barrier(dist)  # rank 0 downloads, the others read after it
    data = data_from_config(cfg, quiet=not dist.main)  # one warning about the data, not one per process
    if first and dist.main:
        dist_util.barrier(dist)
    if data.num_classes != cfg.num_classes:
        raise ValueError(f"{cfg.dataset} at {data.root} has {data.num_classes} classes, expected {cfg.num_classes}")
    return data


def _compiled_nets(model: nn.Module, cfg: ResolvedConfig, dist: dist_util.Dist) -> tuple[nn.Module, nn.Module]:
    """The net that trains (DDP and/or compiled) and the one that evaluates (compiled, no DDP)."""
    mode, device = cfg.compile_mode, dist.device
    if mode != effective_mode(mode, device) and dist.main:
        print(
            f"note: --compile-mode {mode} records CUDA graphs, which exist on CUDA only; "
            f"compiling with mode {effective_mode(mode, device)} on {device.type}",
            file=sys.stderr,
        )
    eval_net = compile_module(model, mode, device)
    if not dist.active:
        return eval_net, eval_net
    # static_graph: parameters that no step ever reads need no per-step search for unused ones
    ddp = DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
    )
    return compile_module(ddp, mode, device), eval_net


def _start_line(p: TrainerParts) -> str:
    """The line a start prints: model, parameters, where the run starts, images, device and processes."""
    where = "starting"
    if p.resumed and p.state.epoch >= p.cfg.epochs:
        where = f"all {p.state.epoch} epochs trained, writing the outputs"
    elif p.resumed:
        where = f"resuming at epoch {p.state.epoch + 1} batch {p.state.batch}"
    held = "validation" if p.cfg.validation else "test"
    return (
        f"{p.cfg.model}: {p.params:,} parameters, {where}; "
        f"{p.train_loader.num_examples} train / {p.test_loader.num_examples} {held} images "
        f"on {p.device} x {p.dist.world}{' in bf16 autocast' if p.amp == 'bf16' else ''}"
    )
