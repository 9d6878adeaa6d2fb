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


def test_the_gap_between_two_laws_closes_at_the_order_it_is_built_with():
    h = [1.0, 0.5, 0.25]  # three levels and the reference at 0.125
    gen = torch.Generator().manual_seed(0)
    trained, other = [], []
    for _ in range(8):  # batches: coupled, so both laws share the batch's own wobble
        wobble = 0.01 * torch.randn(1, generator=gen).item()
        base = [0.7 + 0.05 * x + wobble for x in [*h, 0.125]]
        trained.append(base)
        other.append(
            [
                b + 0.02 * x**0.5 + 1e-4 * torch.randn(1, generator=gen).item()
                for b, x in zip(base, [*h, 0.125], strict=True)
            ]
        )
    gap = sde_networks.law_gap({"step_sizes": h, "phi_batch_means": trained}, {"phi_batch_means": other})
    assert gap["step_sizes"] == [1.0, 0.5, 0.25, 0.125]
    assert gap["gaps"][0] == pytest.approx(0.02, abs=1e-3) and all(e < 1e-4 for e in gap["gap_stderr"])
    lo, hi = gap["order_ci95"]
    assert gap["order"] == pytest.approx(0.5, abs=0.02) and lo < gap["order"] < hi and hi - lo < 0.1
