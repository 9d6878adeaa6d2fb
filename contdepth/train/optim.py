"""SGD with weight decay on the network's weights but not on the schemes' own parameters (LM's k_n)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..schemes import Scheme


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: everything (decayed) and the parameters of ``Scheme`` modules (not decayed)."""
    scheme_ids = {id(p) for m in model.modules() if isinstance(m, Scheme) for p in m.parameters()}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in scheme_ids]
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) in scheme_ids]
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "weights"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "scheme"})
    return groups


def sgd_options(device: torch.device) -> dict[str, Any]:
    """How SGD updates on ``device``: one fused kernel for all parameters on CUDA where this torch has
    ``fused=``, else foreach (a few multi-tensor kernels); foreach elsewhere, where torch would loop over the
    parameters in Python (the same arithmetic, bit for bit, in about two thirds of the time on a CPU)."""
    if device.type != "cuda":
        return {"foreach": True}
    if "fused" in inspect.signature(torch.optim.SGD).parameters:
        return {"fused": True}
    return {"foreach": True}


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    nesterov: bool,
    device: torch.device = torch.device("cpu"),
) -> torch.optim.SGD:
    """The paper's SGD (momentum 0.9, weight decay 1e-4 on weights only), fused on CUDA, foreach elsewhere."""
    return torch.optim.SGD(
        param_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=nesterov, **sgd_options(device)
    )
