"""The noise source: one draw per forward, its law and seeding, per-block parameters, bad options."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import contdepth as cd
from contdepth.noise import Noise


class Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def sd_blocks(n: int = 3, c: int = 4) -> cd.Blocks:
    torch.manual_seed(0)
    p = [1.0 - (m + 1) / n * 0.5 for m in range(n)]
    return cd.Blocks(
        [nn.Conv2d(c, c, 3, padding=1) for _ in range(n)],
        drift_scale=p,
        diffusion_scale=[math.sqrt(q * (1 - q)) for q in p],
    )


@pytest.mark.parametrize("law,options", [("gaussian", {}), ("bernoulli", {"p": [0.9, 0.8, 0.5]}), ("uniform", {})])
def test_a_flow_draws_all_its_noise_in_one_call(law, options):
    flow = cd.Flow(sd_blocks(), "euler", steps=6, noise=Noise(law, **options))
    u = torch.randn(2, 4, 5, 5)
    with Ops() as counter:
        flow(u)
    random_calls = sum(v for k, v in counter.ops.items() if k in ("rand", "randn", "randint", "bernoulli", "normal"))
    assert random_calls == 1


def test_flow_draw_has_the_law_per_block():
    noise = Noise("bernoulli", p=[0.9, 0.5, 1.0], seed=3)
    pieces = [0, 0, 1, 1, 2, 2]
    like = torch.zeros(200_000, 1, dtype=torch.float64)
    xi = noise.draw(like, pieces, noise.step_table(pieces))
    assert xi.shape == (6, 200_000, 1)
    for n, piece in enumerate(pieces):
        x = xi[n]
        if piece == 2:
            assert torch.equal(x, torch.zeros_like(x))  # p = 1: never dropped
            continue
        assert x.mean().item() == pytest.approx(0.0, abs=0.01)
        assert x.var().item() == pytest.approx(1.0, abs=0.02)
        assert (x**3).mean().item() == pytest.approx(noise.law.third_moment(piece), abs=0.05)
    assert not torch.equal(xi[0], xi[1])  # steps draw independently


def test_a_fixed_seed_gives_a_fixed_draw():
    u = torch.zeros(8, 3)
    draws = [Noise("gaussian", seed=s).draw(u, [0, 0, 0]) for s in (5, 5, 6)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    field = cd.Tied(lambda t, x: -x, diffusion=lambda t, x: torch.ones_like(x))
    runs = [
        cd.Flow(field, "euler", steps=4, t1=1.0, noise=Noise("rademacher", per=per, seed=2))(torch.zeros(4, 3))
        for per in ("element", "element", "sample")
    ]
    assert torch.equal(runs[0], runs[1])
    assert (runs[2] == runs[2][:, :1]).all()  # per sample: one ξ for all of a sample's elements


def test_transitions_draw_from_their_noise_source():
    model = cd.models.resnet(20, noise="sd:0.5").train()
    transitions = [s.transition for s in model.stages if s.transition is not None]
    assert all(isinstance(t.noise, Noise) for t in transitions)
    assert transitions[-1].noise.law.p == [pytest.approx(1 - 7 / 9 * 0.5)]
    first, x = transitions[0], torch.randn(64, 16, 8, 8)
    outs = []
    for _ in range(2):
        first.noise = Noise(first.noise.law, seed=1)  # a private generator: its seed fixes the draw
        outs.append(first(x)[0])
    torch.testing.assert_close(outs[0], outs[1])
    assert not torch.allclose(first(x)[0], first.eval()(x)[0])  # noise in training mode only


def test_per_block_survival_is_honoured_or_refused():
    field = sd_blocks(3)
    flow = cd.Flow(field, "euler", steps=3, noise=Noise("bernoulli", p=[1.0, 1.0, 1.0]))
    u = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(flow(u), flow.eval()(u))  # p = 1 everywhere: never dropped
    tied = cd.Tied(lambda t, x: -x, diffusion=lambda t, x: x)
    with pytest.raises(ValueError, match="3 per-block values.*1 block"):
        cd.Flow(tied, "euler", steps=3, t1=1.0, noise=Noise("bernoulli", p=[0.9, 0.8, 0.7]))
    with pytest.raises(ValueError, match="2 per-block values.*3 block"):
        cd.Flow(sd_blocks(3), cd.schemes.get("lm2", noise="bernoulli", p=[0.9, 0.8]), steps=3)
    flow = cd.Flow(sd_blocks(3), cd.schemes.get("lm2", noise="bernoulli", p=torch.tensor([0.9, 0.8, 0.7])), steps=6)
    assert flow.noise.law.p == pytest.approx([0.9, 0.8, 0.7])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: cd.schemes.get("lm2", K=-0.3, learnabel=False), "unknown option 'K'.*did you mean 'k'"),
        (lambda: cd.schemes.get("lm2", k=-0.3, learnabel=False), "'learnabel'.*did you mean 'learnable'"),
        (lambda: cd.schemes.get("rk4", steps=3), "scheme 'rk4': unknown option 'steps'"),
        (lambda: cd.schemes.get("polynet", term=3), "did you mean 'terms'"),
        (lambda: cd.schemes.get("euler_maruyama", noise="bernoulli", pp=0.5), "did you mean 'p'"),
        (lambda: cd.schemes.get("euler_maruyama", noise="gaussian", p=0.5), "unknown option 'p'"),
        (lambda: cd.schemes.get("euler", p=0.5), "option of a noise law"),
        (lambda: cd.get_law("gaussian", sigma=2), "noise law 'gaussian': unknown option 'sigma'"),
        (lambda: Noise("bernoulli", pp=0.5), "did you mean 'p'"),
    ],
)
def test_unknown_options_name_the_valid_ones(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize(
    "build",
    [
        lambda: cd.schemes.get("euler_maruyama", seed="abc"),
        lambda: cd.schemes.get("lm2", noise="bernoulli", p=0.5, seed="abc"),
        lambda: cd.schemes.get("euler", seed=1.5),
        lambda: Noise("gaussian", seed=True),
        lambda: Noise("gaussian", seed=-1),
        lambda: Noise("gaussian", per="pixel"),
        lambda: cd.schemes.get("lm2", per="pixel"),
        lambda: Noise("bernoulli", p=[0.5, 1.5]),
        lambda: Noise("bernoulli", p="high"),
        lambda: Noise("bernoulli", p=[]),
        lambda: Noise("cauchy"),
        lambda: cd.Flow(cd.Tied(lambda t, x: -x), "rk4", steps=2, t1=1.0, noise="gaussian"),
    ],
)
def test_bad_noise_options_are_refused_at_construction(build):
    with pytest.raises((TypeError, ValueError)):
        build()


@pytest.mark.parametrize("scheme", ["euler", "lm2", "rk4", "ab2", "heun"])
def test_integer_states_are_refused(scheme):
    flow = cd.Flow(sd_blocks(2), scheme, steps=2)
    with pytest.raises(TypeError, match="states must be floating point"):
        flow(torch.zeros(1, 4, 3, 3, dtype=torch.long))


@pytest.mark.parametrize("steps", [2, 4, 6])
@pytest.mark.parametrize("bad", [(1, 4, 5, 5), (2, 4, 5, 1), (3, 4, 5, 5)])
def test_lm2_history_of_another_shape_is_refused(steps, bad):
    flow = cd.Flow(sd_blocks(2), "lm2", steps=steps)
    with pytest.raises(ValueError, match="u_prev has shape"):
        flow(torch.randn(2, 4, 5, 5), torch.randn(*bad))


@pytest.mark.parametrize(
    "scheme,noise", [("euler", None), ("euler", "gaussian"), ("lm2", "bernoulli"), ("rk4", None), ("ab2", None)]
)
def test_an_empty_batch_gives_an_empty_result(scheme, noise):
    options = {"p": 0.8} if noise == "bernoulli" else {}
    flow = cd.Flow(sd_blocks(2), scheme, steps=4, noise=None if noise is None else Noise(noise, **options))
    u = torch.zeros(0, 4, 5, 5)
    assert flow(u).shape == (0, 4, 5, 5)
    assert flow.trajectory(u).shape == (5, 0, 4, 5, 5)


def test_lm2_lerp_update_equals_the_two_step_formula():
    torch.manual_seed(1)
    field = cd.Tied(lambda t, x: torch.tanh(x))
    flow = cd.Flow(field, cd.schemes.get("lm2", k=[-0.3, 0.2, 0.5, -0.7], learnable=False), steps=4, t1=4.0).double()
    u0, u_prev = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    k = flow.scheme.k
    x_prev, x = u_prev, u0
    for n in range(4):
        x_prev, x = x, (1 - k[n]) * x + k[n] * x_prev + torch.tanh(x)
    torch.testing.assert_close(flow(u0, u_prev), x, rtol=1e-14, atol=1e-14)
    with Ops() as counter:
        flow(u0, u_prev)
    assert counter.ops["lerp"] == 4 and counter.ops["mul"] == 0 and counter.ops["sub"] == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"diffusion": 3.0}, "diffusion must be callable"),
        ({"diffusion_scale": "big"}, "diffusion_scale must be a number"),
        ({"drift_scale": [0.5, None]}, "drift_scale must be a number"),
    ],
)
def test_bad_field_options_are_refused_at_construction(kwargs, match):
    with pytest.raises(TypeError, match=match):
        cd.Blocks([nn.Identity(), nn.Identity()], **kwargs)
