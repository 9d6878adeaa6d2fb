"""--amp auto: bf16 autocast exactly where the CPU has bf16 units, float32 elsewhere; the loss in float32."""

import json

import pytest
import torch

from contdepth.cli import main
from contdepth.train import amp as amp_module
from contdepth.train.amp import autocast, cpu_has_bf16_units, resolve_amp

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def capabilities(monkeypatch):
    """Set what ``torch.cpu.get_capabilities()`` reports, for this test only."""

    def set_to(caps: dict) -> None:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))
        cpu_has_bf16_units.cache_clear()

    yield set_to
    cpu_has_bf16_units.cache_clear()


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ({"avx512_bf16": True}, "bf16"),
        ({"amx_tile": True}, "bf16"),
        ({"avx2": True, "avx512_bf16": False, "amx_tile": False}, "none"),
        ({}, "none"),
    ],
)
def test_auto_picks_bf16_only_with_bf16_units(capabilities, caps, expected):
    capabilities(caps)
    assert resolve_amp("auto", "cpu") == expected
    assert resolve_amp("auto", torch.device("cuda")) == "none"  # on CUDA nothing is chosen for the user
    assert resolve_amp("none", "cpu") == "none" and resolve_amp("bf16", "cpu") == "bf16"  # forced modes stay


def test_bad_modes_are_refused_in_one_line():
    with pytest.raises(ValueError, match="choose one of: auto, none, bf16"):
        resolve_amp("fp8", "cpu")
    with pytest.raises(ValueError, match="resolved mode"):
        autocast("auto", torch.device("cpu"))


@pytest.mark.parametrize(("caps", "expected"), [({"avx512_bf16": True}, "bf16"), ({}, "none")])
def test_a_run_records_the_mode_it_trained_in(capabilities, caps, expected, fake_cifar10, tmp_path, capsys):
    capabilities(caps)
    out = tmp_path / "run"
    argv = ["train", "--model", "resnet20", "--epochs", "1", "--batch-size", "16", "--subset", "32"]
    argv += ["--test-subset", "32", "--device", "cpu", "--no-progress", "--data-dir", str(fake_cifar10)]
    assert main([*argv, "--out", str(out)]) == 0
    session = json.loads((out / "results.json").read_text())["provenance"]
    assert (session["amp"], session["amp_requested"]) == (expected, "auto")
    assert ("in bf16 autocast" in capsys.readouterr().out) == (expected == "bf16")


def test_under_autocast_the_loss_and_statistics_stay_float32():
    from contdepth import models

    net = models.get("lm_resnet20").train()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    with autocast("bf16", torch.device("cpu")):
        logits = net(x)
    assert logits.dtype == torch.bfloat16
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    loss.backward()
    assert loss.dtype == torch.float32
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.running_mean.dtype == torch.float32 and bn.running_var.dtype == torch.float32
    ks = [p for n, p in net.named_parameters() if "scheme" in n]
    assert ks and all(k.dtype == torch.float32 and k.grad is not None for k in ks)  # LM's k


def test_noise_is_drawn_in_float32_for_bf16_states():
    from contdepth.noise import Gaussian, Uniform

    like = torch.zeros(3, dtype=torch.bfloat16)
    for law in (Gaussian(), Uniform()):
        torch.manual_seed(0)
        low = law.sample((1000,), like)
        torch.manual_seed(0)
        full = law.sample((1000,), like.float())
        assert low.dtype == torch.bfloat16 and torch.equal(low, full.to(torch.bfloat16))


assert amp_module.AMP_CHOICES == ("auto", "none", "bf16")
