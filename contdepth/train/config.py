"""A training run's settings: the paper's recipe as defaults, validated, JSON round-trippable."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from .._checks import depth_basis
from ..data.cifar import DATASETS
from .amp import AMP_CHOICES
from .compiling import check_mode
from .stepping import check_recipe, eval_steps_at

DEFAULT_EPOCHS = {"cifar10": 160, "cifar100": 300}
SCHEDULES = ("step", "cosine", "linear")

# Settings that only change how fast (or where) a run goes; a resumed run may change them.
RUNTIME_KEYS = (
    "data_dir",
    "out",
    "device",
    "amp",
    "compile",
    "compile_mode",
    "deterministic",
    "progress",
    "progress_every",
    "download",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (epochs count from 1; lr per optimiser step).

    ``epochs`` defaults to 160 (CIFAR-10) or 300 (CIFAR-100) and ``milestones`` to half and
    three quarters of it (80/120 of 160, 150/225 of 300): the paper's recipe.
    ``compile=True`` alone means ``compile_mode="default"``; a ``compile_mode`` implies ``compile``.
    ``progress_every``: seconds between progress lines when the output is not a terminal.
    ``train_steps`` (a random step count per batch from this set) and ``refine_at`` (steps per block
    doubled after these epochs) are the step-count recipes of :mod:`contdepth.train.stepping`;
    ``depth_basis``: ``blocks`` or ``linear`` (weights continuous in depth).
    ``validation``: hold out the last N training images (of ``subset``) and evaluate on them instead of the
    test set, to choose a setting without looking at the test set; ``test_*`` results then mean validation.
    ``amp``: ``auto`` (bf16 autocast on a CPU with bf16 units, else float32), ``bf16`` or ``none``;
    a speed setting, which a resumed run may change (see :mod:`contdepth.train.amp`).
    """

    model: str = "lm_resnet20"
    dataset: str = "cifar10"
    data_dir: str = "data"
    out: str = "runs/run"
    scheme: str | None = None
    noise: str | None = None
    steps_per_block: int = 1
    train_steps: list[int] | None = None
    refine_at: list[int] | None = None
    depth_basis: str = "blocks"
    epochs: int | None = None
    batch_size: int = 128
    eval_batch_size: int = 500
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "step"
    milestones: list[int] | None = None
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0
    subset: int | None = None
    test_subset: int | None = None
    validation: int | None = None
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    deterministic: bool = False
    sync_bn: bool = False
    device: str | None = None
    progress: bool = True
    progress_every: float = 30.0
    download: bool = False

    def __post_init__(self) -> None:
        for name in ("out", "data_dir"):  # a pathlib.Path is welcome; the saved config holds its text
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        self.dataset = self.dataset.lower().replace("-", "")
        run = self.resolve()
        self.epochs, self.milestones = run.epochs, list(run.milestones)
        self.compile, self.compile_mode = run.compile, run.compile_mode

    def resolve(self) -> ResolvedConfig:
        """These settings with every default filled in (``epochs``, ``milestones``, ``compile_mode``), validated.

        Raises ``ValueError`` with one line naming the bad value and the valid ones.
        """
        epochs = DEFAULT_EPOCHS.get(self.dataset, 160) if self.epochs is None else self.epochs
        milestones = self.milestones
        if milestones is None:
            milestones = sorted({max(1, round(epochs / 2)), max(1, round(3 * epochs / 4))})
        compile_mode = self.compile_mode
        if compile_mode is None and self.compile:
            compile_mode = "default"
        return ResolvedConfig(
            **{
                **dataclasses.asdict(self),
                "epochs": epochs,
                "milestones": sorted(int(m) for m in milestones),
                "compile": True if self.compile_mode is not None else self.compile,
                "compile_mode": compile_mode,
            }
        )

    def validate(self) -> None:
        """Raise ``ValueError`` with one line naming the bad value and the valid ones."""
        self.resolve()

    @property
    def trained_steps_per_block(self) -> int:
        """The steps per block the finished run is evaluated at (after every refinement of ``refine_at``)."""
        return self.resolve().trained_steps_per_block

    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset].num_classes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a saved dict, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_saved(cls, values: Any, source: object) -> TrainConfig:
        """:meth:`from_dict` of settings read from ``source`` (a file), whose name the error gives."""
        if not isinstance(values, dict):
            raise ValueError(f"{source} is damaged (holds a {type(values).__name__}, not a run's settings)")
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{source} is damaged (its settings are not valid: {err})") from None

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class ResolvedConfig:
    """A :class:`TrainConfig` with its defaults filled in and validated (:meth:`TrainConfig.resolve`): what a run
    trains with. The same fields, in the same order, with the same values; ``epochs`` and ``milestones`` are
    never None, and ``compile_mode`` is None exactly when ``compile`` is off. Frozen: a run's settings do not
    change while it trains. No defaults: the defaults are :class:`TrainConfig`'s, filled in by ``resolve``."""

    model: str
    dataset: str
    data_dir: str
    out: str
    scheme: str | None
    noise: str | None
    steps_per_block: int
    train_steps: list[int] | None
    refine_at: list[int] | None
    depth_basis: str
    epochs: int
    batch_size: int
    eval_batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    milestones: list[int]
    gamma: float
    warmup_epochs: float
    label_smoothing: float
    seed: int
    subset: int | None
    test_subset: int | None
    validation: int | None
    amp: str
    channels_last: bool
    compile: bool
    compile_mode: str | None
    deterministic: bool
    sync_bn: bool
    device: str | None
    progress: bool
    progress_every: float
    download: bool

    def __post_init__(self) -> None:
        """Validate: ``ValueError`` with one line naming the bad value and the valid ones."""
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of: {', '.join(DATASETS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"unknown amp mode {self.amp!r}; choose one of: {', '.join(AMP_CHOICES)}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "steps_per_block": self.steps_per_block,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("subset", "test_subset", "validation"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs a momentum > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        check_mode(self.compile_mode)
        check_recipe(self.steps_per_block, self.train_steps, self.refine_at, self.epochs)
        depth_basis(self.depth_basis)
        if not (
            isinstance(self.progress_every, (int, float))
            and math.isfinite(self.progress_every)
            and self.progress_every > 0
        ):
            raise ValueError(f"progress_every must be a positive number of seconds, got {self.progress_every!r}")
        if any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones must be epochs >= 1, got {self.milestones}")
        for name in ("out", "data_dir"):  # an empty name would silently mean the current directory
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must name a folder, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or abs(self.seed) >= 2**62:
            raise ValueError(f"seed must be an integer between -2**62 and 2**62, got {self.seed!r}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "bool" and not isinstance(value, bool):
                raise ValueError(f"{field.name} must be true or false, got {value!r}")

    @property
    def trained_steps_per_block(self) -> int:
        """The steps per block the finished run is evaluated at (after every refinement of ``refine_at``)."""
        return eval_steps_at(self.steps_per_block, self.refine_at, self.epochs)

    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset].num_classes

    def resolve(self) -> ResolvedConfig:
        """Itself: already resolved (so code may take either kind of config and resolve it)."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """What :meth:`TrainConfig.to_dict` gives for the same settings (``config.json``, a checkpoint's config)."""
        return dataclasses.asdict(self)


def differences(saved: TrainConfig | ResolvedConfig, given: dict[str, Any]) -> list[str]:
    """``key: saved -> given`` for settings in ``given`` that would change the run (runtime keys excepted)."""
    out = []
    for key, value in given.items():
        if key in RUNTIME_KEYS or value is None:
            continue
        old = getattr(saved, key)
        if key == "milestones":
            value = sorted(int(v) for v in value)
        if old != value:
            out.append(f"{key}: {old!r} -> {value!r}")
    return out
