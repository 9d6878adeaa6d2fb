"""The coupling of benchmarks/sde_networks.py: every level keeps its exact law, and levels share their Gaussians."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
sde_networks = pytest.importorskip("sde_networks")

from contdepth.noise import Bernoulli, Gaussian, Rademacher, Uniform  # noqa: E402

N = 200_000


def draw(law, sub: int, pass_seed: int = 3, steps: int = 4) -> torch.Tensor:
    draws = sde_networks.Draws()
    draws.start(pass_seed)
    coupled = sde_networks.CoupledLaw(law, draws, sub)
    like = torch.zeros(N, 1, dtype=torch.float64)
    return coupled.sample_steps((N, 1), like, None, list(range(steps)))  # (steps, N, 1)


@pytest.mark.parametrize("law", [Gaussian(), Rademacher(), Uniform(), Bernoulli(0.8)], ids=repr)
@pytest.mark.parametrize("sub", [1, 4])
def test_each_level_keeps_the_law_standardised_and_its_steps_uncorrelated(law, sub):
    xi = draw(law, sub)
    assert xi.mean().abs() < 0.01 and (xi.var() - 1).abs() < 0.01
    assert abs(float(torch.corrcoef(xi[:2, :, 0])[0, 1])) < 0.01
    if isinstance(law, Bernoulli):
        kept = math.sqrt(0.2 / 0.8)
        assert torch.isclose(xi, torch.tensor(kept, dtype=xi.dtype)).double().mean() == pytest.approx(0.8, abs=0.005)
    if isinstance(law, Rademacher):
        assert set(xi.unique().tolist()) == {-1.0, 1.0}


def test_a_coarse_gaussian_step_is_the_normalised_sum_of_the_fine_steps_it_covers():
    fine = draw(Gaussian(), sub=1, steps=8)
    coarse = draw(Gaussian(), sub=2, steps=4)
    assert torch.allclose(coarse, (fine[0::2] + fine[1::2]) / math.sqrt(2))


def test_coupled_levels_and_laws_move_together_and_passes_differ():
    fine, coarse = draw(Uniform(), sub=1, steps=2), draw(Uniform(), sub=2, steps=1)
    assert float(torch.corrcoef(torch.stack([(fine[0] + fine[1])[:, 0], coarse[0, :, 0]]))[0, 1]) > 0.9
    gauss, two_point = draw(Gaussian(), sub=1), draw(Bernoulli(0.8), sub=1)
    assert float(torch.corrcoef(torch.stack([gauss.flatten(), two_point.flatten()]))[0, 1]) > 0.5
    assert not torch.equal(draw(Gaussian(), sub=1, pass_seed=4), gauss)
