"""Stability regions against closed forms and the schemes themselves; block spectra of linear fields."""

import json
import math

import numpy as np
import pytest
import torch

import contdepth as cd
from contdepth.analysis import block_spectra, known_schemes, stability_region
from contdepth.analysis.stability import region_of_step

DETERMINISTIC = ["euler", "heun", "midpoint", "kutta3", "rk4", "polynet", "ab2", "lm2", "revnet", "leapfrog"]


def grid(lo=-4.0, hi=2.0, n=121):
    re, im = np.meshgrid(np.linspace(lo, hi, n), np.linspace(-3.0, 3.0, n))
    return re + 1j * im


# ----------------------------------------------------------------------------- closed forms
def test_euler_region_is_the_unit_disc_around_minus_one():
    z = grid()
    expected = np.abs(1 + z) <= 1
    away = np.abs(np.abs(1 + z) - 1) > 1e-9
    assert np.array_equal(stability_region("euler").contains(z)[away], expected[away])
    assert stability_region("resnet").name == "euler"


@pytest.mark.parametrize("name, order", [("heun", 2), ("midpoint", 2), ("kutta3", 3), ("rk4", 4)])
def test_runge_kutta_regions_are_taylor_polynomials(name, order):
    z = grid()
    r = sum(z**j / math.factorial(j) for j in range(order + 1))
    away = np.abs(np.abs(r) - 1) > 1e-9
    assert np.array_equal(stability_region(name).contains(z)[away], (np.abs(r) <= 1)[away])


@pytest.mark.parametrize(
    "name, lo", [("euler", -2.0), ("heun", -2.0), ("rk4", -2.785293563405), ("ab2", -1.0), ("polynet", -1.0)]
)
def test_real_intervals(name, lo):
    a, b = stability_region(name).real_interval()
    assert a == pytest.approx(lo, abs=1e-9) and b == pytest.approx(0.0, abs=1e-9)


def test_ab2_real_interval_by_contains():
    x = np.linspace(-1.5, 0.5, 2001)
    inside = stability_region("ab2").contains(x)
    assert np.array_equal(inside, (x >= -1.0 - 1e-12) & (x <= 1e-12))


def test_rk4_real_interval_by_contains():
    x = np.array([-2.7853, -2.7852, -1.0, 0.0, 1e-6])
    assert stability_region("rk4").contains(x).tolist() == [False, True, True, True, False]


def test_polynet_terms():
    z = grid()
    for terms in (1, 2, 3):
        r = sum(z**j for j in range(terms + 1))
        away = np.abs(np.abs(r) - 1) > 1e-9
        got = stability_region("polynet", terms=terms).contains(z)
        assert np.array_equal(got[away], (np.abs(r) <= 1)[away])
    built = cd.schemes.get("polynet", terms=3)
    assert stability_region(built).name == "polynet(terms=3)"


def test_lm2_at_k0_is_euler():
    z = grid()
    assert np.array_equal(stability_region("lm2", k=0.0).contains(z), stability_region("euler").contains(z))
    b = stability_region("lm2", k=0.0).boundary(64)[0]
    assert np.allclose(np.abs(1 + b), 1.0, atol=1e-12)


@pytest.mark.parametrize("k", [-0.6, -0.25, 0.3, 0.8])
def test_lm2_against_numpy_roots(k):
    rng = np.random.default_rng(1)
    z = rng.uniform(-4.5, 1.0, 400) + 1j * rng.uniform(-3, 3, 400)
    expected = []
    for zz in z:  # zeta^2 - (1 - k + z) zeta - k
        roots = np.roots([1.0, -(1 - k + zz), -k])
        expected.append(bool(np.all(np.abs(roots) <= 1 + 1e-9)))
    got = stability_region("lm2", k=k).contains(z)
    margin = np.array([abs(np.abs(np.roots([1.0, -(1 - k + zz), -k])).max() - 1) > 1e-7 for zz in z])
    assert margin.sum() > 350
    assert np.array_equal(got[margin], np.array(expected)[margin])
    assert 0 < got.sum() < len(z)
    a, _ = stability_region("lm2", k=k).real_interval()
    assert a == pytest.approx(-2 * (1 - k), abs=1e-9)  # zeta = -1 on the locus


def test_boundary_locus_lies_on_the_region_edge():
    for name in ["euler", "heun", "rk4", "ab2", "polynet"]:
        region = stability_region(name)
        curve = region.boundary(200)
        assert curve.ndim == 2 and curve.shape[1] == 200
        roots = region.roots(curve.ravel())
        assert np.allclose(np.abs(roots).max(axis=-1), 1.0, atol=1e-8) or name == "ab2"
        # every locus point has a root on the unit circle
        assert np.allclose(np.min(np.abs(np.abs(roots) - 1), axis=-1), 0.0, atol=1e-8)
    # lm2's root locus is e^{iθ} - (1 - k) - k e^{-iθ}
    k = -0.3
    theta = np.linspace(0, 2 * np.pi, 50)
    locus = np.exp(1j * theta) - (1 - k) - k * np.exp(-1j * theta)
    assert np.allclose(stability_region("lm2", k=k).boundary(50)[0], locus, atol=1e-12)


def test_repeated_root_on_the_circle_is_unstable():
    # lm2 with k = -1: rho = (zeta - 1)^2, a double root at z = 0
    region = stability_region("lm2", k=-1.0)
    assert not region.contains(0.0)
    assert stability_region("lm2", k=-0.999).contains(-0.001)


def test_partitioned_region_is_an_imaginary_segment():
    region = stability_region("leapfrog")
    assert region.contains(np.array([0.5j, -1.9j])).all()
    assert not region.contains(np.array([2.1j, 0.1 + 1j, -0.1, 2j])).any()


def test_errors_name_the_choices():
    with pytest.raises(ValueError, match="stochastic"):
        stability_region("euler_maruyama")
    with pytest.raises(ValueError, match="available: .*rk4"):
        stability_region("no_such_scheme")
    with pytest.raises(ValueError, match="takes no options"):
        stability_region("rk4", k=0.1)
    with pytest.raises(ValueError, match="one k per block"):
        stability_region(cd.schemes.get("lm2", k=0.1, learnable=False))
    with pytest.raises(TypeError):
        stability_region(3)


# ------------------------------------------------------------------- from the schemes themselves
def scalar_flow(scheme, lam, h=1.0, steps=1, **options):
    field = cd.Tied(lambda t, u: lam * u)
    return cd.Flow(field, cd.schemes.get(scheme, **options), steps=steps, t1=steps * h)


@pytest.mark.parametrize("name", ["euler", "heun", "midpoint", "kutta3", "rk4", "polynet"])
def test_one_step_polynomial_matches_the_scheme(name):
    region = stability_region(name)
    for z in (-0.7 + 0.4j, 0.3 - 1.1j, -2.2):
        u = torch.ones(1, dtype=torch.complex128)
        with torch.no_grad():
            r = scalar_flow(name, z)(u)  # one step of h = 1 on u' = z u
        # the only root of P(zeta; z) = zeta - R(z) is R(z)
        assert region.roots(z)[0] == pytest.approx(complex(r[0]), abs=1e-12)


@pytest.mark.parametrize("k", [-0.4, 0.0, 0.5])
def test_lm2_polynomial_matches_the_scheme(k):
    # two steps from (u_prev, u0): the recurrence x_{n+1} = a1 x_n + a0 x_{n-1} read off the scheme
    z = 0.3 - 0.8j
    flow = scalar_flow("lm2", z, steps=1, k=k, learnable=False)
    coeff = []
    for u0, prev in ((1.0, 0.0), (0.0, 1.0)):
        with torch.no_grad():
            coeff.append(
                complex(
                    flow(torch.tensor([u0], dtype=torch.complex128), torch.tensor([prev], dtype=torch.complex128))[0]
                )
            )
    a1, a0 = coeff  # zeta^2 - a1 zeta - a0
    expected = np.sort_complex(np.roots([1.0, -a1, -a0]))
    got = np.sort_complex(stability_region("lm2", k=k).roots(z))
    assert np.allclose(got, expected, atol=1e-12)
    assert np.allclose(np.poly(got), [1.0, -(1 - k + z), -k], atol=1e-12)


def test_ab2_polynomial_matches_the_scheme():
    z = -0.4 + 0.6j
    flow = scalar_flow("ab2", z, steps=3)
    with torch.no_grad():
        path = flow.trajectory(torch.ones(1, dtype=torch.complex128))[:, 0].numpy()
    # after the Euler start, x_{n+2} = (1 + 3z/2) x_{n+1} - z/2 x_n
    a, b = np.poly(stability_region("ab2").roots(z))[1:]
    assert path[3] == pytest.approx(-a * path[2] - b * path[1], abs=1e-12)


# ------------------------------------------------------------- a scheme registered in a test
@pytest.fixture
def private_registry(monkeypatch):
    """Schemes registered in a test are forgotten after it."""
    from contdepth.schemes import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))


def test_a_newly_registered_scheme_has_its_stability_region(private_registry):
    # Heun's third-order method written by hand: one class and one registration, no other change
    @cd.schemes.register("heun3", "test_rk3")
    class Heun3(cd.schemes.Scheme):
        ode_order = 3
        supports_noise = False
        strong_order = weak_order = None

        @classmethod
        def characteristic(cls):
            return cd.schemes.Characteristic.one_step([1.0, 1.0, 1 / 2, 1 / 6], "|1 + z + z²/2 + z³/6| <= 1")

        def step(self, ctx, u, state):
            f, t, h = ctx.field.drift, ctx.t, ctx.h
            k1 = f(t, u)
            k2 = f(t + h / 3, u + (h / 3) * k1)
            k3 = f(t + 2 * h / 3, u + (2 * h / 3) * k2)
            return u + (h / 4) * (k1 + 3 * k3), state

    region = stability_region("test_rk3")
    assert region.name == "heun3" and region.kind == "one-step" and "heun3" in known_schemes()
    z = grid()
    r = 1 + z + z**2 / 2 + z**3 / 6
    away = np.abs(np.abs(r) - 1) > 1e-9
    assert np.array_equal(region.contains(z)[away], (np.abs(r) <= 1)[away])
    assert region.real_interval()[0] == pytest.approx(-2.512745326618, abs=1e-9)
    for lam in (-0.7 + 0.4j, 0.3 - 1.1j, -2.2):  # one step of h = 1 on u' = lam u is R(lam): the scheme's own
        with torch.no_grad():
            step = scalar_flow("heun3", lam)(torch.ones(1, dtype=torch.complex128))
        assert region.roots(lam)[0] == pytest.approx(complex(step[0]), abs=1e-12)
    assert region_of_step(cd.schemes.get("test_rk3"), t_mid=0.5).name == "heun3"  # as the block spectra ask
    with pytest.raises(ValueError, match="takes no options"):
        stability_region("heun3", k=0.1)


# ----------------------------------------------------------------------------- block spectra
def linear_field(eigs: np.ndarray, shape: tuple, dtype=torch.float64, seed: int = 0):
    """f(u) = A u on states of ``shape`` per sample, with A = Q diag(eigs) Q^{-1} (real; eigs real or
    conjugate pairs)."""
    d = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((d, d))
    blocks = np.zeros((d, d))
    i = 0
    while i < d:
        lam = eigs[i]
        if abs(lam.imag) > 0:
            blocks[i : i + 2, i : i + 2] = [[lam.real, lam.imag], [-lam.imag, lam.real]]
            i += 2
        else:
            blocks[i, i] = lam.real
            i += 1
    a = torch.tensor(q @ blocks @ np.linalg.inv(q), dtype=dtype)

    def f(t, u):
        return (u.reshape(u.shape[0], -1) @ a.T).reshape(u.shape)

    return cd.Tied(f)


def spectrum(d, seed=0):
    rng = np.random.default_rng(seed)
    re = -1.25 + 1.75 * rng.uniform(-1, 1, d) ** 3  # in [-3, 0.5], sparse at both ends: ARPACK converges fast
    eigs = re.astype(complex)
    eigs[0], eigs[1] = -2.0 + 1.5j, -2.0 - 1.5j  # one complex pair
    return eigs


@pytest.mark.parametrize("shape, dense_below", [((60,), 0), ((3, 4, 4), 0), ((2, 4, 4), 256)])
def test_block_spectra_recovers_linear_spectra_float64(shape, dense_below):
    d = int(np.prod(shape))
    eigs = spectrum(d)
    h = 0.5
    flow = cd.Flow(linear_field(eigs, shape), "rk4", steps=2, t1=2 * h)
    x = torch.randn(2, *shape, dtype=torch.float64)
    result = block_spectra(flow, x, n_eigs=6, dense_below=dense_below)
    assert len(result.steps) == 2
    z = h * eigs
    want_lm = z[np.argsort(-np.abs(z), kind="stable")][:6]
    want_lr = np.sort(z.real)[::-1][:6]
    for step in result.steps:
        assert step.largest.shape == (2, 6) and step.h == h
        for b in range(2):
            assert np.allclose(np.sort(np.abs(step.largest[b]))[::-1], np.abs(want_lm), atol=1e-6)
            # each one found is an eigenvalue (of a conjugate pair at the cut, either member will do)
            assert np.abs(step.largest[b][:, None] - z[None, :]).min(axis=1).max() < 1e-6
            assert np.allclose(step.rightmost[b].real, want_lr, atol=1e-6)
        assert step.region.name == "rk4"
        inside = stability_region("rk4").contains(np.concatenate([want_lm, step.rightmost[0]]))
        assert 0 < inside.mean() < 1
    summary = result.steps[0].summary()
    assert summary["spectral_radius"]["max"] == pytest.approx(np.abs(want_lm[0]), abs=1e-6)
    assert summary["max_real"]["mean"] == pytest.approx(want_lr[0], abs=1e-6)


def test_block_spectra_float32_feature_maps():
    shape = (2, 4, 4)
    eigs = spectrum(32, seed=2)
    flow = cd.Flow(linear_field(eigs, shape, dtype=torch.float32, seed=2), "euler", steps=1, t1=1.0)
    x = torch.randn(2, *shape)
    result = block_spectra(flow, x, n_eigs=4, dense_below=0)
    step = result.steps[0]
    want = np.sort(eigs.real)[::-1][:4]
    assert result.dtype == "float32"
    assert np.allclose(step.rightmost.real, want[None, :], atol=1e-3)


def test_block_spectra_of_a_model_visits_its_stages_per_block_k():
    torch.manual_seed(0)
    model = cd.models.get("lm_resnet20").double().train()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    result = block_spectra(model, x, n_eigs=2, stages=[2], tol=1e-6)
    assert model.training  # restored
    steps = result.stage(2)
    assert [s.step for s in steps] == [0, 1]  # lm_resnet20: 3 blocks per stage, the first a transition
    flow = model.flows()[2]
    for s in steps:
        k = float(flow.scheme.k.detach()[s.block])
        assert s.region.name == f"lm2(k={k:g})"
        assert np.isfinite(s.largest).all()


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "--model", "no_such_net"], "unknown model 'no_such_net'; choose one of"),
        (["analyze", "--run", "/nonexistent/run"], "is not a training run"),
        (["analyze", "--model", "resnet20", "--scheme", "nope"], "unknown scheme 'nope'"),
        (["analyze", "--model", "resnet20", "--tol", "2"], "--tol must be in [0, 1)"),
    ],
)
def test_analyze_errors_are_one_line(argv, message, capsys):
    from contdepth.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("contdepth analyze: error: ") and message in err and "\n" not in err


def test_analyze_a_trained_run_writes_the_figure_and_json(fake_cifar10, tmp_path, capsys):
    from contdepth.cli import main

    run = tmp_path / "run"
    small = ["--batch-size", "16", "--subset", "32", "--test-subset", "32", "--device", "cpu", "--no-progress"]
    assert main(["train", "--model", "lm_resnet20", "--epochs", "1", *small, "--data-dir", str(fake_cifar10),
                 "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "analysis"
    argv = ["analyze", "--run", str(run), "--images", "2", "--n-eigs", "2", "--tol", "0.05", "--threads", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "6 steps, 2 inputs" in capsys.readouterr().out
    assert (out / "stability.png").stat().st_size > 10_000
    result = json.loads((out / "stability.json").read_text())
    steps = result["spectra"]["steps"]
    assert len(steps) == 6 and {s["stage"] for s in steps} == {0, 1, 2}
    assert all(s["region"].startswith("lm2(k=") and len(s["largest"]) == 2 for s in steps)  # 2 inputs
    assert len({s["region"] for s in steps}) == 6  # each block's own learned k
    assert result["provenance"]["git_commit"] and result["scheme"] == "lm2"
