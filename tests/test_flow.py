"""Flows against torchdiffeq, LM specifics, memory options and input validation."""

import math

import pytest
import torch
from torch import nn

import contdepth as cd


def conv_branch(channels: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1), nn.Tanh(), nn.Conv2d(channels, channels, 3, padding=1)
    )


def conv_blocks(n_blocks: int = 3, seed: int = 0) -> cd.Blocks:
    torch.manual_seed(seed)
    return cd.Blocks([conv_branch() for _ in range(n_blocks)]).double()


@pytest.fixture
def u0():
    torch.manual_seed(1)
    return torch.randn(2, 3, 6, 6, dtype=torch.float64)


@pytest.mark.parametrize(
    "scheme, method, per_block",
    [("euler", "euler", 1), ("euler", "euler", 4), ("midpoint", "midpoint", 1), ("midpoint", "midpoint", 3)],
)
def test_fixed_step_flow_matches_torchdiffeq(u0, scheme, method, per_block):
    field = conv_blocks()
    ours = cd.Flow(field, scheme, steps=3 * per_block)(u0)
    theirs = cd.odeint(field, u0, method=method, step_size=1.0 / per_block)  # block by block
    assert torch.allclose(ours, theirs, atol=1e-10, rtol=0)


def test_one_euler_step_per_block_is_a_resnet(u0):
    field = conv_blocks()
    x = u0
    for block in field.blocks:
        x = x + block(x)
    assert torch.allclose(cd.Flow(field, "euler", steps=3)(u0), x, atol=1e-13)


def test_rk4_uses_the_block_of_its_step_at_the_right_end(u0):
    # at t = m + 1 the last stage of a step must still use block m (piecewise-constant field)
    field = conv_blocks()
    out = cd.Flow(field, "rk4", steps=3)(u0)
    x = u0
    for block in field.blocks:
        k1 = block(x)
        k2 = block(x + 0.5 * k1)
        k3 = block(x + 0.5 * k2)
        k4 = block(x + k3)
        x = x + (k1 + 2 * k2 + 2 * k3 + k4) / 6
    assert torch.allclose(out, x, atol=1e-13)


def test_adaptive_solution_is_the_limit_of_refinement(u0):
    field = conv_blocks()
    ref = cd.odeint(field, u0, method="dopri5", rtol=1e-10, atol=1e-12)
    coarse = (cd.Flow(field, "rk4", steps=6)(u0) - ref).abs().max()
    fine = (cd.Flow(field, "rk4", steps=24)(u0) - ref).abs().max()
    assert fine < coarse / 50


def test_odeint_times_and_stats(u0):
    field = conv_blocks()
    traj, stats = cd.odeint(field, u0, times=[0.0, 0.5, 1.0, 2.5, 3.0], return_stats=True)
    assert traj.shape == (5, *u0.shape)
    assert torch.equal(traj[0], u0)
    assert torch.allclose(traj[-1], cd.odeint(field, u0), atol=1e-12)
    assert stats["pieces"] == 3 and stats["nfe"] > 0


def test_adjoint_gradients_match_direct(u0):
    field = conv_blocks(2)
    direct = torch.autograd.grad(cd.odeint(field, u0, rtol=1e-9, atol=1e-10).sum(), list(field.parameters()))
    adj = torch.autograd.grad(cd.odeint(field, u0, rtol=1e-9, atol=1e-10, adjoint=True).sum(), list(field.parameters()))
    for a, b in zip(direct, adj, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_trajectory_shape_and_endpoints(u0):
    flow = cd.Flow(conv_blocks(), "heun", steps=6)
    traj = flow.trajectory(u0)
    assert traj.shape == (7, *u0.shape)
    assert torch.equal(traj[0], u0)
    assert torch.allclose(traj[-1], flow(u0))
    assert traj.dtype == torch.float64


def test_lm2_with_zero_k_is_euler(u0):
    field = conv_blocks()
    lm = cd.Flow(field, cd.schemes.get("lm2", k=0.0, learnable=False), steps=6)
    assert torch.allclose(lm(u0), cd.Flow(field, "euler", steps=6)(u0), atol=1e-14)


def test_lm2_update_formula(u0):
    field = conv_blocks()
    ks = [-0.05, -0.07, -0.02]
    out = cd.Flow(field, cd.schemes.get("lm2", k=ks, learnable=False), steps=3)(u0)
    prev, x = None, u0
    for m, block in enumerate(field.blocks):
        nxt = x + block(x) if prev is None else (1 - ks[m]) * x + ks[m] * prev + block(x)
        prev, x = x, nxt
    assert torch.allclose(out, x, atol=1e-13)


def test_lm2_gradients_reach_every_k(u0):
    field = conv_blocks()
    scheme = cd.schemes.get("lm2")
    flow = cd.Flow(field, scheme, steps=6).double()
    assert scheme.k.shape == (3,)
    assert ((scheme.k > -0.1) & (scheme.k < 0)).all()
    flow(u0).square().sum().backward()
    # step 0 is Euler, but block 0 owns steps 0 and 1, so every k is used
    assert scheme.k.grad is not None and (scheme.k.grad != 0).all()


def test_lm2_per_channel(u0):
    scheme = cd.schemes.get("lm2", per_channel=3)
    flow = cd.Flow(conv_blocks(), scheme, steps=3).double()
    assert scheme.k.shape == (3, 3)
    flow(u0).sum().backward()
    assert (scheme.k.grad[1:] != 0).all()


def test_lm2_reads_k_once_per_forward(u0):
    """One unbind of k per forward, as in a hand-written loop, not an index (and its backward) per step."""
    from torch.profiler import ProfilerActivity, profile

    flow = cd.Flow(conv_blocks(), cd.schemes.get("lm2"), steps=6).double()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        flow(u0).sum().backward()
    counts = {e.key: e.count for e in prof.key_averages()}
    assert counts.get("aten::unbind") == 1
    # the unbind's own selects, one per block (3), not one per two-step update (5)
    assert counts.get("aten::select") == 3 and "aten::index" not in counts


def test_a_copied_flow_runs_its_own_field(u0):
    """Per-step contexts are cached; a deep copy must not keep stepping the original's field."""
    import copy

    flow = cd.Flow(conv_blocks(), "rk4", steps=6)
    before = flow(u0)
    twin = copy.deepcopy(flow)
    with torch.no_grad():
        for p in twin.field.parameters():
            p.mul_(0.5)
    assert torch.equal(flow(u0), before)
    assert not torch.allclose(twin(u0), before)
    assert torch.allclose(twin(u0), cd.Flow(twin.field, "rk4", steps=6)(u0), atol=1e-14)


def test_lm2_zero_stability_checks():
    with pytest.raises(ValueError, match="zero-stable"):
        cd.schemes.get("lm2", k=1.0, learnable=False)
    with pytest.raises(ValueError, match="zero-stable"):
        cd.schemes.get("lm2", k=-1.5)
    scheme = cd.schemes.get("lm2")
    cd.Flow(conv_blocks(), scheme, steps=3)
    with torch.no_grad():
        scheme.k[0] = 1.2
    with pytest.warns(UserWarning, match="zero-stable"):
        assert scheme.check_stability() is False


def test_ab2_restarts_at_block_boundaries(u0):
    field = conv_blocks()
    out = cd.Flow(field, "ab2", steps=6)(u0)
    x = u0
    for block in field.blocks:
        f0 = block(x)
        x1 = x + 0.5 * f0
        x = x1 + 0.5 * (1.5 * block(x1) - 0.5 * f0)
    assert torch.allclose(out, x, atol=1e-13)


@pytest.mark.parametrize("scheme", ["revnet", "leapfrog"])
def test_reversible_backprop_matches_autograd(scheme):
    torch.manual_seed(0)
    f1 = cd.Blocks([conv_branch(2) for _ in range(2)])
    f2 = cd.Blocks([conv_branch(2) for _ in range(2)])
    field = cd.Coupled(f1, f2).double()
    u0 = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    plain = cd.Flow(field, scheme, steps=4)
    rev = cd.Flow(field, scheme, steps=4, reversible=True)
    params = list(field.parameters())
    g_plain = torch.autograd.grad(plain(u0).square().sum(), [u0, *params])
    g_rev = torch.autograd.grad(rev(u0).square().sum(), [u0, *params])
    for a, b in zip(g_plain, g_rev, strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    # exact inverse: the scheme's inverse steps, run back over the flow's step grid, give u0 again
    with torch.no_grad():
        out = plain(u0)
        back = out
        for n in reversed(range(plain.steps)):
            piece = plain.pieces[n]
            new_piece = n == 0 or piece != plain.pieces[n - 1]
            ctx = cd.schemes.StepContext(
                cd.schemes.StepField(field, piece), plain.t0 + n * plain.h, plain.h, n, piece, new_piece
            )
            back = plain.scheme.inverse_step(ctx, back)
    assert torch.allclose(back, u0, atol=1e-12)


def test_checkpointing_gives_the_same_gradients(u0):
    field = conv_blocks()
    params = list(field.parameters())
    for scheme in ["rk4", "lm2"]:
        torch.manual_seed(3)
        s1 = cd.schemes.get(scheme) if scheme != "lm2" else cd.schemes.get("lm2", k=-0.05)
        s2 = cd.schemes.get(scheme) if scheme != "lm2" else cd.schemes.get("lm2", k=-0.05)
        a = torch.autograd.grad(cd.Flow(field, s1, steps=6)(u0).sum(), params)
        b = torch.autograd.grad(cd.Flow(field, s2, steps=6, checkpoint=True)(u0).sum(), params)
        for x, y in zip(a, b, strict=True):
            assert torch.allclose(x, y, atol=1e-12)


def test_refine_switches_lm_to_its_continuous_limit(u0):
    field = conv_blocks()
    scheme = cd.schemes.get("lm2", k=-0.2, learnable=False)
    flow = cd.Flow(field, scheme, steps=3)
    rk = flow.refine(steps=48, scheme="rk4")
    assert isinstance(rk.field, cd.schemes.LMLimit)
    limit = cd.odeint(flow, u0, rtol=1e-10, atol=1e-12)
    assert torch.allclose(rk(u0), limit, atol=1e-6)
    assert torch.allclose(flow.refine(steps=3000)(u0), limit, atol=5e-3)


def test_float32_and_any_shape():
    field = cd.Tied(lambda t, u: -u)
    for shape in [(4,), (4, 3), (4, 3, 2), (4, 3, 2, 2), (4, 1, 2, 2, 2)]:
        u = torch.ones(shape)
        out = cd.Flow(field, "rk4", steps=10, t1=1.0)(u)
        assert out.shape == u.shape and out.dtype == torch.float32
        assert torch.allclose(out, torch.full(shape, math.exp(-1.0)), atol=1e-5)


# ------------------------------------------------------------------ bad input
def test_unknown_scheme_lists_available():
    with pytest.raises(ValueError, match="available:.*euler.*rk4"):
        cd.Flow(conv_blocks(), "rk5", steps=3)


@pytest.mark.parametrize("steps", [0, -2])
def test_steps_must_be_positive(steps):
    with pytest.raises(ValueError, match="steps must be >= 1"):
        cd.Flow(conv_blocks(), "euler", steps=steps)


def test_steps_is_required_and_an_integer():
    with pytest.raises(TypeError, match="steps"):
        cd.Flow(conv_blocks(), "euler")
    with pytest.raises(TypeError, match="integer"):
        cd.Flow(conv_blocks(), "euler", steps=2.5)


def test_interval_must_be_forward():
    with pytest.raises(ValueError, match="t1 must be greater than t0"):
        cd.Flow(cd.Tied(lambda t, u: u), "euler", steps=3, t0=1.0, t1=1.0)
    with pytest.raises(ValueError, match="t1 is required"):
        cd.Flow(cd.Tied(lambda t, u: u), "euler", steps=3)


def test_steps_must_align_with_blocks():
    with pytest.raises(ValueError, match="multiple of 3"):
        cd.Flow(conv_blocks(), "euler", steps=4)


def test_field_output_shape_is_checked():
    bad = cd.Blocks([nn.Conv2d(3, 4, 1)])
    with pytest.raises(ValueError, match=r"shape \(1, 4, 2, 2\).*\(1, 3, 2, 2\)"):
        cd.Flow(bad, "euler", steps=1)(torch.zeros(1, 3, 2, 2))


def test_noise_needs_a_stochastic_field():
    with pytest.raises(ValueError, match="no diffusion"):
        cd.Flow(conv_blocks(), "euler_maruyama", steps=3)


def test_leapfrog_needs_a_coupled_field():
    with pytest.raises(TypeError, match="Coupled"):
        cd.Flow(conv_blocks(), "leapfrog", steps=3)
    with pytest.raises(ValueError, match="invertible"):
        cd.Flow(conv_blocks(), "euler", steps=3, reversible=True)


def test_coupled_takes_plain_modules_as_weight_tied_fields():
    torch.manual_seed(0)
    f1, f2 = nn.Linear(2, 2).double(), nn.Linear(2, 2).double()
    flow = cd.Flow(cd.Coupled(f1, f2), "revnet", steps=3, t1=1.5)
    assert sum(p.numel() for p in flow.parameters()) == 12  # both modules registered
    u = torch.randn(5, 4, dtype=torch.float64)
    x, y = u.chunk(2, dim=1)
    for _ in range(3):  # symplectic Euler by hand, h = 0.5, the modules ignoring time
        x = x + 0.5 * f1(y)
        y = y + 0.5 * f2(x)
    torch.testing.assert_close(flow(u), torch.cat([x, y], dim=1))
    with pytest.raises(TypeError, match="Coupled: f2 must be a Field"):
        cd.Coupled(f1, "not a field")


@pytest.mark.parametrize("scheme", ["euler", "lm2", "rk4"])
def test_flows_trace_whole_under_torch_compile(scheme):
    torch.manual_seed(0)
    field = cd.Blocks([nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)) for _ in range(2)])
    flow = cd.Flow(field, scheme, steps=4)
    compiled = torch.compile(flow, backend="eager", fullgraph=True)  # dynamo tracing, no graph break
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(compiled(x), flow(x), atol=1e-6)


def test_lm2_history_seed_vanishes_under_refinement(u0):
    # u_prev is one unit of time back; refined flows must still converge to odeint(flow) from u0
    field = conv_blocks()
    flow = cd.Flow(field, cd.schemes.get("lm2", k=-0.3, learnable=False), steps=3)
    u_prev = u0 + 0.5 * torch.ones_like(u0)
    limit = cd.odeint(flow, u0, rtol=1e-10, atol=1e-12)
    errors = [(flow.refine(steps=3 * s)(u0, u_prev) - limit).abs().max().item() for s in (16, 32, 64)]
    assert errors[2] < errors[1] < errors[0]
    assert errors[0] / errors[2] > 3.0
    # at one step per block the seed is used as given, so the first step is already a two-step one
    direct = flow(u0, u_prev)
    x1 = (1 + 0.3) * u0 - 0.3 * u_prev + field.blocks[0](u0)
    x2 = (1 + 0.3) * x1 - 0.3 * u0 + field.blocks[1](x1)
    x3 = (1 + 0.3) * x2 - 0.3 * x1 + field.blocks[2](x2)
    assert torch.allclose(direct, x3, atol=1e-12)
