"""Every registered scheme's measured orders (log-log slopes, float64) against its declared ones: ``ode_order``
on ODEs, and ``strong_order`` and ``weak_order`` on an SDE for the schemes that take noise."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from problems import gbm_field, linear_ode, oscillator

import contdepth as cd
from contdepth.analysis import fit_order
from contdepth.noise import Gaussian

SCHEMES = cd.schemes.registered()
NOISY = cd.schemes.registered(supports_noise=True)


def build(name: str, k: float = -0.3) -> cd.schemes.Scheme:
    """The scheme with its default options and no noise of its own (Euler–Maruyama without noise is Euler);
    a fixed momentum ``k`` for LM."""
    cls = cd.schemes.scheme_class(name)
    options: dict = {"noise": None} if cls.supports_noise else {}
    if cls.has_momentum:
        options.update(k=k, learnable=False)
    return cd.schemes.get(name, **options)


@pytest.mark.parametrize("name", SCHEMES)
def test_measured_order_is_the_declared_ode_order(name):
    scheme = build(name)
    problem = oscillator() if scheme.requires_coupled else linear_ode()
    steps = [4, 8, 16, 32] if scheme.ode_order >= 4 else [32, 64, 128, 256]
    base = cd.Flow(problem.field, scheme, steps=steps[0], t1=problem.t1)
    # the scheme's own limit: the problem's ODE, but for LM the rescaled u' = f/(1 + k)
    exact = problem.exact if not scheme.has_momentum else cd.odeint(base, problem.u0, rtol=1e-12, atol=1e-13)
    errors = [(base.refine(steps=n)(problem.u0) - exact).abs().max().item() for n in steps]
    assert fit_order([problem.t1 / n for n in steps], errors).order == pytest.approx(scheme.ode_order, abs=0.2)


class RecordedGaussian(Gaussian):
    """Gaussian ξ that keeps the last draw ``(steps, *shape)``: the Brownian path the flow was driven by."""

    def sample_steps(self, shape, like, generator, pieces, table=None):
        self.xi = super().sample_steps(shape, like, generator, pieces, table)
        return self.xi


@pytest.mark.parametrize("name", NOISY)
def test_measured_sde_orders_are_the_declared_strong_and_weak_orders(name):
    # geometric Brownian motion dX = mu X dt + sigma X dW from X_0 = 1, exact X_T = exp((mu - sigma²/2) T + sigma W_T)
    # for the same W; the scheme's limit may rescale mu and sigma (LM: both over 1 + k), read from its limit field
    mu, sigma, T, samples = 0.5, 0.6, 1.0, 200_000
    steps = [16, 32, 64, 128]
    strong, weak = [], []
    for n in steps:
        law = RecordedGaussian()
        flow = cd.Flow(
            gbm_field(mu, sigma), build(name, k=-0.1), steps=n, t1=T, noise=cd.Noise(law, seed=n), noise_at_eval=True
        )
        one = torch.ones(1, 1, dtype=torch.float64)
        limit = flow.scheme.continuous_field(flow.field)
        a, b = limit.drift(0.5, one).item(), limit.diffusion(0.5, one).item()
        with torch.no_grad():
            x = flow(torch.ones(samples, 1, dtype=torch.float64))
        exact = torch.exp((a - b * b / 2) * T + b * math.sqrt(T / n) * law.xi.sum(0))
        strong.append((x - exact).abs().mean().item())
        # E X_N² - E X_T², estimated on the same paths (common random numbers: a small Monte Carlo error)
        weak.append(abs((x**2 - exact**2).mean().item()))
    h = [T / n for n in steps]
    scheme = flow.scheme
    assert fit_order(h, strong).order == pytest.approx(scheme.strong_order, abs=0.15)
    assert fit_order(h, weak).order == pytest.approx(scheme.weak_order, abs=0.2)


def test_kutta3_is_third_order_with_the_third_taylor_polynomial():
    problem = linear_ode()
    steps = [16, 32, 64, 128]
    base = cd.Flow(problem.field, "rk3", steps=steps[0], t1=problem.t1)
    errors = [(base.refine(steps=n)(problem.u0) - problem.exact).abs().max().item() for n in steps]
    assert fit_order([problem.t1 / n for n in steps], errors).order == pytest.approx(3.0, abs=0.1)
    kutta3 = cd.schemes.scheme_class("kutta3")
    assert kutta3.tableau.stability_polynomial() == (1, 1, Fraction(1, 2), Fraction(1, 6))  # 1 + z + z²/2 + z³/6
    assert kutta3.characteristic().note == "|1 + z + z²/2 + z³/6| <= 1"
    z = 0.3 - 1.2j
    with torch.no_grad():  # one step of h = 1 on u' = z u is R(z)
        step = cd.Flow(cd.Tied(lambda t, u: z * u), "kutta3", steps=1, t1=1.0)(torch.ones(1, dtype=torch.complex128))
    assert complex(step[0]) == pytest.approx(1 + z + z**2 / 2 + z**3 / 6, abs=1e-14)
