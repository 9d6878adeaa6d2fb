"""The training loop: paper recipe, device-resident data, per-epoch checkpoints, exact resume, DDP.

A :class:`Trainer` is built whole: :func:`~contdepth.train.parts.build_parts` sets the run up and gives its
parts as one frozen record (:class:`~contdepth.train.parts.TrainerParts`: model, data, loaders, optimiser,
schedule, compiled nets, progress, the run's state and its saver), which ``Trainer.__init__`` receives;
every attribute of a Trainer is set there. The Trainer runs the loop (steps, epochs, evaluation, stopping,
divergence); its :class:`~contdepth.train.saver.RunSaver` writes the run folder.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..runs.files import CHECKPOINT
from . import distributed as dist_util
from . import report
from .amp import autocast
from .compiling import mark_step
from .config import ResolvedConfig, TrainConfig
from .divergence import DivergenceWatch, nonfinite_tensors
from .evaluate import eval_sums
from .interrupt import StopRequest
from .momentum import check_stability, lm_schemes
from .parts import TrainerParts, build_parts
from .stepping import eval_steps_at, train_steps_at

__all__ = ["BatchHook", "Trainer", "TrainerParts", "build_parts"]

BatchHook = Callable[["Trainer", int, int], None]
STOP_CHECK_EVERY = 10  # batches between cross-process checks for a stop request (each one syncs)


class Trainer:
    """Trains ``config.model`` on ``config.dataset`` and keeps the run directory ``config.out`` up to date.

    Args:
        config: the run's settings (:class:`TrainConfig`, or a :class:`ResolvedConfig`), or the parts of a
            run already set up (:class:`TrainerParts`, from :func:`build_parts`, which takes the next three).
        resume: continue the run saved in ``config.out`` (its settings must match ``config``
            apart from :data:`~contdepth.train.config.RUNTIME_KEYS`); a folder without progress
            starts afresh, with a note. What each state of a run folder leads to is decided in
            :mod:`contdepth.train.start` (the table is in the troubleshooting guide).
        overwrite: start a new run in a folder that holds another run's progress (its files are
            removed once the new run is ready to write; without it such a folder is refused).
        model: train this module instead of building ``config.model`` from the zoo (``config.model``
            then only names it; build it the same way again to resume or evaluate the run).
        on_batch_end: called as ``hook(trainer, epoch, batch)`` after every optimiser step.

    Building a Trainer sets the run up (:mod:`contdepth.train.parts`): it joins the process group, locks the
    run folder, builds model, data and optimiser and restores a resumed run, so set-up errors (bad names,
    missing data, a run folder in use) surface here; a start-up that fails or is interrupted leaves no new
    folder behind. Its parts are attributes of the same names (``trainer.model``, ``trainer.train_loader``,
    ...); ``trainer.parts`` is the whole record and ``trainer.cfg`` the resolved settings.

    ``fit()`` returns the results dict (also written to ``results.json``); after Ctrl-C/SIGTERM
    it saves a checkpoint at the current step and returns with ``trainer.stopped`` set. Only
    finite weights are saved: on a divergence the last good checkpoint stays and ``trainer.diverged``
    is set; a save that fails (a full disk) leaves the last good checkpoint and sets ``trainer.failure``.
    Where the run stands (epochs, steps, history, the epoch so far) is ``trainer.state`` (:class:`TrainState`).
    """

    def __init__(
        self,
        config: TrainConfig | ResolvedConfig | TrainerParts,
        *,
        resume: bool = False,
        on_batch_end: BatchHook | None = None,
        model: nn.Module | None = None,
        overwrite: bool = False,
    ) -> None:
        if isinstance(config, TrainerParts):
            if resume or overwrite or model is not None:
                raise TypeError("resume, overwrite and model set a run up: give them to build_parts(), not Trainer")
            parts = config
        else:
            parts = build_parts(config, resume=resume, overwrite=overwrite, model=model)
        self.parts = parts
        self.cfg = parts.cfg
        self.out = Path(parts.cfg.out)
        self.dist, self.device, self.amp = parts.dist, parts.device, parts.amp
        self.backend_flags, self.concurrent_runs, self.params = parts.backend_flags, parts.concurrent_runs, parts.params
        self.model, self.net, self.eval_net, self.criterion = parts.model, parts.net, parts.eval_net, parts.criterion
        self.optimizer, self.scheduler = parts.optimizer, parts.scheduler
        self.data, self.train_loader, self.test_loader = parts.data, parts.train_loader, parts.test_loader
        self.state, self.saver, self.progress = parts.state, parts.saver, parts.progress
        self.on_batch_end = on_batch_end
        self.stopped = False
        self.diverged = False
        self.diverged_at: dict[str, Any] | None = None
        self._stop = StopRequest()
        self._compiled = {"train": False, "eval": False}  # first call of each compiled graph seen this session

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return self.state.epoch

    @property
    def batch(self) -> int:
        """Optimiser steps done in epoch ``epoch + 1``."""
        return self.state.batch

    @property
    def history(self) -> list[dict[str, Any]]:
        """One row per completed epoch (what ``metrics.jsonl`` holds)."""
        return self.state.history

    @property
    def failure(self) -> str | None:
        """Why the run could not save (a full disk, say): one line; None while every write succeeded."""
        return self.saver.failure

    # ---------------------------------------------------------------- helpers
    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def _first_call_timed(self, graph: str):
        """Time the first call of a compiled graph (compiling it) into this epoch's ``compile_seconds``."""
        if not self.cfg.compile or self._compiled[graph]:
            yield
            return
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.state.meter.compile_seconds += time.perf_counter() - start
        self._compiled[graph] = True

    def _stop_requested(self, last: bool) -> bool:
        """Whether all processes agree to stop now (checked every step alone, every few steps in DDP)."""
        if not self.dist.active:
            return self._stop.requested
        if last or self.batch % STOP_CHECK_EVERY == 0:
            return dist_util.any_flag(self.dist, self._stop.requested)
        return False

    def request_stop(self) -> None:
        """Ask the loop to save and stop after the current step (what Ctrl-C does)."""
        self._stop.request()

    # ---------------------------------------------------------------- training
    def _use_steps(self, steps_per_block: int) -> None:
        """Re-discretise the model at ``steps_per_block`` when a step-count recipe asks for another count (a
        compiled net keeps one graph per count: the model hands back the same flows for a count seen before)."""
        if not (self.cfg.train_steps or self.cfg.refine_at):
            return
        if getattr(self.model, "steps_per_block", None) != steps_per_block:
            self.model.rediscretise(steps_per_block=steps_per_block)  # type: ignore[operator]

    def _train_step(self, x: Tensor, y: Tensor) -> None:
        """One optimiser step; loss and correct count are added to the epoch's meter on the device (no sync)."""
        cfg = self.cfg
        epoch, batch = self.state.epoch + 1, self.state.batch
        self._use_steps(train_steps_at(cfg.steps_per_block, cfg.train_steps, cfg.refine_at, cfg.seed, epoch, batch))
        mark_step(cfg.compile_mode, self.device)
        with autocast(self.amp, self.device):
            logits = self.net(x)
        loss = self.criterion(logits.float(), y)  # the loss in float32 under any autocast
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            self.state.meter.observe(loss, logits, y, self.state.batch + 1)

    def _train_epoch(self, epoch: int) -> bool:
        """Run the rest of epoch ``epoch``; False when stopped part-way (state saved by the caller)."""
        self.model.train()
        loader = self.train_loader
        loader.begin_epoch()
        n_batches, state, meter = loader.num_batches, self.state, self.state.meter
        start = time.perf_counter()
        halted = False
        self.progress.start_epoch(epoch, state.batch)
        try:
            for x, y in loader.batches(state.batch):
                with self._first_call_timed("train"):
                    self._train_step(x, y)
                state.batch += 1
                if self.on_batch_end is not None:
                    self.on_batch_end(self, epoch, state.batch)
                self.progress.step(state.batch, meter.means)
                if self._stop_requested(last=state.batch == n_batches):
                    halted = True
                    break
        finally:
            self.progress.end_epoch()
        self._sync()
        meter.seconds += time.perf_counter() - start
        return not halted

    def evaluate(self) -> dict[str, float]:
        """Test loss and accuracy of the current weights over the whole test split (all processes)."""
        self._use_steps(eval_steps_at(self.cfg.steps_per_block, self.cfg.refine_at, self.state.epoch + 1))
        batches = iter(self.progress.evaluating(self.test_loader.batches()))
        with self._first_call_timed("eval"):  # the first batch alone: it compiles the evaluation graph
            sums = eval_sums(self.eval_net, itertools.islice(batches, 1), self.device, self.amp)
        sums += eval_sums(self.eval_net, batches, self.device, self.amp)
        loss_sum, correct, seen = dist_util.all_reduce_sum(self.dist, sums).tolist()
        return {"test_loss": loss_sum / seen, "test_acc": correct / seen}

    def _finish_epoch(self, epoch: int) -> dict[str, Any]:
        """Epoch ``epoch``'s row: training loss and accuracy over all processes, test loss and accuracy, timing."""
        meter = self.state.meter
        sums = torch.cat([meter.sums, torch.tensor([meter.seen], dtype=torch.float64, device=self.device)])
        loss_sum, correct, seen = dist_util.all_reduce_sum(self.dist, sums).tolist()
        t_eval = time.perf_counter()
        test = self.evaluate()
        max_k, stable = check_stability(self.model)
        eval_seconds = time.perf_counter() - t_eval
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": meter.lr,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            **test,
            "seconds": meter.seconds + eval_seconds,
            "images_per_s": seen / max(meter.seconds, 1e-9),
            "compile_seconds": meter.compile_seconds,
            "session": len(self.state.sessions) - 1,
        }
        if lm_schemes(self.model):
            row["max_abs_k"] = max_k
            row["k_stable"] = stable
        return row

    # ----------------------------------------------------------------- saving
    def _divergence(self, test_loss: float | None = None) -> str | None:
        """What is not finite in the current state (losses since the epoch began, test loss, weights), or None.

        Reads the device once per call: called at epoch end and before a save, never per step.
        """
        first_bad = dist_util.all_reduce_min(self.dist, self.state.meter.watch.tensor().clone())
        step = DivergenceWatch.as_step(first_bad)
        if step is not None:
            why = f"the training loss was not finite at batch {step}"
        elif test_loss is not None and not math.isfinite(test_loss):
            why = f"the test loss is {test_loss}"
        else:
            names = nonfinite_tensors(self.model)
            why = f"{len(names)} weight tensors hold NaN or infinity ({names[0]}, ...)" if names else ""
        return why if dist_util.any_flag(self.dist, bool(why)) else None

    def _report_divergence(self, epoch: int, why: str) -> None:
        """Stop without saving: the checkpoint on disk (the last good one) stays."""
        self.diverged = self.stopped = True
        self.diverged_at = {"epoch": epoch, "reason": why}
        if self.dist.main:
            line = report.divergence_line(epoch, why, self.saver.saved_at, self.out / CHECKPOINT)
            print(line, file=sys.stderr, flush=True)

    def _save(self) -> bool:
        """Checkpoint the current step (:meth:`RunSaver.checkpoint`); False, and stopped, when it failed."""
        if self.saver.checkpoint(self.state):
            return True
        self.stopped = True
        return False

    def results(self) -> dict[str, Any]:
        """Summary of the run so far, as ``results.json`` holds it (see :func:`.report.results`)."""
        images = (self.train_loader.num_examples, self.test_loader.num_examples)
        return report.results(
            self.cfg,
            self.state,
            model=self.model,
            data=self.data,
            images=images,
            out=self.out,
            diverged_at=self.diverged_at,
        )

    def _write_outputs(self, plots: bool) -> dict[str, Any]:
        """The results so far, written with ``metrics.jsonl``; with ``plots``, the run's final outputs too."""
        results = self.results()
        if not self.saver.records(self.state, results, final=plots, diverged=self.diverged):
            self.stopped = True
        return results

    # -------------------------------------------------------------------- run
    def prepare(self) -> None:
        """Nothing left to do: building the Trainer set the run up (kept for code that calls it before :meth:`fit`)."""

    def _end_epoch(self, epoch: int) -> bool:
        """Evaluate, check for divergence, log, save; False when the run must stop here."""
        self.train_loader.end_epoch()
        row = self._finish_epoch(epoch)
        if self.dist.main:
            print(report.epoch_line(row, self.cfg.epochs), flush=True)
        why = self._divergence(row["test_loss"])
        if why is not None:
            self._report_divergence(epoch, why)
            return False
        self.state.end_epoch(row)
        if not self._save():
            return False
        self._write_outputs(plots=False)
        return True

    def _save_on_stop(self) -> None:
        """The checkpoint of a run stopped part-way through an epoch (Ctrl-C/SIGTERM), if its state is finite."""
        if self.batch:
            why = self._divergence()
            if why is not None:
                self._report_divergence(self.epoch + 1, why)
                return
            if not self._save():
                return
        if self.dist.main:
            print(
                f"stopped at epoch {self.epoch + 1} batch {self.batch}: checkpoint saved in {self.out}; "
                "continue with --resume",
                file=sys.stderr,
                flush=True,
            )

    def fit(self) -> dict[str, Any]:
        """Train to ``config.epochs`` (or until stopped); returns the results dict."""
        try:
            with self._stop:
                while self.epoch < self.cfg.epochs:
                    epoch = self.epoch + 1
                    if self.batch == 0:
                        self.state.meter.lr = self._lr()
                    if not self._train_epoch(epoch):
                        self.stopped = True
                        break
                    if not self._end_epoch(epoch):
                        break
                    if dist_util.any_flag(self.dist, self._stop.requested or self.failure is not None):
                        self.stopped = True
                        break
            if self.stopped and not self.diverged and self.failure is None:
                self._save_on_stop()
            return self._write_outputs(plots=True)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the run folder's lock and the process group (:meth:`fit` does this when it returns)."""
        if self.parts.folder is not None:
            self.parts.folder.close()
        dist_util.teardown(self.dist)
