"""Every registered scheme's measured order (log-log slope, float64) against its declared ``order``."""

from __future__ import annotations

import pytest
from problems import linear_ode, oscillator

import contdepth as cd
from contdepth.analysis import fit_order

SCHEMES = sorted({cd.schemes.canonical(name) for name in cd.schemes.available()})


def build(name: str) -> cd.schemes.Scheme:
    """The scheme with its default options, deterministic (Euler–Maruyama without noise is Euler)."""
    if name == "lm2":
        return cd.schemes.get(name, k=-0.3, learnable=False)
    if name == "euler_maruyama":
        return cd.schemes.get(name, noise=None)
    return cd.schemes.get(name)


@pytest.mark.parametrize("name", SCHEMES)
def test_measured_order_is_the_declared_order(name):
    scheme = build(name)
    problem = oscillator() if scheme.requires_coupled else linear_ode()
    steps = [4, 8, 16, 32] if scheme.order >= 4 else [32, 64, 128, 256]
    base = cd.Flow(problem.field, scheme, steps=steps[0], t1=problem.t1)
    # the scheme's own limit: the problem's ODE, but for LM the rescaled u' = f/(1 + k)
    exact = problem.exact if name != "lm2" else cd.odeint(base, problem.u0, rtol=1e-12, atol=1e-13)
    errors = [(base.refine(steps=n)(problem.u0) - exact).abs().max().item() for n in steps]
    assert fit_order([problem.t1 / n for n in steps], errors).order == pytest.approx(scheme.order, abs=0.2)
