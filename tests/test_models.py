"""Model zoo: every named model runs, parameter counts match the papers, LM / noise / refinement wiring."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from torch import nn

import contdepth as cd
from contdepth.models.blocks import PreActBranch

# the zoo as the papers define it; the tests below run over the registry, so a new model is tested too
CIFAR_NAMES = (
    [f"resnet{d}" for d in (20, 32, 44, 56, 110, 1202)]
    + [f"preact_resnet{d}" for d in (20, 32, 44, 56, 110, 164, 1202)]
    + ["resnet164"]
    + [f"lm_resnet{d}" for d in (20, 32, 44, 56, 110, 164)]
    + ["shake_resnet20_2x16d"]
    + [f"shake_resnet26_2x{w}d" for w in (32, 64, 96)]
    + ["resnext29_8x64d", "resnext29_16x64d", "lm_resnext29_8x64d", "lm_resnext29_16x64d"]
)
IMAGENET_NAMES = ["resnet50", "resnet101", "lm_resnet50", "lm_resnet101"]
REGISTERED = cd.models.available()
SMALL_INPUT = ("1202", "resnext", "2x96d")  # run at 8x8 (adaptive pooling) to keep the suite fast on a CPU
# widest nets: shapes and gradient wiring on the meta device; their 8x64d twins run for real
ON_META = ("resnext29_16x64d", "lm_resnext29_16x64d")

# published parameter counts (M); ImageNet at 1000 classes, the rest at 10
PUBLISHED = {
    "resnet20": 0.27,
    "resnet56": 0.85,
    "resnet110": 1.7,
    "preact_resnet164": 1.7,
    "resnet164": 1.7,
    "lm_resnet20": 0.27,
    "lm_resnet56": 0.85,
    "lm_resnet110": 1.7,
    "lm_resnet164": 1.7,
    "resnext29_8x64d": 34.4,
    "resnext29_16x64d": 68.1,
    "shake_resnet26_2x32d": 2.9,
    "shake_resnet26_2x96d": 26.2,
    "resnet50": 25.6,
    "resnet101": 44.5,
    "lm_resnet50": 25.6,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def all_branches(model: nn.Module) -> list[nn.Module]:
    """Residual branches in network order (transition branch first in each stage)."""
    out = []
    for stage in model.stages:
        out.append(stage.transition.field.blocks[0])
        if stage.flow is not None:
            out.extend(stage.flow.field.blocks)
    return out


def scale_branch(branch: nn.Module, factor: float) -> None:
    """Multiply a pre-activation basic branch body's output by ``factor`` (its last conv's weights)."""
    last = branch.body.conv2 if isinstance(branch, PreActBranch) else branch.conv2
    assert isinstance(last, nn.Conv2d)
    with torch.no_grad():
        last.weight.mul_(factor)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# --------------------------------------------------------------------------------------- names
def test_available_has_every_name():
    names = cd.models.available()
    assert set(CIFAR_NAMES + IMAGENET_NAMES) <= set(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", REGISTERED)
def test_forward_backward(name):
    torch.manual_seed(0)
    imagenet = cd.models.describe(name).get("dataset") == "imagenet" or name in IMAGENET_NAMES
    size = 64 if imagenet else (8 if any(h in name for h in SMALL_INPUT) else 32)
    with torch.device("meta" if name in ON_META else "cpu"):
        model = cd.models.get(name, num_classes=7).train()
        out = model(images(2, size).to(torch.get_default_device()))
        assert out.shape == (2, 7)
        out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    if name not in ON_META:
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.flows() and all(isinstance(f, cd.Flow) for f in model.flows())


def test_imagenet_accepts_small_inputs():
    model = cd.models.get("lm_resnet50", num_classes=1000).eval()
    with torch.no_grad():
        assert model(images(1, 32)).shape == (1, 1000)


# ------------------------------------------------------------------------------------- params
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts(name):
    info = cd.models.describe(name)
    assert abs(info["params"] / 1e6 - PUBLISHED[name]) <= 0.02 * PUBLISHED[name], info


@pytest.mark.parametrize("name", REGISTERED)
def test_every_registered_model_is_described_and_counted(name):
    info = cd.models.describe(name)
    assert set(info) >= {"name", "depth", "params", "scheme", "family"}
    with torch.device("meta"):
        model = cd.models.get(name)
    assert info["params"] == sum(p.numel() for p in model.parameters()) > 0


def test_lm_adds_only_k_and_meta_count_is_real():
    plain, lm = cd.models.get("preact_resnet56"), cd.models.get("lm_resnet56")

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert count(plain) == cd.models.describe("preact_resnet56")["params"]
    assert count(lm) - count(plain) == 3 * (9 - 1)  # one k per flow block; transitions are Euler steps
    assert cd.models.describe("lm_resnet56")["scheme"] == "lm2"


# ----------------------------------------------------------------------------------------- LM
def test_lm_with_k_zero_equals_euler():
    torch.manual_seed(1)
    lm = cd.models.get("lm_resnet20", scheme_options={"k": 0.0, "learnable": False})
    euler = cd.models.get("preact_resnet20")
    missing, _ = euler.load_state_dict(lm.state_dict(), strict=False)
    assert not missing
    x = images()
    for mode in (True, False):
        lm.train(mode), euler.train(mode)
        torch.testing.assert_close(lm(x), euler(x), rtol=1e-5, atol=1e-6)


def test_lm_history_starts_from_projection():
    """Stage 2 of an LM net: x1 = P a + F(a), then x_{n+1} = (1-k) x_n + k x_{n-1} + F(x_n), x_0 = P a."""
    torch.manual_seed(2)
    model = cd.models.get("lm_resnet32", scheme_options={"k": -0.3, "learnable": False}).eval()
    stage = model.stages[1]
    x0 = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        x, prev = stage.transition(x0)
        for block in stage.flow.field.blocks:
            x, prev = 1.3 * x - 0.3 * prev + block(x), x
        torch.testing.assert_close(stage(x0), x)


def test_gradients_reach_every_k():
    torch.manual_seed(3)
    model = cd.models.get("lm_resnet20").train()
    model(images()).logsumexp(1).sum().backward()
    ks = [f.scheme.k for f in model.flows()]
    assert len(ks) == 3 and all(k.numel() == 2 for k in ks)
    for k in ks:
        assert k.grad is not None and (k.grad != 0).all()
        assert ((-0.1 <= k) & (k <= 0)).all()


# -------------------------------------------------------------------------------------- noise
def test_stochastic_depth_eval_is_mean_and_train_is_random():
    torch.manual_seed(4)
    sd = cd.models.resnet(20, noise="sd:0.5")
    plain = cd.models.resnet(20)
    plain.load_state_dict(sd.state_dict())
    branches = all_branches(plain)
    total = len(branches)
    assert total == 9
    for block, branch in enumerate(branches, start=1):
        scale_branch(branch, 1 - block / total * 0.5)  # Huang et al.: p_l = 1 - l/L (1 - p_L)
    x = images()
    sd.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(sd(x), plain(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sd(x), sd(x))
        sd.train()
        assert not torch.allclose(sd(x), sd(x))
    assert all(f.scheme.name == "euler" and f.noise is not None for f in sd.flows())  # euler with noise is EM
    assert sd.flows()[-1].noise.law.p[-1] == pytest.approx(0.5)


def test_stochastic_depth_train_keeps_or_drops_whole_blocks():
    """At p_L -> tiny every flow block is dropped (η = 0) or kept (η = 1): outputs take few values."""
    torch.manual_seed(5)
    model = cd.models.resnet(8, noise="sd:0.5")  # one block per stage: transitions only
    stage = model.stages[0]
    a = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        keep = stage.transition.field.blocks[0](a)
        seen = set()
        for _ in range(40):
            out, _ = stage.transition(a)
            eta = float(((out - a) * keep).sum() / keep.square().sum())
            assert min(abs(eta), abs(eta - 1)) < 1e-5
            seen.add(round(eta))
    assert seen == {0, 1}


def test_gaussian_noise_and_steps_per_block():
    torch.manual_seed(6)
    noisy = cd.models.get("lm_resnet20", noise="gaussian:0.1", steps_per_block=2)
    assert [f.steps for f in noisy.flows()] == [4, 4, 4] and all(f.h == 0.5 for f in noisy.flows())
    x = images()
    with torch.no_grad():
        noisy.train()
        assert not torch.allclose(noisy(x), noisy(x))
        clean = cd.models.get("lm_resnet20", noise="none", steps_per_block=2)
        clean.load_state_dict(noisy.state_dict())  # after the train-mode calls: same BN statistics
        noisy.eval(), clean.eval()
        torch.testing.assert_close(noisy(x), clean(x))


@pytest.mark.parametrize("noise", ["shake", "shake:same"])
def test_shake_shake_eval_is_branch_mean(noise):
    torch.manual_seed(7)
    shake = cd.models.get("shake_resnet20_2x16d", noise=noise).train()
    mean = cd.models.get("shake_resnet20_2x16d", noise="none").train()
    x = images()
    with torch.no_grad():
        assert not torch.allclose(shake(x), shake(x))
        torch.testing.assert_close(mean(x), mean(x))
        mean.load_state_dict(shake.state_dict())
        shake.eval(), mean.eval()
        torch.testing.assert_close(shake(x), mean(x))


def test_small_shake_shake_net_trains_a_step():
    torch.manual_seed(0)
    model = cd.models.get("shake_resnet20_2x16d").train()
    assert cd.models.describe("shake_resnet20_2x16d")["depth"] == 20
    assert [s.flow.field.blocks[0].branch1[1].out_channels for s in model.stages] == [16, 32, 64]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = images(2), torch.tensor([3, 5])
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True) if a.dim() > 1)


# ------------------------------------------------------------------------------ rediscretise
def test_rediscretise_converges_and_restores():
    torch.manual_seed(8)
    model = cd.models.get("preact_resnet20").eval()
    x = images()
    with torch.no_grad():
        base = model(x)
        limit = model.rediscretise("rk4", steps_per_block=4)(x)
        errors = [rel(model.rediscretise("euler", s)(x), limit) for s in (1, 2, 4)]
        assert errors[0] > errors[1] > errors[2]  # Euler converges to the limit as h = 1/s -> 0
        assert rel(model.rediscretise("rk4", 1)(x), limit) < 0.1
        assert [f.steps for f in model.flows()] == [2, 2, 2] and model.scheme == "rk4"
        torch.testing.assert_close(model.rediscretise("euler", 1)(x), base)
        assert all(f is s.flow for f, s in zip(model.flows(), model.stages, strict=True))


def test_rediscretise_small_field_stays_close():
    """A freshly initialised pre-act net whose branches are small is a smooth, slowly varying
    field: a finer Euler grid and rk4 give nearly the same output as the net itself."""
    torch.manual_seed(9)
    model = cd.models.get("preact_resnet20").eval()
    for branch in all_branches(model):
        scale_branch(branch, 0.1)
    x = images()
    with torch.no_grad():
        base = model(x)
        assert rel(model.rediscretise("euler", 2)(x), base) < 0.05
        assert rel(model.rediscretise("rk4", 1)(x), base) < 0.05


def test_rediscretise_lm_uses_continuous_limit_and_keeps_k():
    torch.manual_seed(10)
    model = cd.models.get("lm_resnet20", scheme_options={"k": 0.0, "learnable": True}).eval()
    keys = set(model.state_dict())
    x = images()
    with torch.no_grad():
        base = model(x)
        # with k = 0 the LM limit u' = f/(1+k) is u' = f: euler at s=1 reproduces the net
        torch.testing.assert_close(model.rediscretise("euler")(x), base, rtol=1e-5, atol=1e-6)
        assert all(isinstance(f.field, cd.schemes.LMLimit) for f in model.flows())
        model.rediscretise("rk4", 2)(x)
    assert set(model.state_dict()) == keys
    assert sum(p.numel() for p in model.parameters()) == cd.models.describe("lm_resnet20")["params"]
    model.rediscretise("lm2", 1)
    assert all(f is s.flow for f, s in zip(model.flows(), model.stages, strict=True))


def test_rediscretise_noisy_model_and_train_mode():
    torch.manual_seed(11)
    model = cd.models.resnet(20, noise="sd:0.8").rediscretise("euler", 2)
    assert all(f.scheme.name == "euler" and f.noise is not None for f in model.flows())
    x = images()
    model.train()
    assert all(f.training for f in model.flows())
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x))
        model.eval()
        assert not any(f.training for f in model.flows())
        torch.testing.assert_close(model(x), model(x))
        model.rediscretise("rk4")(x)


def test_rediscretise_resnet_to_lm_starts_at_k_zero():
    torch.manual_seed(12)
    model = cd.models.get("preact_resnet20").eval()
    x = images()
    with torch.no_grad():
        base = model(x)
        torch.testing.assert_close(model.rediscretise("lm2")(x), base)
    assert any(n.startswith("stages.0.rescheme") for n, _ in model.named_parameters())


# ------------------------------------------------------------------------------------- errors
def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="lm_resnet56") as err:
        cd.models.get("resnet21")
    assert "resnext29_8x64d" in str(err.value)
    with pytest.raises(ValueError, match="available"):
        cd.models.describe("vgg16")


@pytest.mark.parametrize("spec", ["dropout:0.5", "sd", "sd:1.5", "gaussian:-1", "sd:x", "shake:1"])
def test_bad_noise_spec_lists_choices(spec):
    with pytest.raises(ValueError, match="choices: None or 'none'.*'sd:P'.*'gaussian:SIGMA'"):
        cd.models.get("resnet20", noise=spec)


def test_scheme_without_noise_support_names_alternatives():
    with pytest.raises(ValueError, match="euler_maruyama.*lm2|lm2.*euler_maruyama"):
        cd.models.get("resnet20", scheme="rk4", noise="sd:0.5")
    with pytest.raises(ValueError, match="noise='none'"):
        cd.models.get("shake_resnet26_2x32d", scheme="rk4")
    assert cd.models.get("shake_resnet26_2x32d", scheme="rk4", noise="none").flows()[0].scheme.name == "rk4"


def test_noise_kinds_match_models():
    with pytest.raises(ValueError, match="shake-shake"):
        cd.models.get("resnet20", noise="shake")
    with pytest.raises(ValueError, match="shake"):
        cd.models.get("shake_resnet26_2x32d", noise="sd:0.5")


def test_bad_depth_and_steps():
    with pytest.raises(ValueError, match="6n\\+2"):
        cd.models.resnet(21)
    assert cd.models.resnet(29).stages[0].flow.field.blocks[0].__class__.__name__ == "PreActBottleneckBranch"
    with pytest.raises(ValueError, match="steps_per_block"):
        cd.models.resnet(20, steps_per_block=0)


# ------------------------------------------------------------------------------------ command
def test_models_command_table_and_json(capsys, monkeypatch):
    from contdepth.cli import models as command

    names = ["resnet20", "lm_resnet56", "shake_resnet20_2x16d", "lm_resnext29_8x64d", "resnet50"]
    monkeypatch.setattr(command, "available", lambda: names)  # the full listing builds 32 nets
    parser = argparse.ArgumentParser()
    command.configure(parser)
    assert command.run(parser.parse_args([])) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in names) and "lm2" in out
    assert "269,722" in out and "25,557,032" in out  # exact counts, as the README quotes them
    assert "541,370" in out  # shake_resnet20_2x16d
    assert command.run(parser.parse_args(["--json"])) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == names and rows[-1]["num_classes"] == 1000


def _classes(model: torch.nn.Module) -> int:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].out_features


def test_imagenet_models_default_to_1000_classes():
    with torch.device("meta"):  # shapes only
        built = {name: _classes(cd.models.get(name)) for name in ("resnet50", "lm_resnet101", "resnet20")}
        assert built == {name: cd.models.describe(name)["num_classes"] for name in built}
        assert built == {"resnet50": 1000, "lm_resnet101": 1000, "resnet20": 10}
        assert _classes(cd.models.get("resnet50", num_classes=10)) == 10
