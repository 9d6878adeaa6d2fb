"""Shake-shake's backward weight: independent of the forward one (Shake-Shake-Image) or the same."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import contdepth as cd
from contdepth.models.noise_spec import NoiseSpec, parse_noise
from contdepth.models.transition import Transition
from contdepth.noise import Noise

pytestmark = pytest.mark.usefixtures("one_thread")


class LinearPair(nn.Module):
    """Two linear branches ``F_i(u) = W_i u``; drift (F1+F2)/2, diffusion (F1-F2)/sqrt 12."""

    def __init__(self, d: int = 4) -> None:
        super().__init__()
        self.b1, self.b2 = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)

    def drift_diffusion(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1, f2 = self.b1(u), self.b2(u)
        return 0.5 * (f1 + f2), (f1 - f2) / math.sqrt(12.0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.drift_diffusion(u)[0]


def weights(pair: LinearPair, x: torch.Tensor, out: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per sample: the forward α of ``out = x + α F1 + (1-α) F2`` and the backward β of
    ``d<v, out>/dx = v + β W1ᵀv + (1-β) W2ᵀv``."""
    (grad,) = torch.autograd.grad((out * v).sum(), x)
    with torch.no_grad():
        f1, f2 = pair.b1(x), pair.b2(x)
        d = f1 - f2
        alpha = ((out - x - f2) * d).sum(1) / (d * d).sum(1)
        a, b = v @ pair.b1.weight, v @ pair.b2.weight
        beta = ((grad - v - b) * (a - b)).sum(1) / ((a - b) ** 2).sum(1)
    return alpha, beta


def one_step(backward: str, seed: int = 3) -> tuple[LinearPair, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    pair = LinearPair()
    flow = cd.Flow(cd.Blocks([pair]), "euler", steps=1, noise=Noise("uniform", seed=seed, backward=backward))
    x = torch.randn(4000, 4, requires_grad=True)
    return pair, x, flow(x)


def test_the_backward_sees_an_independent_weight():
    pair, x, out = one_step("independent")
    alpha, beta = weights(pair, x, out, torch.randn_like(x))
    for w in (alpha, beta):
        assert w.min().item() >= -1e-3 and w.max().item() <= 1 + 1e-3
        assert w.mean().item() == pytest.approx(0.5, abs=0.02)
        assert w.var().item() == pytest.approx(1 / 12, abs=0.006)
    assert torch.corrcoef(torch.stack([alpha, beta]))[0, 1].abs().item() < 0.05
    assert (alpha - beta).abs().gt(1e-3).float().mean().item() > 0.99


def test_the_backward_reuses_the_forward_weight():
    pair, x, out = one_step("same")
    alpha, beta = weights(pair, x, out, torch.randn_like(x))
    torch.testing.assert_close(beta, alpha, atol=1e-4, rtol=0)


def test_both_variants_compute_the_same_forward_value():
    for steps in (1, 4):
        outs = []
        for backward in ("same", "independent"):
            torch.manual_seed(0)
            field = cd.Blocks([LinearPair(), LinearPair()])
            noise = Noise("uniform", seed=5, backward=backward)
            outs.append(cd.Flow(field, "euler", steps=2 * steps, noise=noise)(torch.randn(8, 4, requires_grad=True)))
        assert torch.equal(outs[0], outs[1])


def recorded(flow: cd.Flow) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The flow's noise draws ``(ξ, ξ_b)``, recorded as it makes them."""
    drawn = []
    draw_pair = flow.noise.draw_pair

    def record(*args):
        drawn.append(draw_pair(*args))
        return drawn[-1]

    flow.noise.draw_pair = record
    return drawn


@pytest.mark.parametrize("backward", ["same", "independent"])
def test_refined_steps_each_take_their_own_backward_draw(backward):
    """Every gradient equals that of the unrolled steps ``u + h f + sqrt(h) (g ξ_b + (g (ξ - ξ_b)).detach())``."""
    torch.manual_seed(0)
    field = cd.Blocks([LinearPair(), LinearPair()])
    flow = cd.Flow(field, "euler", steps=6, noise=Noise("uniform", seed=1, backward=backward))
    drawn = recorded(flow)
    x, v = torch.randn(5, 4, requires_grad=True), torch.randn(5, 4)
    params = [x, *field.parameters()]
    out = flow(x)
    got = torch.autograd.grad((out * v).sum(), params)
    ((xi, xi_back),) = drawn
    assert (xi_back is None) == (backward == "same")
    xi_back = xi if xi_back is None else xi_back
    u, h = x, flow.h
    for n, piece in enumerate(flow.pieces):
        f, g = field.blocks[piece].drift_diffusion(u)
        u = u + h * f + math.sqrt(h) * (g * xi_back[n] + (g * (xi[n] - xi_back[n])).detach())
    torch.testing.assert_close(out, u)
    for a, b in zip(got, torch.autograd.grad((u * v).sum(), params), strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.equal(xi_back[0], xi_back[1])  # each step draws its own


def test_a_multistep_scheme_takes_the_backward_draw():
    """lm2 on linear branches: the input gradient is that of the flow run with ξ_b (its Jacobian is constant)."""
    torch.manual_seed(0)
    field = cd.Blocks([LinearPair(), LinearPair()])
    flow = cd.Flow(field, "lm2", steps=4, noise=Noise("uniform", seed=1, backward="independent"))
    drawn = recorded(flow)
    x, v = torch.randn(5, 4, requires_grad=True), torch.randn(5, 4)
    (got,) = torch.autograd.grad((flow(x) * v).sum(), x)
    ((xi, xi_back),) = drawn
    flow.noise.draw_pair = lambda *args: (xi_back, None)
    (expected,) = torch.autograd.grad((flow(x) * v).sum(), x)
    torch.testing.assert_close(got, expected)
    flow.noise.draw_pair = lambda *args: (xi, None)
    assert not torch.allclose(got, torch.autograd.grad((flow(x) * v).sum(), x)[0])


def test_transitions_take_the_backward_weight_too():
    torch.manual_seed(0)
    pair = LinearPair()
    x, v = torch.randn(2000, 4, requires_grad=True), torch.randn(2000, 4)
    results = {}
    for backward in ("same", "independent"):
        block = Transition(pair, nn.Identity(), noise=Noise("uniform", seed=2, backward=backward)).train()
        out = block(x)[0]
        results[backward] = out, *weights(pair, x, out, v)
    same_out, same_alpha, same_beta = results["same"]
    ind_out, ind_alpha, ind_beta = results["independent"]
    assert torch.equal(same_out, ind_out)
    torch.testing.assert_close(same_beta, same_alpha, atol=1e-4, rtol=0)
    assert (ind_alpha - ind_beta).abs().gt(1e-3).float().mean().item() > 0.99
    assert ind_beta.mean().item() == pytest.approx(0.5, abs=0.03)


def test_no_backward_draw_without_gradients_and_eval_is_the_mean():
    torch.manual_seed(0)
    pair = LinearPair()
    flow = cd.Flow(cd.Blocks([pair]), "euler", steps=2, noise=Noise("uniform", backward="independent"))
    x = torch.randn(6, 4)
    with torch.no_grad():
        assert flow.noise.draw_pair(x, flow.pieces)[1] is None
        flow.eval()
        torch.testing.assert_close(flow(x), cd.Flow(cd.Blocks([pair]), "euler", steps=2)(x))


# ----------------------------------------------------------------------------------- spellings
@pytest.mark.parametrize(
    "text,backward",
    [
        ("shake", "independent"),
        ("shake:independent", "independent"),
        ("Shake:Shake", "independent"),
        ("shake:same", "same"),
        ("shake_shake:keep", "same"),
    ],
)
def test_shake_spellings(text, backward):
    spec = parse_noise(text)
    assert spec == NoiseSpec("shake", backward=backward)
    assert parse_noise(str(spec)) == spec
    assert str(spec) == ("shake" if backward == "independent" else "shake:same")


@pytest.mark.parametrize("text", ["shake:1", "shake:indep", "shake:same:x"])
def test_bad_shake_spellings_give_one_line(text):
    with pytest.raises(ValueError, match="'shake' or 'shake:same'") as err:
        parse_noise(text)
    assert "\n" not in str(err.value)


def test_bad_backward_options_give_one_line():
    with pytest.raises(ValueError, match="backward='both'.*'same', 'independent'") as err:
        Noise("uniform", backward="both")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="noise 'sd' takes no backward='independent'"):
        NoiseSpec("sd", 0.5, backward="independent")
    assert NoiseSpec("sd", 0.5).backward == "same"


def test_models_carry_the_variant():
    for text, backward in (("shake", "independent"), ("shake:same", "same"), (None, "independent")):
        with torch.device("meta"):
            model = cd.models.get("shake_resnet20_2x16d", noise=text)
        sources = [f.noise for f in model.flows()] + [s.transition.noise for s in model.stages]
        assert sources and all(n is not None and n.backward == backward for n in sources)
