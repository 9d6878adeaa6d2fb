"""Monte Carlo estimate of ``v(t0, x) = E[φ(X_T) | X_t0 = x]`` over Euler–Maruyama paths of a flow."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ...flow import Flow
from ...schemes import EulerMaruyama
from .._threads import one_thread
from .sde import check_diagonal_noise, sde_field


@dataclass
class MonteCarlo:
    """``mean`` and standard error ``se`` of ``φ(X_T)`` per start point (``(P,)``); ``exit`` the fraction of
    paths whose end point left the box given (NaN when none was given)."""

    mean: Tensor
    se: Tensor
    paths: int
    steps: int
    exit: float


@torch.no_grad()
def monte_carlo(
    flow: Flow,
    phi: Callable[[Tensor], Tensor],
    points: Tensor,
    *,
    paths: int = 1000,
    steps: int | None = None,
    seed: int = 0,
    chunk: int = 200_000,
    box: tuple[Sequence[float], Sequence[float]] | None = None,
) -> MonteCarlo:
    """Average ``phi(X_T)`` over ``paths`` Euler–Maruyama paths of the flow from each of ``points`` (P, 2).

    The flow's field and noise law are reused with a private seeded generator, ``steps`` steps
    (default: the flow's own) and ``noise_at_eval=True``; the flow itself is not modified. For an
    Euler–Maruyama flow at its own step count these are exactly the network's noisy passes; for
    an ``lm2`` flow, Euler–Maruyama paths of its limit SDE (``f/(1+k)``, ``g/(1+k)``).
    """
    noise = check_diagonal_noise(flow)
    steps = flow.steps if steps is None else steps
    scheme = EulerMaruyama(noise=noise.law, per="element", seed=seed)
    sde = Flow(sde_field(flow), scheme, steps=steps, t0=flow.t0, t1=flow.t1, noise_at_eval=True).eval()
    dtype = next(flow.field.parameters()).dtype
    per_chunk = max(1, chunk // paths)
    means, ses, exits = [], [], 0
    for start in range(0, len(points), per_chunk):
        x0 = points[start : start + per_chunk].to(dtype)
        u0 = x0.repeat_interleave(paths, dim=0)
        with one_thread():
            x_T = sde(u0)
        values = phi(x_T).double().reshape(len(x0), paths)
        means.append(values.mean(dim=1))
        ses.append(values.std(dim=1) / math.sqrt(paths))
        if box is not None:
            lo, hi = torch.tensor(box[0], dtype=dtype), torch.tensor(box[1], dtype=dtype)
            exits += int(((x_T < lo) | (x_T > hi)).any(dim=1).sum())
    exit_frac = exits / (len(points) * paths) if box is not None else float("nan")
    return MonteCarlo(torch.cat(means), torch.cat(ses), paths, steps, exit_frac)
