"""Noise laws, Euler–Maruyama weak order, stochastic depth and shake-shake as SDE steps, sdeint."""

import math

import pytest
import torch
from problems import gbm_field, gbm_moment
from torch import nn

import contdepth as cd
from contdepth.analysis import fit_order
from contdepth.noise import Bernoulli, get_law


@pytest.mark.parametrize("law", ["gaussian", "rademacher", "uniform", "bernoulli"])
def test_laws_are_standardised(law):
    gen = torch.Generator().manual_seed(0)
    kwargs = {"p": 0.3} if law == "bernoulli" else {}
    xi = get_law(law, **kwargs).sample((400_000,), torch.zeros(1, dtype=torch.float64), gen)
    assert xi.mean().item() == pytest.approx(0.0, abs=0.01)
    assert xi.var().item() == pytest.approx(1.0, abs=0.01)
    assert (xi**3).mean().item() == pytest.approx(get_law(law, **kwargs).third_moment(), abs=0.03)


def test_unknown_law_lists_choices():
    with pytest.raises(ValueError, match="available:.*gaussian.*rademacher"):
        get_law("cauchy")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Bernoulli(p=1.5)


@pytest.mark.parametrize("law", ["gaussian", "rademacher"])
def test_euler_maruyama_weak_order_one_on_gbm(law):
    a, b, T = 0.5, 0.6, 1.0
    field = gbm_field(a, b)
    x0 = torch.ones(2_000_000, 1, dtype=torch.float64)
    exact = gbm_moment(a, b, 1.0, T, 2)  # E X_T^2
    steps = [4, 8, 16, 32]  # MC standard error ~0.005, errors 0.5 ... 0.08
    errors = []
    for n in steps:
        flow = cd.Flow(
            field, cd.schemes.get("euler_maruyama", noise=law, seed=10 + n), steps=n, t1=T, noise_at_eval=True
        )
        with torch.no_grad():
            errors.append(abs((flow(x0) ** 2).mean().item() - exact))
    assert fit_order([T / n for n in steps], errors).order == pytest.approx(1.0, abs=0.25)


def one_block(branch: nn.Module, p: float, law: str = "bernoulli") -> cd.Flow:
    field = cd.Blocks([branch], drift_scale=[p], diffusion_scale=[math.sqrt(p * (1 - p))])
    return cd.Flow(field, cd.schemes.get("euler_maruyama", noise=law, p=p, seed=0), steps=1)


def test_stochastic_depth_is_x_plus_bernoulli_branch():
    torch.manual_seed(0)
    branch = nn.Linear(4, 4)
    p = 0.7
    flow = one_block(branch, p)
    x = torch.randn(20_000, 4)
    with torch.no_grad():
        fx = branch(x)
        out = flow(x)  # training mode: noise on
        eta = ((out - x) * fx).sum(1) / (fx * fx).sum(1)  # per-sample coefficient of F
        assert torch.allclose(out, x + eta[:, None] * fx, atol=1e-5)
        assert torch.all(((eta - 1).abs() < 1e-4) | (eta.abs() < 1e-4))  # each sample keeps or drops F
        assert eta.mean().item() == pytest.approx(p, abs=0.01)
        assert eta.var().item() == pytest.approx(p * (1 - p), abs=0.01)
        flow.eval()
        assert torch.allclose(flow(x), x + p * fx, atol=1e-6)


class ShakePair(nn.Module):
    """Two branches; drift (F1+F2)/2, diffusion (F1-F2)/sqrt 12."""

    def __init__(self) -> None:
        super().__init__()
        self.b1, self.b2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def drift_diffusion(self, u):
        f1, f2 = self.b1(u), self.b2(u)
        return 0.5 * (f1 + f2), (f1 - f2) / math.sqrt(12.0)


def test_shake_shake_is_x_plus_uniform_mixture():
    torch.manual_seed(0)
    pair = ShakePair()
    flow = cd.Flow(cd.Blocks([pair]), cd.schemes.get("euler_maruyama", noise="uniform", seed=1), steps=1)
    x = torch.randn(20_000, 4)
    with torch.no_grad():
        f1, f2 = pair.b1(x), pair.b2(x)
        out = flow(x)
        d = f1 - f2
        eta = ((out - x - f2) * d).sum(1) / (d * d).sum(1)  # out = x + eta F1 + (1 - eta) F2
        assert torch.allclose(out, x + eta[:, None] * f1 + (1 - eta[:, None]) * f2, atol=1e-4)
        assert eta.min().item() >= -1e-4 and eta.max().item() <= 1 + 1e-4
        assert eta.mean().item() == pytest.approx(0.5, abs=0.01)
        assert eta.var().item() == pytest.approx(1 / 12, abs=0.005)
        flow.eval()
        assert torch.allclose(flow(x), x + 0.5 * (f1 + f2), atol=1e-6)


def test_branch_is_evaluated_once_per_step():
    calls = []

    class Counting(nn.Module):
        def forward(self, u):
            calls.append(1)
            return -u

    flow = one_block(Counting(), 0.8)
    flow(torch.ones(3, 2))
    assert len(calls) == 1


def test_noise_granularity_and_seeding():
    field = cd.Tied(lambda t, u: 0 * u, diffusion=lambda t, u: torch.ones_like(u))
    u = torch.zeros(5, 3, 2)
    for per, distinct in [("sample", 5), ("batch", 1), ("element", 30)]:
        flow = cd.Flow(field, cd.schemes.get("euler_maruyama", per=per, seed=4), steps=1, t1=1.0)
        out = flow(u)
        assert out.unique().numel() == distinct
        again = cd.Flow(field, cd.schemes.get("euler_maruyama", per=per, seed=4), steps=1, t1=1.0)(u)
        assert torch.equal(out, again)
    flow = cd.Flow(field, cd.schemes.get("euler_maruyama", seed=4), steps=1, t1=1.0).eval()
    assert torch.equal(flow(u), u)  # noise off in eval
    flow.noise_at_eval = True
    assert not torch.equal(flow(u), u)


def test_lm2_with_stochastic_depth_noise():
    torch.manual_seed(0)
    branches = [nn.Linear(3, 3) for _ in range(3)]
    p = [1.0, 0.9, 0.8]
    field = cd.Blocks(branches, drift_scale=p, diffusion_scale=[math.sqrt(q * (1 - q)) for q in p])
    flow = cd.Flow(field, cd.schemes.get("lm2", noise="bernoulli", p=p), steps=3)
    x = torch.randn(8, 3)
    assert not torch.equal(flow(x), flow(x))
    flow.eval()
    assert torch.equal(flow(x), flow(x))


def test_sdeint_any_shape_and_mean():
    a, b = 0.5, 0.4
    field = gbm_field(a, b)
    torch.manual_seed(0)
    u0 = torch.ones(4000, 1, 2, 2, dtype=torch.float64)
    for per in ["sample", "element"]:
        out = cd.sdeint(field, u0, t1=1.0, dt=0.05, per=per)
        assert out.shape == u0.shape
        assert out.mean().item() == pytest.approx(math.exp(a), rel=0.03)
    traj = cd.sdeint(field, u0[:3], t1=1.0, dt=0.1, times=[0.0, 0.5, 1.0])
    assert traj.shape == (3, 3, 1, 2, 2)
    with pytest.raises(ValueError, match="stochastic"):
        cd.sdeint(cd.Tied(lambda t, u: u), u0, t1=1.0)


def test_sdeint_piecewise_blocks_match_em_mean():
    torch.manual_seed(0)
    branches = [nn.Linear(2, 2).double() for _ in range(2)]
    field = cd.Blocks(branches, drift_scale=[0.3, 0.3], diffusion_scale=[0.2, 0.2])
    u0 = torch.randn(1, 2, dtype=torch.float64).repeat(20000, 1)
    with torch.no_grad():
        flow = cd.Flow(field, cd.schemes.get("euler_maruyama", seed=0), steps=64, noise_at_eval=True)
        em = flow(u0).mean(0)
        sde = cd.sdeint(field, u0, method="euler", dt=1 / 64).mean(0)
    assert torch.allclose(em, sde, atol=0.02)
