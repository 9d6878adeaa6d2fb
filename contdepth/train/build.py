"""Model and data of a run, built from its config (shared by training and ``contdepth eval``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from ..data import CifarData, load_cifar
from ..schemes import canonical
from .config import TrainConfig

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
    name: str, *, num_classes: int, scheme: str | None = None, noise: str | None = None, steps_per_block: int = 1
) -> ResidualNet:
    """A named model from the zoo, with optional scheme / noise overrides; clear errors for bad names."""
    from .. import models

    check_model_name(name)
    check_scheme_name(scheme)
    return models.get(name, num_classes=num_classes, scheme=scheme, noise=noise, steps_per_block=steps_per_block)


def model_from_config(cfg: TrainConfig) -> ResidualNet:
    return build_model(
        cfg.model, num_classes=cfg.num_classes, scheme=cfg.scheme, noise=cfg.noise, steps_per_block=cfg.steps_per_block
    )


def data_from_config(cfg: TrainConfig) -> CifarData:
    return load_cifar(cfg.dataset, cfg.data_dir, download=cfg.download)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
