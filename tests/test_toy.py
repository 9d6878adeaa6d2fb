"""The toy of Sun, Tao and Du: the Kolmogorov solver, MC vs PDE, `contdepth demo`, determinism."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from contdepth import Blocks, Flow
from contdepth.cli import main
from contdepth.schemes import EulerMaruyama
from contdepth.toy import ModelConfig, ToyTrainConfig, build_model, fit, make_data
from contdepth.toy._threads import one_thread
from contdepth.toy.kolmogorov import Grid, agreement, kolmogorov_pde, monte_carlo, solve_backward_kolmogorov

# Two blocks of linear drift f = A_m x, A_m = -λ_m I + ω_m J, and additive noise σ_m: the law of
# X_T is Gaussian with mean e^{A_2} e^{A_1} x and covariance s_T² I (rotations commute with I).
LAMBDA, OMEGA, SIGMA = (0.3, 0.6), (1.0, -0.5), (0.5, 0.3)
CENTRE, WIDTH = torch.tensor([0.4, -0.2], dtype=torch.float64), 0.6


def _linear_flow() -> Flow:
    blocks = []
    for lam, om in zip(LAMBDA, OMEGA, strict=True):
        layer = nn.Linear(2, 2, bias=False).double()
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[-lam, om], [-om, -lam]], dtype=torch.float64))
        blocks.append(layer)

    def sigma(t: float, u: torch.Tensor) -> torch.Tensor:
        return torch.full_like(u, SIGMA[min(int(t), 1)])

    return Flow(Blocks(blocks, diffusion=sigma), EulerMaruyama(per="element", seed=0), steps=2)


def _bump(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * ((x.double() - CENTRE) ** 2).sum(-1) / WIDTH**2)


def _exact(points: torch.Tensor, flow: Flow) -> torch.Tensor:
    mean = points
    for block in flow.field.blocks:
        mean = mean @ torch.linalg.matrix_exp(block.weight.detach()).T
    (l1, l2), (s1, s2) = LAMBDA, SIGMA
    var = s1**2 * (1 - math.exp(-2 * l1)) / (2 * l1) * math.exp(-2 * l2) + s2**2 * (1 - math.exp(-2 * l2)) / (2 * l2)
    total = WIDTH**2 + var
    return WIDTH**2 / total * torch.exp(-0.5 * ((mean - CENTRE) ** 2).sum(-1) / total)


def test_fd_solver_matches_gaussian_closed_form():
    flow = _linear_flow()
    roi = Grid.box((-1.5, -1.5), (1.5, 1.5), (7, 7))
    v, info = kolmogorov_pde(flow, _bump, roi, refine=8)
    error = (v.flatten() - _exact(roi.points(), flow)).abs().max()
    assert error < 3e-3, f"FD error {error:.2e}"
    assert info["max_stability"] <= 1.0
    v_coarse, _ = kolmogorov_pde(flow, _bump, roi, refine=2)
    assert (v_coarse.flatten() - _exact(roi.points(), flow)).abs().max() > error  # it converges


def test_fd_solver_stability_condition_is_enforced():
    grid = Grid.box((-2, -2), (2, 2), (41, 41))

    def coefficients(t, piece, points):
        return -points, torch.full_like(points, 0.25)

    phi = (grid.points()[:, 0] > 0).double().reshape(grid.shape)
    for advection in ("hybrid", "upwind"):
        v, info = solve_backward_kolmogorov(coefficients, phi, grid, [(0.0, 1.0, None)], advection=advection)
        assert info["max_stability"] <= 1.0
        assert v.min() >= -1e-12 and v.max() <= 1 + 1e-12  # monotone: maximum principle
    with pytest.raises(ValueError, match="unstable"):
        solve_backward_kolmogorov(coefficients, phi, grid, [(0.0, 1.0, None)], dt=0.1)


def _tiny_trained(noise: str = "gaussian", seed: int = 0):
    data = make_data(n_train=100, n_test=200, seed=seed)
    model = build_model(ModelConfig(noise=noise, blocks=2, hidden=8, sigma=0.5), seed=seed)
    with one_thread():
        result = fit(model, data, ToyTrainConfig(iters=60))
    return model, result


def test_monte_carlo_agrees_with_pde_on_trained_model():
    model, _ = _tiny_trained()
    roi = Grid.box((-1.5, -1.0), (1.5, 1.0), (4, 3))
    v, info = kolmogorov_pde(model.flow, model.phi, roi, refine=16)
    mc = monte_carlo(model.flow, model.phi, roi.points(), paths=4000, steps=128, seed=1, box=info["box"])
    stats = agreement(v, mc)
    assert mc.exit == 0.0
    assert stats["max_abs_diff"] < 4 * stats["max_se"], stats
    assert stats["rms_z"] < 2.0, stats


def test_training_is_deterministic_under_a_seed():
    for noise in ("gaussian", "stochastic_depth", "dropout"):
        (m1, r1), (m2, r2) = _tiny_trained(noise, seed=3), _tiny_trained(noise, seed=3)
        assert r1.losses == r2.losses
        for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
            assert torch.equal(a, b), k
    m3, r3 = _tiny_trained("gaussian", seed=4)
    assert r3.losses != _tiny_trained("gaussian", seed=3)[1].losses
    points = torch.zeros(3, 2)
    a = monte_carlo(m3.flow, m3.phi, points, paths=50, seed=5).mean
    assert torch.equal(a, monte_carlo(m3.flow, m3.phi, points, paths=50, seed=5).mean)


def test_demo_fast_writes_figure_and_provenance(tmp_path, capsys):
    threads = torch.get_num_threads()
    assert main(["demo", "--fast", "--no-progress", "--out", str(tmp_path)]) == 0
    assert torch.get_num_threads() == threads
    png, js = tmp_path / "demo.png", tmp_path / "demo.json"
    assert png.stat().st_size > 10_000
    record = json.loads(js.read_text())
    assert {"command", "git_commit", "torch", "seed", "date"} <= set(record["provenance"])
    assert [(r["scheme"], r["noise"]) for r in record["summary"]] == [
        ("euler", "none"),
        ("lm2", "none"),
        ("rk4", "none"),
        ("euler", "gaussian"),
        ("euler", "stochastic_depth"),
        ("euler", "dropout"),
    ]
    assert all(0.5 < r["test_mean"] <= 1.0 for r in record["summary"])
    assert record["kolmogorov"]["monte_carlo"][-1]["max_abs_diff"] < 0.5
    out = capsys.readouterr().out
    assert "test acc" in out and str(png.resolve()) in out


@pytest.mark.parametrize(
    "option, value, valid",
    [
        ("--scheme", "bogus", "euler, lm2, rk4"),
        ("--noise", "loud", "none, gaussian, stochastic_depth, dropout"),
    ],
)
def test_demo_rejects_unknown_choice_in_one_line(tmp_path, capsys, option, value, valid):
    assert main(["demo", option, value, "--fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and value in err and valid in err
