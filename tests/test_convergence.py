"""Measured convergence orders of the deterministic schemes and the LM modified equation."""

import math

import pytest
import torch

import contdepth as cd
from contdepth.analysis import fit_order

T = 2.0
STEPS = [8, 16, 32, 64]


def nonlinear_field() -> cd.Tied:
    """A non-autonomous, nonlinear scalar-per-entry ODE; states of shape (B, 2)."""
    return cd.Tied(lambda t, u: -0.8 * u + math.sin(1.5 * t) * u**2 + 0.3 * torch.cos(u))


@pytest.fixture(scope="module")
def setup():
    field = nonlinear_field()
    u0 = torch.tensor([[0.5, -0.2], [1.0, 0.3]], dtype=torch.float64)
    ref = cd.odeint(field, u0, t1=T, rtol=1e-12, atol=1e-13)
    return field, u0, ref


def measured_order(field, scheme, u0, ref, steps=STEPS):
    errors = [(cd.Flow(field, scheme, steps=n, t1=T)(u0) - ref).abs().max().item() for n in steps]
    return fit_order([T / n for n in steps], errors).order


@pytest.mark.parametrize(
    "scheme, order", [("euler", 1), ("heun", 2), ("rk2", 2), ("midpoint", 2), ("rk4", 4), ("ab2", 2)]
)
def test_orders_match_theory(setup, scheme, order):
    field, u0, ref = setup
    steps = STEPS if order < 4 else [4, 8, 16, 32]  # rk4 reaches rounding level early
    assert measured_order(field, scheme, u0, ref, steps) == pytest.approx(order, abs=0.25)


def test_lm2_converges_to_modified_equation(setup):
    field, u0, ref = setup
    k = -0.3
    lm = cd.schemes.get("lm2", k=k, learnable=False)
    base = cd.Flow(field, lm, steps=8, t1=T)
    limit = cd.odeint(base, u0, rtol=1e-12, atol=1e-13)  # (1 + k) u' = f(u)
    rescaled = cd.odeint(cd.Tied(lambda t, u: field.drift(t, u) / (1 + k)), u0, t1=T, rtol=1e-12, atol=1e-13)
    assert torch.allclose(limit, rescaled, atol=1e-10)
    steps = [128, 256, 512, 1024]
    errors = [(base.refine(steps=n)(u0) - limit).abs().max().item() for n in steps]
    assert fit_order([T / n for n in steps], errors).order == pytest.approx(1.0, abs=0.25)
    # ... and not to u' = f(u): that error does not shrink with h
    assert (base.refine(steps=1024)(u0) - ref).abs().max().item() > 10 * errors[-1]


def test_leapfrog_and_revnet_orders():
    # harmonic oscillator x' = y, y' = -x as a Coupled field on (B, 2) states
    f1 = cd.Tied(lambda t, y: y)
    f2 = cd.Tied(lambda t, x: -x)
    field = cd.Coupled(f1, f2)
    u0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    exact = torch.tensor([[math.cos(T), -math.sin(T)]], dtype=torch.float64)
    for scheme, order in [("revnet", 1), ("leapfrog", 2)]:
        errors = [(cd.Flow(field, scheme, steps=n, t1=T)(u0) - exact).abs().max().item() for n in STEPS]
        assert fit_order([T / n for n in STEPS], errors).order == pytest.approx(order, abs=0.25)


def test_polynet_is_truncated_backward_euler_for_linear_fields():
    a = torch.tensor([[-0.5, 0.2], [0.1, -0.3]], dtype=torch.float64)
    field = cd.Tied(lambda t, u: u @ a.T)
    u0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    h = 0.1
    out = cd.Flow(field, cd.schemes.get("polynet", terms=2), steps=1, t1=h)(u0)
    ha = h * a
    expected = u0 @ (torch.eye(2, dtype=torch.float64) + ha + ha @ ha).T
    assert torch.allclose(out, expected, atol=1e-14)
    exact = torch.linalg.matrix_exp(T * a)
    errors = [(cd.Flow(field, "polynet", steps=n, t1=T)(u0) - u0 @ exact.T).abs().max().item() for n in STEPS]
    assert fit_order([T / n for n in STEPS], errors).order == pytest.approx(1.0, abs=0.25)
