"""Model, data, loaders and optimiser of a run, built from its config (shared by training and ``contdepth eval``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..data import CifarData, DeviceLoader, load_cifar
from ..schemes import canonical
from .config import ResolvedConfig, TrainConfig
from .optim import build_optimizer
from .schedule import build_scheduler

if TYPE_CHECKING:  # the model zoo is imported when a model is built
    from ..models.stage import ResidualNet


def model_names() -> list[str]:
    from .. import models

    return list(models.available())


def check_model_name(name: str) -> None:
    names = model_names()
    if name not in names:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(names)}")


def check_scheme_name(name: str | None) -> None:
    if name is not None:
        canonical(name)  # ValueError listing the registered schemes


def build_model(
    name: str,
    *,
    num_classes: int,
    scheme: str | None = None,
    noise: str | None = None,
    steps_per_block: int = 1,
    depth_basis: str = "blocks",
) -> ResidualNet:
    """A named model from the zoo, with optional scheme / noise overrides; clear errors for bad names."""
    from .. import models

    check_model_name(name)
    check_scheme_name(scheme)
    extra = {} if depth_basis == "blocks" else {"depth_basis": depth_basis}
    return models.get(
        name, num_classes=num_classes, scheme=scheme, noise=noise, steps_per_block=steps_per_block, **extra
    )


def model_from_config(
    cfg: TrainConfig | ResolvedConfig, *, trained: bool = False, depth_basis: str | None = None
) -> ResidualNet:
    """The run's model at the step count training starts at, or, with ``trained``, the one it ends at;
    ``depth_basis`` builds it with another basis than the run's (the same ``state_dict`` keys)."""
    model = build_model(
        cfg.model,
        num_classes=cfg.num_classes,
        scheme=cfg.scheme,
        noise=cfg.noise,
        steps_per_block=cfg.steps_per_block,
        depth_basis=depth_basis or cfg.depth_basis,
    )
    if trained and cfg.trained_steps_per_block != cfg.steps_per_block:
        model.rediscretise(steps_per_block=cfg.trained_steps_per_block)
    return model


def data_from_config(cfg: TrainConfig | ResolvedConfig, *, quiet: bool = False) -> CifarData:
    return load_cifar(cfg.dataset, cfg.data_dir, download=cfg.download, quiet=quiet)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def place_model(model: nn.Module, cfg: ResolvedConfig, device: torch.device, *, distributed: bool = False) -> nn.Module:
    """``model`` on ``device``: with ``cfg.sync_bn`` and ``distributed``, its BatchNorms synchronised across
    processes (a new module); with ``cfg.channels_last``, its weights in channels-last memory format."""
    model.to(device)
    if cfg.sync_bn and distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if cfg.channels_last:
        # Module.to takes memory_format; torch's overloads of it do not list the keyword
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def loaders_from_config(
    cfg: ResolvedConfig, data: CifarData, device: torch.device, *, rank: int = 0, world: int = 1
) -> tuple[DeviceLoader, DeviceLoader]:
    """The training loader (this process's share of the first ``cfg.subset`` images, shuffled and augmented on
    ``device`` from ``cfg.seed``) and the test loader (``cfg.test_subset`` images spread over the classes), or,
    with ``cfg.validation``, the last ``cfg.validation`` training images held out from training."""
    common: dict[str, Any] = dict(
        mean=data.mean, std=data.std, device=device, rank=rank, world=world, channels_last=cfg.channels_last
    )
    train_split, test_split = data.train.head(cfg.subset), data.test.spread(cfg.test_subset)
    if cfg.validation:
        train_split, test_split = train_split.hold_out(cfg.validation)
    train = DeviceLoader(train_split, cfg.batch_size, train=True, seed=cfg.seed, **common)
    test = DeviceLoader(test_split, cfg.eval_batch_size, train=False, **common)
    return train, test


def optimizer_from_config(
    model: nn.Module, cfg: ResolvedConfig, device: torch.device, steps_per_epoch: int
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD over ``model``'s parameters and its learning-rate schedule, stepped ``steps_per_epoch`` times an epoch."""
    optimizer = build_optimizer(
        model, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov, device=device
    )
    scheduler = build_scheduler(
        optimizer,
        steps_per_epoch,
        cfg.epochs,
        schedule=cfg.schedule,
        milestones=cfg.milestones,
        gamma=cfg.gamma,
        warmup_epochs=cfg.warmup_epochs,
    )
    return optimizer, scheduler
