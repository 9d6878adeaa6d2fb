"""What schemes declare (orders, noise, capabilities), Butcher tableaux, and the hooks other packages ask."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import contdepth as cd
from contdepth.analysis import stability_region
from contdepth.schemes import ButcherTableau, ExplicitRungeKutta, Scheme, register, registered


@pytest.fixture
def private_registry(monkeypatch):
    """Schemes registered in a test are forgotten after it."""
    from contdepth.schemes import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))


def _step(self, ctx, u, state):
    return u + ctx.h * ctx.field.drift(ctx.t, u), state


# ----------------------------------------------------------------------------- declarations
def test_the_base_class_declares_nothing():
    for key in cd.schemes.DECLARED:
        assert not hasattr(Scheme, key)


@pytest.mark.parametrize("name", registered())
def test_every_registered_scheme_declares_consistent_orders(name):
    cls = cd.schemes.scheme_class(name)
    assert cls.ode_order > 0 and isinstance(cls.supports_noise, bool)
    if cls.supports_noise:
        assert 0 < cls.strong_order <= cls.weak_order
    else:
        assert cls.strong_order is None and cls.weak_order is None


@pytest.mark.parametrize("missing", ["ode_order", "strong_order", "weak_order", "supports_noise"])
def test_registering_a_scheme_without_a_declaration_fails(private_registry, missing):
    declared = {"ode_order": 1, "strong_order": None, "weak_order": None, "supports_noise": False}
    del declared[missing]
    cls = type("Partial", (Scheme,), {**declared, "step": _step})
    with pytest.raises(TypeError, match=f"does not declare {missing}"):
        register("partial")(cls)
    assert "partial" not in cd.schemes.available()


def test_registering_a_bare_scheme_names_every_missing_declaration(private_registry):
    with pytest.raises(TypeError, match="ode_order, strong_order, weak_order, supports_noise"):

        @register("bare")
        class Bare(Scheme):
            step = _step

    assert "bare" not in cd.schemes.available()


@pytest.mark.parametrize(
    "declared, message",
    [
        (
            {"ode_order": 1, "supports_noise": False, "strong_order": 0.5, "weak_order": None},
            "strong_order must be None",
        ),
        ({"ode_order": 1, "supports_noise": True, "strong_order": 0.5, "weak_order": None}, "weak_order must be a pos"),
        (
            {"ode_order": 0, "supports_noise": False, "strong_order": None, "weak_order": None},
            "ode_order must be a pos",
        ),
        ({"ode_order": True, "supports_noise": False, "strong_order": None, "weak_order": None}, "ode_order"),
        ({"ode_order": 1, "supports_noise": 1, "strong_order": None, "weak_order": None}, "True or False"),
    ],
)
def test_inconsistent_declarations_are_refused(private_registry, declared, message):
    with pytest.raises(ValueError, match=message):
        register("odd")(type("Odd", (Scheme,), {**declared, "step": _step}))
    assert "odd" not in cd.schemes.available()


# ----------------------------------------------------------------------------- tableaux
def nonlinear_field() -> cd.Tied:
    return cd.Tied(lambda t, u: -0.8 * u + math.sin(1.5 * t) * u**2 + 0.3 * torch.cos(u))


@pytest.mark.parametrize("name", ["heun", "midpoint", "rk4"])
def test_tableau_steps_are_the_methods_written_out(name):
    f = nonlinear_field().drift
    u = torch.tensor([[0.5, -0.2], [1.0, 0.3]], dtype=torch.float64)
    t, h = 0.3, 0.25
    k1 = f(t, u)
    if name == "heun":
        expected = u + h / 2 * (k1 + f(t + h, u + h * k1))
    elif name == "midpoint":
        expected = u + h * f(t + h / 2, u + h / 2 * k1)
    else:
        k2 = f(t + h / 2, u + h / 2 * k1)
        k3 = f(t + h / 2, u + h / 2 * k2)
        k4 = f(t + h, u + h * k3)
        expected = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    flow = cd.Flow(nonlinear_field(), name, steps=1, t0=t, t1=t + h)
    torch.testing.assert_close(flow(u), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name, order", [("heun", 2), ("midpoint", 2), ("kutta3", 3), ("rk4", 4)])
def test_tableaux_meet_their_order_conditions_and_no_more(name, order):
    tableau = cd.schemes.scheme_class(name).tableau
    assert tableau.order_conditions(order) == []
    assert tableau.stability_polynomial() == tuple(Fraction(1, math.factorial(j)) for j in range(order + 1))
    if order < 4:
        assert tableau.order_conditions(order + 1)  # some condition of the next order fails


def test_a_tableau_scheme_is_three_lines(private_registry):
    # Ralston's second-order method
    @register("ralston2")
    class Ralston2(ExplicitRungeKutta):
        ode_order = 2
        tableau = ButcherTableau([[], ["2/3"]], ["1/4", "3/4"])

    assert "ralston2" in registered(supports_noise=False) and Ralston2.strong_order is None
    field = cd.Tied(lambda t, u: -u + math.sin(3 * t))
    u0 = torch.tensor([[1.0]], dtype=torch.float64)
    ref = cd.odeint(field, u0, t1=2.0, rtol=1e-12, atol=1e-13)
    errors = [(cd.Flow(field, "ralston2", steps=n, t1=2.0)(u0) - ref).abs().max().item() for n in (16, 32, 64, 128)]
    assert cd.analysis.fit_order([2.0 / n for n in (16, 32, 64, 128)], errors).order == pytest.approx(2.0, abs=0.1)
    z = np.array([-1.0 + 0.5j, -2.1, 0.2j])
    assert np.array_equal(stability_region("ralston2").contains(z), np.abs(1 + z + z**2 / 2) <= 1)


def test_a_tableau_that_misses_its_declared_order_is_refused(private_registry):
    with pytest.raises(ValueError, match=r"declares ode_order = 3 but its tableau fails Σ b c² = 1/3"):

        @register("not3")
        class Not3(ExplicitRungeKutta):
            ode_order = 3
            tableau = ButcherTableau([[], [1]], ["1/2", "1/2"])

    with pytest.raises(TypeError, match="does not declare ode_order"):

        @register("no_order")
        class NoOrder(ExplicitRungeKutta):
            tableau = ButcherTableau([[], [1]], ["1/2", "1/2"])

    with pytest.raises(TypeError, match="tableau = ButcherTableau"):

        @register("no_tableau")
        class NoTableau(ExplicitRungeKutta):
            ode_order = 1

    assert not {"not3", "no_order", "no_tableau"} & set(cd.schemes.available())


@pytest.mark.parametrize(
    "a, b, error, message",
    [
        ([[], [1]], [1], ValueError, "2 rows of a but 1 weights"),
        ([[1], []], [0, 1], ValueError, "row 0 of a has 1 entries"),
        ([], [], ValueError, "at least one stage"),
        ([[]], [True], TypeError, "a number or a fraction"),
        ([[]], ["one"], TypeError, "a number or a fraction"),
    ],
)
def test_bad_tableaux_say_what_is_wrong(a, b, error, message):
    with pytest.raises(error, match=message):
        ButcherTableau(a, b)


def test_tableau_polynomial_text_and_nodes():
    tableau = ButcherTableau([[], ["1/2"], [0, "3/4"]], ["2/9", "1/3", "4/9"])  # Ralston's third order
    assert tableau.c == (0, Fraction(1, 2), Fraction(3, 4))
    assert tableau.polynomial_text() == "1 + z + z²/2 + z³/6"
    assert ButcherTableau([[]], [2]).polynomial_text() == "1 + 2z"


# ----------------------------------------------------------------------------- capabilities and hooks
def test_capability_queries():
    assert registered(supports_noise=True) == ["euler", "euler_maruyama", "lm2"]
    assert registered(invertible=True) == ["leapfrog", "revnet"]
    assert registered(has_momentum=True) == ["lm2"]
    assert registered() == sorted({cd.schemes.canonical(n) for n in cd.schemes.available()})
    assert cd.models.noisy_schemes() == registered(supports_noise=True)
    with pytest.raises(TypeError, match="unknown option 'noisy'.*supports_noise"):
        registered(noisy=True)


def test_messages_list_the_schemes_the_registry_knows(private_registry):
    @register("noisy_test")
    class NoisyTest(Scheme):
        ode_order, supports_noise, strong_order, weak_order = 1, True, 0.5, 1
        step = _step

    field = cd.Tied(lambda t, u: -u, diffusion=lambda t, u: u)
    with pytest.raises(ValueError, match="schemes that do: euler, euler_maruyama, lm2, noisy_test"):
        cd.Flow(field, "rk4", steps=2, t1=1.0, noise=cd.Noise())
    with pytest.raises(ValueError, match=r"invertible scheme \(leapfrog, revnet\), not 'rk4'"):
        cd.Flow(field, "rk4", steps=2, t1=1.0, reversible=True)
    with pytest.raises(ValueError, match="schemes that can: euler, euler_maruyama, lm2, noisy_test"):
        cd.models.get("resnet20", scheme="rk4", noise="sd:0.5")


def test_neutral_options_and_momentum():
    assert cd.schemes.scheme_class("lm2").neutral_options() == {"k": 0.0}
    assert all(cd.schemes.scheme_class(n).neutral_options() == {} for n in registered(has_momentum=False))
    lm = cd.schemes.get("lm2", k=[-0.2, 0.3], learnable=False)
    assert lm.momentum() is None  # not attached to a flow yet
    cd.Flow(cd.Blocks([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]), lm, steps=4)
    assert lm.momentum().tolist() == pytest.approx([-0.2, 0.3])
    assert cd.schemes.get("euler").momentum() is None and cd.schemes.get("rk4").check_stability()


def test_momentum_diagnostics_ask_the_schemes(private_registry):
    from contdepth.train.momentum import check_stability, lm_schemes, momentum

    model = cd.models.get("lm_resnet20", scheme_options={"k": 0.5, "learnable": False})
    assert len(lm_schemes(model)) == 3 and all(k == pytest.approx([0.5] * len(k)) for k in momentum(model))
    assert check_stability(model) == (pytest.approx(0.5), True)
    plain = cd.models.get("resnet20")
    assert lm_schemes(plain) == [] and momentum(plain) == [] and check_stability(plain) == (0.0, True)


@pytest.mark.parametrize(
    "model, scheme, family",
    [
        ("lm_resnet20", None, "lm"),  # the model's own scheme, lm2
        ("preact_resnet20", "lm", "lm"),  # an alias of lm2
        ("lm_resnet20", "euler", "other"),
        ("resnet20", None, "resnet"),
        ("shake_resnet26_2x32d", None, "other"),
    ],
)
def test_study_rows_ask_the_scheme_for_their_family(model, scheme, family):
    from contdepth.studies.catalog import RunSpec

    assert RunSpec(model, scheme=scheme).family == family
