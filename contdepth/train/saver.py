"""What a training run writes to its folder: checkpoints, the records of each epoch, and its final outputs.

:class:`RunSaver` is the one writer of a run folder while a run trains (as timm's ``CheckpointSaver`` is of
its output folder): the checkpoint at each epoch's end and on a stop, ``metrics.jsonl`` and ``results.json``
with it, and at the end the fp16 weights of a complete run and its plots. Only rank 0 writes; every process
takes part in a checkpoint (each one's random streams are kept). A write that fails (a full disk) keeps
the last good checkpoint and becomes :attr:`RunSaver.failure`, one line saying what was kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DeviceLoader
from ..runs import checkpoint as ckpt
from ..runs import records
from ..runs.files import CHECKPOINT, CURVES, METRICS, MOMENTUM_PLOT, RESULTS, WEIGHTS
from ..runs.weights import save_weights
from . import distributed as dist_util
from . import report
from .config import ResolvedConfig
from .state import TrainState


class RunSaver:
    """Writes the run folder ``config.out`` for a run training ``model`` with ``optimizer``, ``scheduler`` and
    the training ``loader`` (their states are what a checkpoint keeps beside :class:`TrainState`).

    ``saved_at``: the (epoch, batch) of the checkpoint on disk (None before the first); ``failure``: why a
    write failed, or None.
    """

    def __init__(
        self,
        config: ResolvedConfig,
        dist: dist_util.Dist,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        loader: DeviceLoader,
        saved_at: tuple[int, int] | None = None,
    ) -> None:
        self.cfg = config
        self.out = Path(config.out)
        self.dist = dist
        self.model = model
        self.kept: dict[str, Any] = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "loader": loader}
        self.saved_at = saved_at
        self.failure: str | None = None

    def checkpoint(self, state: TrainState) -> bool:
        """Checkpoint the current step (every process's RNG state; rank 0 writes); False when a process failed
        (then every process returns False)."""
        rngs = dist_util.all_gather_objects(
            self.dist, {"rng": ckpt.rng_state(), "modules": ckpt.module_generator_states(self.model)}
        )
        failed = False
        if self.dist.main:
            path = self.out / CHECKPOINT
            try:
                ckpt.save_atomic(ckpt.training_checkpoint(state, self.cfg.to_dict(), rngs=rngs, **self.kept), path)
            except OSError as err:
                self._failed(path, err)
                failed = True
        if dist_util.any_flag(self.dist, failed):  # every process stops together
            return False
        self.saved_at = (state.epoch, state.batch)
        return True

    def records(self, state: TrainState, results: dict[str, Any], *, final: bool, diverged: bool) -> bool:
        """Write ``metrics.jsonl`` and ``results.json`` (rank 0); ``final``: also the fp16 weights of a complete
        run that did not diverge, and the plots. False when a write failed."""
        if not self.dist.main:
            return True
        try:
            records.write_metrics(self.out / METRICS, state.history)
            records.write_json(self.out / RESULTS, results)
            if final and results["complete"] and not diverged:
                save_weights(self.model.state_dict(), self.out / WEIGHTS, model=self.cfg.model, epoch=state.epoch)
            if final and state.history:
                from .plots import plot_curves, plot_momentum, run_title

                title = run_title(self.cfg)
                plot_curves(state.history, self.out / CURVES, title)
                if "momentum_k" in results:
                    plot_momentum(results["momentum_k"], self.out / MOMENTUM_PLOT, title)
        except OSError as err:
            self._failed(Path(err.filename) if err.filename else self.out, err)
            return False
        return True

    def _failed(self, what: Path, err: OSError) -> None:
        """Record a failed write as :attr:`failure` (the first one), one line saying what was kept."""
        if self.failure is None:
            self.failure = report.failure_line(what, err, self.saved_at)
