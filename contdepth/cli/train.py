"""``contdepth train``: train a named CIFAR model with any scheme (paper recipe by default).

Under ``torchrun --nproc_per_node=N -m contdepth train ...`` it runs DistributedDataParallel.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._checks import DEPTH_BASES
from ..data.cifar import DATASETS
from ..runs.state import NO_PROGRESS, folder_state
from ..train.compiling import COMPILE_MODES
from ..train.config import AMP_CHOICES, SCHEDULES, TrainConfig
from ..train.loading import saved_run_config
from ..train.speed import cpu_defaults
from ..train.start import RunFinished
from ..train.trainer import Trainer
from .argtypes import milestones, positive_float, positive_int, step_counts
from .command import Command
from .errors import CommandError

# CLI flag dest -> TrainConfig field, where the names differ
_RENAMED = {"warmup": "warmup_epochs", "no_progress": "progress"}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` flags. Defaults are None here so a resumed run can tell what was given."""
    parser.epilog = (
        "Defaults follow Lu et al. 2018: SGD momentum 0.9, weight decay 1e-4 (not on LM's k), "
        "batch 128, lr 0.1 divided by 10 at 1/2 and 3/4 of 160 epochs (CIFAR-100: 300)."
    )
    a = parser.add_argument
    a("--model", help="a named model (see `contdepth models`), e.g. resnet56, lm_resnet56 (default lm_resnet20)")
    a("--dataset", choices=list(DATASETS), help="default cifar10")
    a("--data-dir", help="folder holding cifar-10-batches-py/ or cifar-100-python/ (default ./data)")
    a("--out", help="run directory for checkpoint, metrics and plots (default runs/<model>)")
    a("--scheme", help="override the model's scheme (euler, lm2, rk4, ...)")
    a("--noise", help="override the model's noise: none, sd:P (stochastic depth), gaussian:SIGMA, shake, shake:same")
    a("--steps-per-block", type=positive_int, help="steps of size 1/S per residual block (default 1)")
    a(
        "--train-steps",
        type=step_counts,
        metavar="S,S,...",
        help="multi-resolution training: each batch at a step count per block drawn from this set, e.g. 1,2,4 "
        "(evaluated at --steps-per-block)",
    )
    a(
        "--refine-at",
        type=milestones,
        metavar="EPOCHS",
        help="refinement schedule: double the steps per block after each of these epochs, e.g. 10,20",
    )
    a(
        "--depth-basis",
        choices=DEPTH_BASES,
        help="blocks (default: a weight set per block) or linear (weights interpolated in depth between knots)",
    )
    a("--epochs", type=positive_int, help="default 160 (CIFAR-100: 300)")
    a("--batch-size", type=positive_int, help="global batch size, split over processes (default 128)")
    a("--eval-batch-size", type=positive_int, help="test batch size; divide 10,000 (default 500)")
    a("--lr", type=float, help="peak learning rate (default 0.1)")
    a("--momentum", type=float, help="SGD momentum (default 0.9)")
    a("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    a("--weight-decay", type=float, help="on weights, not on scheme parameters such as k (default 1e-4)")
    a(
        "--schedule",
        choices=SCHEDULES,
        help="step (lr times gamma at each milestone), cosine, or linear (to zero at the last step); default step",
    )
    a("--milestones", type=milestones, help="epochs where a step schedule decays, e.g. 80,120 (default E/2, 3E/4)")
    a("--gamma", type=float, help="step schedule factor (default 0.1)")
    a("--warmup", type=float, metavar="EPOCHS", help="linear warm-up over this many epochs (default 0)")
    a("--label-smoothing", type=float, help="default 0")
    a("--seed", type=int, help="seeds the weights, the data order and augmentation (default 0)")
    a("--device", help="cuda or cpu (default: cuda when available)")
    a("--subset", type=positive_int, metavar="N", help="train on the first N training images (smoke runs)")
    a(
        "--test-subset",
        type=positive_int,
        metavar="N",
        help="evaluate on N test images evenly spaced through the split (smoke runs)",
    )
    a(
        "--validation",
        type=positive_int,
        metavar="N",
        help="hold out the last N training images and evaluate on them, not on the test set (to choose settings)",
    )
    a(
        "--amp",
        choices=AMP_CHOICES,
        help="auto (default: bf16 autocast on a CPU with AVX512-BF16 or AMX units, else float32), bf16 or none",
    )
    a(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="channels_last memory format (default: on for CPU runs of 150,000+ training images, else off)",
    )
    a(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="torch.compile the model, same as --compile-mode default (default: on for CPU runs of 150,000+ "
        "training images, where it pays back its 20-50 s; else off)",
    )
    a(
        "--compile-mode",
        choices=COMPILE_MODES,
        help="torch.compile mode: default; reduce-overhead (also CUDA graphs: fewest launches, CUDA only, "
        "elsewhere the same as default); max-autotune (longest compile, fastest kernels)",
    )
    a(
        "--deterministic",
        action="store_true",
        default=None,
        help="deterministic algorithms, no cuDNN autotuning, no TF32 (slower on CUDA)",
    )
    a("--sync-bn", action="store_true", default=None, help="synchronise BatchNorm statistics across processes")
    a(
        "--no-progress",
        action="store_true",
        default=None,
        help="no progress bar or progress lines (per-epoch lines are still printed)",
    )
    a(
        "--progress-every",
        type=positive_float,
        metavar="SECONDS",
        help="when output is not a terminal, a progress line this often (default 30)",
    )
    a("--resume", action="store_true", help="continue the run saved in --out")
    a(
        "--overwrite",
        action="store_true",
        help="start a new run in an --out that holds another run (its checkpoint, config, metrics, results and "
        "plots are removed once the new run is ready to write)",
    )
    a(
        "--download",
        action="store_true",
        default=None,
        help="if the data is missing, download the official archive (md5-checked) into --data-dir and unpack it",
    )


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set on the command line (unset flags are None and left out)."""
    out = {}
    for key, value in vars(args).items():
        if key in ("command", "resume", "overwrite") or value is None:
            continue
        name = _RENAMED.get(key, key)
        out[name] = (not value) if key == "no_progress" else value
    return out


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A new run's config, or, with ``--resume``, the saved one with this invocation's runtime settings (a new
    run's when ``--out`` holds no settings to go on with: that run starts from the beginning)."""
    given = given_settings(args)
    if args.resume:
        out = Path(given["out"] if "out" in given else f"runs/{given.get('model', TrainConfig.model)}")
        saved = saved_config(out)
        if saved is not None:
            return TrainConfig.from_dict({**saved, **given})  # the Trainer rejects changed non-runtime settings
    given.setdefault("out", f"runs/{given.get('model', TrainConfig.model)}")
    cfg = TrainConfig(**given)
    speed = cpu_defaults(given, cfg.resolve().epochs)
    return cfg.replace(**speed) if speed else cfg


def saved_config(out: Path) -> dict[str, Any] | None:
    """The settings of the run in ``out``: its ``config.json``, else the copy its checkpoint holds; None when
    it holds neither, or only the damaged ``config.json`` of a start that saved no progress (which a new
    start replaces)."""
    try:
        cfg = saved_run_config(out)
    except ValueError:
        if folder_state(out) in NO_PROGRESS:
            return None
        raise
    return None if cfg is None else cfg.to_dict()


def _check_names(cfg: TrainConfig) -> None:
    from ..models import parse_noise  # raises ValueError listing the valid noise specs
    from ..train.build import check_model_name, check_scheme_name

    check_model_name(cfg.model)
    check_scheme_name(cfg.scheme)
    try:
        parse_noise(cfg.noise)
    except ValueError as err:
        raise ValueError(f"--noise {cfg.noise}: {err}") from None


def run(args: argparse.Namespace) -> int:
    """Train; 0 when finished, 130 when stopped by Ctrl-C/SIGTERM (resumable), 1 if it diverged or could not save;
    a bad setting, a run folder in use or missing data raise (exit code 2, a full disk 1)."""
    try:
        cfg = config_from_args(args)
        _check_names(cfg)
        trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite)
        trainer.prepare()
    except RunFinished as done:  # nothing to train: said, and no error
        print(f"contdepth train: {done}", flush=True)
        return 0
    trainer.fit()
    if trainer.failure is not None:
        raise CommandError(trainer.failure, code=1)
    if trainer.diverged:
        return 1
    return 130 if trainer.stopped else 0


COMMAND = Command("train", "train a CIFAR classifier with any scheme", configure, run)
