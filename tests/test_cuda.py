"""The GPU tier: `pytest -m cuda` on a machine with a CUDA device (every test here skips without one).

Tiny inputs throughout, so the tier runs in a few minutes; most of it is the three compiles.
Test ids name the compile mode and precision, so a failure says which mode not to train in.
"""

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import contdepth as cd
from contdepth.data import DeviceLoader, load_cifar, write_fake_cifar
from contdepth.models.cifar import resnet

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

REPO = Path(__file__).resolve().parents[1]
SUBPROCESS_TIMEOUT_S = 240

# the smallest named model of every family, plus the noises the paper's tables train with
FAMILIES = [
    ("resnet20", None),
    ("preact_resnet20", None),
    ("lm_resnet20", None),
    ("shake_resnet26_2x32d", None),
    ("resnext29_8x64d", None),
    ("lm_resnext29_8x64d", None),
    ("resnet50", None),
    ("lm_resnet50", None),
    ("preact_resnet20", "sd:0.8"),
    ("lm_resnet20", "gaussian:0.001"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", train=2048, test=500)
    return root


def _input(name: str, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor, int]:
    classes = cd.models.describe(name)["num_classes"]
    size = 128 if classes == 1000 else 32  # an ImageNet net keeps a 4x4 map at the end
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen)
    return x.cuda(), y.cuda(), classes


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().float().clone() for p in model.parameters() if p.grad is not None]


def _close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    """Max |a - b| within ``rel`` of b's scale (max |b|), and the two point the same way."""
    a, b = a.float().flatten(), b.float().flatten()
    scale = b.abs().max().clamp_min(1e-6)
    cos = F.cosine_similarity(a, b, dim=0)
    return bool((a - b).abs().max() <= rel * scale) and bool(cos > 1 - rel)


@pytest.mark.parametrize("name, noise", FAMILIES, ids=[f"{m}-{n or 'plain'}" for m, n in FAMILIES])
def test_every_family_forward_backward_fp32_and_bf16_channels_last(name, noise):
    x, y, classes = _input(name)
    torch.manual_seed(0)
    model = cd.models.get(name, noise=noise, num_classes=classes).cuda().train()
    results = {}
    for precision in ("fp32", "bf16+cl"):
        net = copy.deepcopy(model)
        inp = x
        if precision == "bf16+cl":
            net = net.to(memory_format=torch.channels_last)
            inp = x.contiguous(memory_format=torch.channels_last)
        torch.manual_seed(1)  # the same noise draws in both precisions
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision != "fp32"):
            logits = net(inp)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        assert logits.shape == (x.shape[0], classes) and logits.device.type == "cuda"
        assert logits.dtype == (torch.float32 if precision == "fp32" else torch.bfloat16)
        grads = _grads(net)
        assert len(grads) == sum(1 for p in net.parameters() if p.requires_grad), "a parameter got no gradient"
        assert torch.isfinite(logits).all() and all(torch.isfinite(g).all() for g in grads)
        results[precision] = logits.float()
    if noise is None and name != "shake_resnet26_2x32d":  # noise-free: both precisions compute the same map
        low, high = results["bf16+cl"].flatten(), results["fp32"].flatten()
        if classes == 1000:  # 50 layers at initialisation amplify bf16 rounding: the logits still agree in direction
            assert F.cosine_similarity(low, high, dim=0) > 0.95
        else:
            assert _close(low, high, rel=0.1), (low, high)


# small depths (LM-ResNet-14 still has a k per stage) keep the compiles short; ids name mode and precision
SMALL = {"lm_resnet14": lambda: resnet(14, scheme="lm2", preact=True), "resnet8": lambda: resnet(8, preact=False)}
COMPILED = [
    ("lm_resnet14", "default", "fp32"),
    ("resnet8", "reduce-overhead", "fp32"),
    ("lm_resnet14", "reduce-overhead", "bf16+cl"),
]


@pytest.mark.parametrize("name, mode, precision", COMPILED, ids=["-".join(c) for c in COMPILED])
def test_compiled_training_step_matches_eager(name, mode, precision):
    """Logits and gradients of three training steps (and one eval forward) agree with eager mode.

    Gradients are compared on the scale of the largest one: BatchNorm's backward over a batch of 16
    amplifies rounding, so that in float32 eager and compiled each differ from a float64 reference
    by up to ~3e-3 of it (measured on CPU, where either may be the closer one).
    """
    torch._dynamo.reset()
    bf16 = precision == "bf16+cl"
    rel, grad_rel = (0.05, 0.1) if bf16 else (1e-3, 1e-2)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here: TF32 convolutions differ at 1e-3
    try:
        x, y, _ = _input("resnet20", batch=16)
        torch.manual_seed(0)
        eager = SMALL[name]().cuda()
        if bf16:
            eager = eager.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        model = copy.deepcopy(eager)
        compiled = torch.compile(model, mode=mode)
        for step in range(3):
            outs = {}
            for key, net, owner in (("eager", eager, eager), ("compiled", compiled, model)):
                owner.zero_grad(set_to_none=True)
                owner.train()
                if key == "compiled":
                    torch.compiler.cudagraph_mark_step_begin()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                    logits = net(x)
                    loss = F.cross_entropy(logits, y)
                loss.backward()
                outs[key] = (logits.detach().float().clone(), _grads(owner))
            (le, ge), (lc, gc) = outs["eager"], outs["compiled"]
            assert _close(lc, le, rel), f"step {step}: logits differ by {(lc - le).abs().max():.3g}"
            assert len(ge) == len(gc)
            worst = max((a - b).abs().max().item() for a, b in zip(gc, ge, strict=True))
            assert _close(torch.cat([g.flatten() for g in gc]), torch.cat([g.flatten() for g in ge]), grad_rel), (
                f"step {step}: gradients differ by {worst:.3g}"
            )
        eager.eval()
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            torch.compiler.cudagraph_mark_step_begin()
            assert _close(compiled(x).float().clone(), eager(x).float(), rel)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
        torch._dynamo.reset()


def _epoch_batches(split, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = DeviceLoader(split, 64, train=True, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), device="cuda", seed=seed)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_device_loader_crops_and_flips_batched_seeded_reproducible(data_dir):
    split = load_cifar("cifar10", data_dir).train.head(256)
    first, again, other = _epoch_batches(split, 3), _epoch_batches(split, 3), _epoch_batches(split, 4)
    assert first[0][0].device.type == "cuda" and len(first) == 4
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])
    # every image of a batch is its source image padded by 4, cropped at (dy, dx) and mirrored where drawn
    loader = DeviceLoader(split, 64, train=True, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), device="cuda", seed=3)
    loader.begin_epoch()
    plan = loader._plan
    assert plan.order.device.type == "cuda" and plan.dy.unique().numel() > 1 and 0 < plan.flip.sum() < len(split)
    x, y = next(loader.batches())
    padded = F.pad(split.images[plan.order[:64].cpu()], (4, 4, 4, 4))
    for i in range(64):
        dy, dx = int(plan.dy[i]), int(plan.dx[i])
        crop = padded[i, :, dy : dy + 32, dx : dx + 32]
        if plan.flip[i]:
            crop = crop.flip(-1)
        expected = (crop.float() / 255 - 0.5) / 0.25
        torch.testing.assert_close(x[i].cpu(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(y.cpu(), split.labels[plan.order[:64].cpu()])


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw
    )
    try:
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {SUBPROCESS_TIMEOUT_S} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out)


def test_one_epoch_of_2048_images_in_the_fastest_mode(data_dir, tmp_path):
    """The mode a wave trains in: CUDA graphs (reduce-overhead), bf16 autocast, channels_last."""
    out = tmp_path / "run"
    proc = _run(
        [
            sys.executable,
            "-m",
            "contdepth",
            "train",
            "--model",
            "resnet20",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--test-subset",
            "500",
            "--device",
            "cuda",
            "--amp",
            "bf16",
            "--channels-last",
            "--compile-mode",
            "reduce-overhead",
            "--no-progress",
        ]
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["train_images"] == 2048 and res["test_images"] == 500
    assert 0 <= res["final_test_error"] <= 100 and res["final_train_loss"] == res["final_train_loss"]
    assert torch.cuda.get_device_name() in res["provenance"]["device"]


def test_reproduce_two_tiny_runs_two_jobs(data_dir, tmp_path):
    out = tmp_path / "study"
    proc = _run(
        [
            sys.executable,
            "-m",
            "contdepth",
            "reproduce",
            "lu2018-cifar10",
            "--out",
            str(out),
            "--only",
            "resnet20,lm_resnet20",
            "--jobs",
            "2",
            "--",
            "--epochs",
            "1",
            "--subset",
            "256",
            "--test-subset",
            "500",
            "--device",
            "cuda",
            "--data-dir",
            str(data_dir),
        ]
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    results = sorted(out.glob("*/results.json"))
    assert [p.parent.name for p in results] == ["lm_resnet20-s0", "resnet20-s0"], proc.stdout[-4000:]
    for path in results:
        res = json.loads(path.read_text())
        assert res["complete"] and torch.cuda.get_device_name() in res["provenance"]["device"]


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.device_count() > 1, reason="needs exactly one GPU")
def test_two_ddp_processes_on_one_gpu_are_refused(data_dir, tmp_path):
    proc = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "contdepth",
            "train",
            "--model",
            "resnet20",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "ddp"),
            "--epochs",
            "1",
            "--subset",
            "256",
            "--device",
            "cuda",
            "--no-progress",
        ]
    )
    assert proc.returncode != 0
    assert "contdepth train: error: 2 processes were started on this host but torch sees 1 CUDA device" in proc.stdout
    assert not (tmp_path / "ddp" / "checkpoint.pt").exists()
