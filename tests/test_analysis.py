"""Analysis helpers: rescaling fit (modified equations), Monte-Carlo order fits, plot helpers."""

import math
import random

import pytest
import torch
from torch import nn

import contdepth as cd
from contdepth.analysis.modified import Rescaled, fit_rescaling
from contdepth.analysis.montecarlo import batch_order


def test_fit_rescaling_recovers_time_scale_of_linear_ode():
    field = cd.Tied(lambda t, u: -u)
    u0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    c, T = 0.7, 1.5
    target = u0 * math.exp(-T / c)
    fit = fit_rescaling(field, u0, target, t1=T, rtol=1e-8, atol=1e-10)
    assert fit.c == pytest.approx(c, rel=1e-6)
    assert fit.residual < 1e-6


def test_fit_rescaling_finds_lm2_limit():
    field = cd.Tied(lambda t, u: torch.sin(u) + 2.0 * math.cos(2.0 * t))
    u0 = torch.tensor([0.0, 0.5], dtype=torch.float64)
    k = 0.3
    flow = cd.Flow(field, cd.schemes.get("lm2", k=k, learnable=False), steps=4, t1=2.0)
    target = cd.odeint(flow, u0, rtol=1e-8, atol=1e-10)  # u' = f / (1 + k)
    assert fit_rescaling(field, u0, target, t1=2.0, rtol=1e-8, atol=1e-10).c == pytest.approx(1 + k, rel=1e-5)


def test_rescaled_keeps_blocks_and_checks_c():
    blocks = cd.Blocks([nn.Identity(), nn.Identity()])
    scaled = Rescaled(blocks, 2.0)
    assert scaled.breakpoints() == blocks.breakpoints() and scaled.horizon == 2.0
    u = torch.ones(1, 3)
    assert torch.allclose(scaled.drift(0.5, u), 0.5 * u)
    with pytest.raises(ValueError, match="positive"):
        Rescaled(blocks, 0.0)
    with pytest.raises(ValueError, match="shape"):
        fit_rescaling(blocks, u, torch.ones(2, 3))


def test_batch_order_recovers_order_with_error_bars():
    rng = random.Random(0)
    h = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    batches = [[0.5 * x * (1 + 0.05 * rng.gauss(0, 1)) for x in h] for _ in range(20)]
    fit = batch_order(h, batches)
    assert fit.order == pytest.approx(1.0, abs=0.05)
    assert 0 < fit.stderr < 0.05
    assert fit.errors[0] == pytest.approx(0.125, rel=0.05)
    assert all(s > 0 for s in fit.error_stderr)


def test_batch_order_noise_dominated_and_bad_input():
    h = [0.5, 0.25]
    fit = batch_order(h, [[1.0, 1e-3], [1.0, -1e-3], [1.0, 1.1e-3]])
    assert math.isnan(fit.stderr)  # a leave-one-out mean of the second column is 0
    with pytest.raises(ValueError, match="two independent batches"):
        batch_order(h, [[1.0, 0.5]])
    with pytest.raises(ValueError, match="one error per step size"):
        batch_order(h, [[1.0], [1.0]])


def test_reference_slopes_draws_labelled_lines():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from contdepth.analysis.plots import reference_slopes

    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.set_yscale("log")
    reference_slopes(ax, [0.1, 0.01], [1, 0.5], anchor=1.0)
    assert len(ax.lines) == 2 and len(ax.texts) == 2
    x, y = ax.lines[0].get_data()
    assert y[1] == pytest.approx(0.1)  # slope 1 over a decade
    plt.close(fig)
