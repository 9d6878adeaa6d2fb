"""The learned momentum k_n of the schemes in a model that have one (LM): values per stage, stability checks."""

from __future__ import annotations

import warnings

from torch import nn

from ..flow import HasFlows
from ..schemes import Scheme


def lm_schemes(model: nn.Module) -> list[Scheme]:
    """The model's schemes with a learned momentum (:meth:`~contdepth.schemes.Scheme.momentum`: LM's k),
    one per stage, in depth order (via ``model.flows()`` when it has it), once attached to their flows."""
    flows = model.flows() if isinstance(model, HasFlows) else []
    found = [f.scheme for f in flows if f.scheme.momentum() is not None]
    if not found:
        found = [m for m in model.modules() if isinstance(m, Scheme) and m.momentum() is not None]
    return found


def momentum(model: nn.Module) -> list[list[float]]:
    """k_n per block, one list per stage (a per-channel k is averaged over channels)."""
    out = []
    for s in lm_schemes(model):
        k = s.momentum()
        if k is not None:
            k = k.float().cpu()
            out.append((k.mean(dim=1) if k.dim() > 1 else k).tolist())
    return out


def check_stability(model: nn.Module) -> tuple[float, bool]:
    """``(max |k|, all zero-stable)`` over the model's LM schemes; each scheme warns if |k| >= 1."""
    schemes = lm_schemes(model)
    if not schemes:
        return 0.0, True
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # warn every epoch it happens, not once per process
        stable = all([s.check_stability() for s in schemes])
    return max(float(k.abs().max()) for s in schemes if (k := s.momentum()) is not None), stable
