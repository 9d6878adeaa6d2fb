"""What a training step costs beyond the network: SGD's foreach update (bit for bit torch's per-parameter loop),
the batched crop in channels_last, and the bookkeeping of the minimal-loop benchmark (``cpu_training.py --vs-loop``)."""

import copy
import importlib
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import contdepth as cd
from contdepth.data import DeviceLoader
from contdepth.data.cifar import Split
from contdepth.train import TrainConfig
from contdepth.train.optim import build_optimizer, param_groups, sgd_options
from contdepth.train.schedule import RecipeFactor
from contdepth.train.trainer import Trainer

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def bench():
    """Imports a benchmark module by name; torch's thread count is restored afterwards."""
    sys.path.insert(0, str(BENCH))
    before = torch.get_num_threads()
    try:
        yield importlib.import_module
    finally:
        torch.set_num_threads(before)
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("nesterov", [False, True])
def test_cpu_sgd_is_foreach_and_the_same_bit_for_bit(nesterov):
    assert sgd_options(torch.device("cpu")) == {"foreach": True}
    torch.manual_seed(0)
    model = cd.models.get("lm_resnet20")  # two groups: the weights decayed, LM's k not
    ours, loop = copy.deepcopy(model), copy.deepcopy(model)
    opts = [
        build_optimizer(ours, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=nesterov),
        torch.optim.SGD(param_groups(loop, 1e-4), lr=0.1, momentum=0.9, nesterov=nesterov, foreach=False),
    ]
    assert opts[0].defaults["foreach"] is True and len(opts[0].param_groups) == 2
    for step in range(4):
        grads = [torch.randn_like(p) for p in model.parameters()]
        for net, opt in zip((ours, loop), opts, strict=True):
            for p, g in zip(net.parameters(), grads, strict=True):
                p.grad = g.clone()
            for group in opt.param_groups:
                group["lr"] = 0.1 * 0.9**step
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), loop.parameters(), strict=True))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pad", [4, 2])
def test_batched_crops_are_the_per_sample_crops_in_the_asked_layout(channels_last, pad):
    g = torch.Generator().manual_seed(3)
    split = Split(torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(24) % 10)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    loader = DeviceLoader(split, 12, train=True, mean=mean, std=std, seed=1, channels_last=channels_last, pad=pad)
    loader.begin_epoch()
    plan = loader._plan
    padded = F.pad(split.images, (pad,) * 4)
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    for b, (x, y) in enumerate(loader.batches()):
        assert x.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        for k in range(12):
            i = 12 * b + k
            j, dy, dx = int(plan.order[i]), int(plan.dy[i]), int(plan.dx[i])
            crop = padded[j, :, dy : dy + 32, dx : dx + 32]
            crop = crop.flip(-1) if plan.flip[i] else crop
            assert torch.allclose(x[k], (crop.float() / 255 - m) / s, atol=1e-5) and int(y[k]) == int(split.labels[j])


def test_minimal_loop_schedule_and_crops_are_contdepths(bench):
    loop = bench("_minimal_loop")
    for epochs in (3, 10, 160):
        factor = RecipeFactor(5, epochs, milestones=TrainConfig(epochs=epochs).milestones)
        assert [loop.lr_at(e, epochs) for e in range(1, epochs + 1)] == pytest.approx(
            [0.1 * factor(5 * (e - 1)) for e in range(1, epochs + 1)]
        )
    padded = F.pad(torch.arange(2 * 3 * 32 * 32).view(2, 3, 32, 32).to(torch.uint8), (4,) * 4)
    out = loop.crop_flip(padded, [1, 0], [[0, 8], [3, 2]], [False, True])
    assert torch.equal(out[0], padded[1, :, 0:32, 8:40]) and torch.equal(out[1], padded[0, :, 3:35, 2:34].flip(2))


def test_minimal_loop_times_the_epochs_after_the_first(bench, fake_cifar10, monkeypatch):
    loop = bench("_minimal_loop")
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: module)  # eager: the bookkeeping is the test
    got = loop.train("resnet20", str(fake_cifar10), subset=32, epochs=3, batch_size=16)
    assert got["steps"] == 4 and got["timed_epochs"] == 2 and len(got["epoch_seconds"]) == 3
    for split in (got["ms_per_step"], got["cpu_ms_per_step"]):
        parts = [split[k] for k in ("data", "forward_backward", "optimiser", "bookkeeping")]
        assert all(v >= 0 for v in parts[:3]) and split["total"] == pytest.approx(sum(parts))
    assert got["images_per_s"] > 0 and got["images_per_cpu_s"] > 0


def test_phase_timer_splits_contdepth_train_and_unwraps(bench, fake_cifar10, tmp_path, capsys):
    timer = bench("_phase_timer")
    step, batches = Trainer._train_step, DeviceLoader.batches
    argv = ["train", "--model", "resnet20", "--epochs", "2", "--batch-size", "16", "--subset", "32"]
    argv += ["--test-subset", "32", "--device", "cpu", "--no-progress", "--data-dir", str(fake_cifar10)]
    assert timer.main([str(tmp_path / "profile.json"), *argv, "--out", str(tmp_path / "run")]) == 0
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert profile["steps"] == 2 and [e["images"] for e in profile["epochs"]] == [32]  # epoch 2 alone
    split = profile["ms_per_step"]
    assert split["forward_backward"] > 0 and split["optimiser"] > 0 and split["data"] > 0
    assert split["bookkeeping"] >= split["bookkeeping_meter"] > 0
    assert Trainer._train_step is step and DeviceLoader.batches is batches  # the classes are as they were
    assert "optimiser" in bench("cpu_training").loop_tables(
        {
            "ratios": [{"amp": "none", "wall": 1.0, "cpu": 1.0, "wall_reps": [1.0], "cpu_reps": [1.0]}],
            "rows": [
                {
                    "loop": "minimal",
                    "amp": "none",
                    "images_per_s": 1.0,
                    "images_per_cpu_s": 1.0,
                    "compile_seconds": 0.0,
                    "ms_per_step": split,
                    "cpu_ms_per_step": profile["cpu_ms_per_step"],
                }
            ],
        }
    )
