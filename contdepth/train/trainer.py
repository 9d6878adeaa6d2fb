"""The training loop: paper recipe, device-resident data, per-epoch checkpoints, exact resume, DDP."""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..data import CifarData, DeviceLoader
from ..runs import checkpoint as ckpt
from ..runs import records
from ..runs.files import CHECKPOINT, CONFIG, CURVES, METRICS, MOMENTUM_PLOT, RESULTS, WEIGHTS
from ..runs.folder import RunFolder, RunFolderError
from ..runs.weights import save_weights
from . import build, report
from . import distributed as dist_util
from .amp import autocast, resolve_amp
from .backends import apply_backend_flags, backend_flags
from .build import data_from_config
from .compiling import compile_module, effective_mode, mark_step
from .config import TrainConfig, differences
from .divergence import DivergenceWatch, nonfinite_tensors
from .evaluate import eval_sums
from .interrupt import StopRequest, terminate_as_interrupt
from .momentum import check_stability, lm_schemes
from .progress import Progress, choose_style
from .start import plan
from .state import EpochMeter, TrainState
from .stepping import eval_steps_at, train_steps_at

BatchHook = Callable[["Trainer", int, int], None]
STOP_CHECK_EVERY = 10  # batches between cross-process checks for a stop request (each one syncs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``config.model`` on ``config.dataset`` and keeps the run directory ``config.out`` up to date.

    Args:
        config: the run's settings (:class:`TrainConfig`).
        resume: continue the run saved in ``config.out`` (its settings must match ``config``
            apart from :data:`~contdepth.train.config.RUNTIME_KEYS`); a folder without progress
            starts afresh, with a note. What each state of a run folder leads to is decided in
            :mod:`contdepth.train.start` (the table is in the troubleshooting guide).
        overwrite: start a new run in a folder that holds another run's progress (its files are
            removed once the new run is ready to write; without it such a folder is refused).
        on_batch_end: called as ``hook(trainer, epoch, batch)`` after every optimiser step.
        model: train this module instead of building ``config.model`` from the zoo (``config.model``
            then only names it; build it the same way again to resume or evaluate the run).

    ``fit()`` returns the results dict (also written to ``results.json``); after Ctrl-C/SIGTERM
    it saves a checkpoint at the current step and returns with ``trainer.stopped`` set. Only
    finite weights are saved: on a divergence the last good checkpoint stays and ``trainer.diverged``
    is set; a save that fails (a full disk) leaves the last good checkpoint and sets ``trainer.failure``.
    Where the run stands (epochs, steps, history, the epoch so far) is ``trainer.state`` (:class:`TrainState`).
    """

    # built by prepare(), from the config and this process's place (``dist``)
    device: torch.device
    amp: str  # the resolved mode, "none" or "bf16"
    backend_flags: dict[str, Any]
    concurrent_runs: int  # runs sharing the device
    model: nn.Module  # the bare model: its weights are what checkpoints keep
    params: int
    data: CifarData
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    net: nn.Module  # what trains (DDP and/or compiled)
    eval_net: nn.Module  # what evaluates (compiled, no DDP)
    criterion: nn.Module
    progress: Progress

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        on_batch_end: BatchHook | None = None,
        model: nn.Module | None = None,
        overwrite: bool = False,
    ) -> None:
        self.cfg = config
        self._given_model = model
        self.resume = resume
        self.overwrite = overwrite
        self.on_batch_end = on_batch_end
        self.out = Path(config.out)
        self.stopped = False
        self.diverged = False
        self.diverged_at: dict[str, Any] | None = None
        self.failure: str | None = None  # why the run could not save (a full disk, say): one line
        self._saved_at: tuple[int, int] | None = None  # (epoch, batch) of the checkpoint on disk
        self._folder: RunFolder | None = None
        self.state = TrainState()  # its meter moves to the device in prepare()
        self.dist = dist_util.Dist()  # this process alone until prepare() joins the process group
        self._prepared = False
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

    # ------------------------------------------------------------------ set-up
    def _check_out_dir(self) -> dict[str, Any] | None:
        """Check (and, where it exists, lock) the run folder and decide how the run starts there (:func:`plan`);
        the saved state when it goes on from a checkpoint."""
        if self.dist.main:
            self._folder = RunFolder(self.out, resume=self.resume, overwrite=self.overwrite).open()
        self._start = plan(self.out, self.cfg, resume=self.resume, overwrite=self.overwrite)
        if self._start.note and self.dist.main:
            print(self._start.note, file=sys.stderr, flush=True)
        if not self._start.resume:
            return None
        path = self.out / CHECKPOINT
        state = ckpt.load(path)
        try:
            saved = TrainConfig.from_dict(state["config"])
        except (ValueError, TypeError) as err:
            raise ckpt.damaged(path, f"its config is not valid: {err}") from None
        diffs = differences(saved, self.cfg.to_dict())
        if diffs:
            raise RunFolderError(
                f"--resume: {self.out} was started with other settings ({'; '.join(diffs)}); "
                "resume continues the same run: drop those options or choose another --out"
            )
        return state

    def _setup(self) -> dict[str, Any] | None:
        cfg, d = self.cfg, self.dist
        self.device = d.device
        self.amp = resolve_amp(cfg.amp, self.device)
        self.backend_flags = backend_flags(self.device.type, cfg.deterministic)
        apply_backend_flags(self.backend_flags)
        self.concurrent_runs = report.concurrent_runs()
        state = self._check_out_dir()
        seed_everything(cfg.seed)  # the weights (and LM's k) are the same on every process
        self.model = self._given_model if self._given_model is not None else build.model_from_config(cfg)
        if (cfg.train_steps or cfg.refine_at) and not callable(getattr(self.model, "rediscretise", None)):
            raise ValueError(
                f"--train-steps and --refine-at change the step count, which {type(self.model).__name__} "
                "cannot (it has no rediscretise())"
            )
        self.params = build.count_params(self.model)
        self.data = self._load_data()
        seed_everything(cfg.seed + 1000 * d.rank)  # the model's own noise differs per process; data order is shared
        self.model = build.place_model(self.model, cfg, self.device, distributed=d.active)
        self.train_loader, self.test_loader = build.loaders_from_config(
            cfg, self.data, self.device, rank=d.rank, world=d.world
        )
        steps = self.train_loader.num_batches
        self.optimizer, self.scheduler = build.optimizer_from_config(self.model, cfg, self.device, steps)
        self._wrap_model()
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.state.meter = EpochMeter(self.device, lr=self._lr())
        return state

    def _load_data(self) -> CifarData:
        cfg, d = self.cfg, self.dist
        first = cfg.download and d.active
        if first and not d.main:
            dist_util.barrier(d)  # rank 0 downloads, the others read after it
        data = data_from_config(cfg, quiet=not d.main)  # one warning about the data, not one per process
        if first and d.main:
            dist_util.barrier(d)
        if data.num_classes != cfg.num_classes:
            raise ValueError(f"{cfg.dataset} at {data.root} has {data.num_classes} classes, expected {cfg.num_classes}")
        return data

    def _wrap_model(self) -> None:
        """``self.net`` trains (DDP and/or compiled); ``self.eval_net`` evaluates the bare model, since DDP's
        per-forward buffer broadcast would need the same number of test batches on every process."""
        model, mode, device = self.model, self.cfg.compile_mode, self.device
        if mode != effective_mode(mode, device) and self.dist.main:
            print(
                f"note: --compile-mode {mode} records CUDA graphs, which exist on CUDA only; "
                f"compiling with mode {effective_mode(mode, device)} on {device.type}",
                file=sys.stderr,
            )
        self.eval_net = compile_module(model, mode, device)
        if not self.dist.active:
            self.net = self.eval_net
            return
        # static_graph: parameters that no step ever reads need no per-step search for unused ones
        ddp = DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None, static_graph=True
        )
        self.net = compile_module(ddp, mode, device)

    def _restore(self, state: dict[str, Any]) -> None:
        d = self.dist
        try:
            order_kept = ckpt.restore_training(state, self.state, **self._parts())
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as err:  # another model
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise ckpt.damaged(self.out / CHECKPOINT, f"does not fit this run: {first}") from None
        if not order_kept and d.main:
            print(
                "note: the data order of the resumed run restarts (checkpoint from another device type)",
                file=sys.stderr,
            )
        self._saved_at = (self.epoch, self.batch)
        rngs = state["rng"]
        if len(rngs) == d.world:
            ckpt.set_rng_state(rngs[d.rank]["rng"])
            ckpt.set_module_generator_states(self.model, rngs[d.rank]["modules"])
        elif d.main:
            print(
                f"note: the checkpoint was written by {len(rngs)} processes, this run has {d.world}; "
                "the model's random streams restart (the data order is still exact)",
                file=sys.stderr,
            )

    # ---------------------------------------------------------------- helpers
    def _parts(self) -> dict[str, Any]:
        """What a checkpoint keeps beside the loop's state."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "loader": self.train_loader,
        }

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _make_progress(self, style: str | None = None) -> Progress:
        """Progress on stderr (rank 0 only): a bar on a terminal, a line every ``progress_every`` s otherwise."""
        if style is None:
            style = choose_style(self.cfg.progress and self.dist.main, sys.stderr)
        assert self.cfg.epochs is not None  # TrainConfig.__post_init__ fills it
        return Progress(
            style,
            epochs=self.cfg.epochs,
            batches=len(self.train_loader),
            eval_batches=len(self.test_loader),
            images_per_batch=self.cfg.batch_size,
            every=self.cfg.progress_every,
        )

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
            line = report.divergence_line(epoch, why, self._saved_at, self.out / CHECKPOINT)
            print(line, file=sys.stderr, flush=True)

    def _save_failed(self, what: Path, err: OSError) -> None:
        """Record a failed write (a full disk, say) as :attr:`failure`, one line saying what was kept."""
        if self.failure is None:
            self.failure = report.failure_line(what, err, self._saved_at)
        self.stopped = True

    def _save(self) -> bool:
        """Checkpoint the current step (every process's RNG state; rank 0 writes); False when it failed."""
        rngs = dist_util.all_gather_objects(
            self.dist, {"rng": ckpt.rng_state(), "modules": ckpt.module_generator_states(self.model)}
        )
        failed = False
        if self.dist.main:
            path = self.out / CHECKPOINT
            try:
                ckpt.save_atomic(
                    ckpt.training_checkpoint(self.state, self.cfg.to_dict(), rngs=rngs, **self._parts()), path
                )
            except OSError as err:
                self._save_failed(path, err)
                failed = True
        if dist_util.any_flag(self.dist, failed):  # every process stops together
            self.stopped = True
            return False
        self._saved_at = (self.epoch, self.batch)
        return True

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
        results = self.results()
        if not self.dist.main:
            return results
        try:
            records.write_metrics(self.out / METRICS, self.history)
            records.write_json(self.out / RESULTS, results)
            if plots and results["complete"] and not self.diverged:
                save_weights(self.model.state_dict(), self.out / WEIGHTS, model=self.cfg.model, epoch=self.epoch)
            if plots and self.history:
                from .plots import plot_curves, plot_momentum, run_title

                title = run_title(self.cfg)
                plot_curves(self.history, self.out / CURVES, title)
                if "momentum_k" in results:
                    plot_momentum(results["momentum_k"], self.out / MOMENTUM_PLOT, title)
        except OSError as err:
            self._save_failed(Path(err.filename) if err.filename else self.out, err)
        return results

    # -------------------------------------------------------------------- run
    def prepare(self) -> None:
        """Join the process group, build model, data and optimiser, and restore a resumed run.

        Called by :meth:`fit`; call it first to surface set-up errors (bad names, missing data, a run
        folder in use). A start-up that fails or is interrupted leaves no new folder behind.
        """
        if self._prepared:
            return
        self.dist = dist_util.setup(self.cfg.device)
        try:
            with terminate_as_interrupt():
                state = self._setup()
                if state is not None:
                    self._restore(state)
                settings = report.speed_settings(
                    self.cfg, self.device, self.optimizer, self.concurrent_runs, amp=self.amp
                )
                self.state.sessions.append(
                    report.provenance(self.device, self.cfg.seed, self.dist.world, settings=settings)
                )
                if self._folder is not None:
                    self._folder.create()
                    self._folder.clear(self._start.clear)
                    records.write_json(self.out / CONFIG, self.cfg.to_dict())
        except BaseException:
            if self._folder is not None:
                self._folder.abandon()
            dist_util.teardown(self.dist)
            raise
        if self.dist.main:
            where = "starting"
            if state is not None and self.epoch >= (self.cfg.epochs or 0):
                where = f"all {self.epoch} epochs trained, writing the outputs"
            elif state is not None:
                where = f"resuming at epoch {self.epoch + 1} batch {self.batch}"
            held = "validation" if self.cfg.validation else "test"
            print(
                f"{self.cfg.model}: {self.params:,} parameters, {where}; "
                f"{self.train_loader.num_examples} train / {self.test_loader.num_examples} {held} images "
                f"on {self.device} x {self.dist.world}{' in bf16 autocast' if self.amp == 'bf16' else ''}",
                flush=True,
            )
        self.progress = self._make_progress()
        self._prepared = True

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
        self.prepare()
        assert self.cfg.epochs is not None  # TrainConfig.__post_init__ fills it
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
        if self._folder is not None:
            self._folder.close()
        dist_util.teardown(self.dist)
