"""Depth as a dial: weights continuous in depth, knots refined and compressed, BatchNorm recalibration,
step-count recipes (multi-resolution and refinement) that resume exactly, and their bad values."""

import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import contdepth as cd
from contdepth.cli import main
from contdepth.fields import Interpolated, projection_matrix
from contdepth.models import recalibrate_bn
from contdepth.models.blocks import PreActBasicBranch
from contdepth.runs.records import read_metrics
from contdepth.train import TrainConfig, Trainer
from contdepth.train.stepping import train_steps_at

pytestmark = pytest.mark.usefixtures("one_thread")
TIMING = ("seconds", "images_per_s", "compile_seconds", "session")


def _branches(n: int, c: int = 4, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    mods = [PreActBasicBranch(c, c) for _ in range(n)]
    for m in mods:
        for p in m.parameters():
            nn.init.normal_(p, std=0.3)
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
    return mods


@pytest.mark.parametrize("train", [False, True])
def test_linear_field_equals_the_blockwise_net_at_its_knots(train):
    mods = _branches(3)
    x = torch.randn(2, 4, 5, 5)
    blockwise = cd.Flow(cd.Blocks(mods), "euler", steps=3).train(train)
    linear = cd.Flow(Interpolated(mods), "euler", steps=3).train(train)
    assert torch.equal(blockwise(x), linear(x))
    assert sorted(cd.Blocks(mods).state_dict()) == sorted(Interpolated(mods).state_dict())


def test_between_knots_the_weights_are_interpolated_and_the_last_knot_is_held():
    field = Interpolated(_branches(2))
    w0, w1 = (dict(m.named_parameters()) for m in field.blocks)
    mid = field.weights_at(0.25)
    assert torch.allclose(mid["body.conv1.weight"], 0.75 * w0["body.conv1.weight"] + 0.25 * w1["body.conv1.weight"])
    assert torch.equal(field.weights_at(1.7)["body.conv1.weight"], w1["body.conv1.weight"])
    assert field.locate(1.0) == (1, 0.0) and field.knot_times == (0.0, 1.0)


def test_refine_then_compress_returns_the_weights_and_compressing_to_one_knot_averages():
    field = Interpolated(_branches(3))
    back = field.with_knots(6).with_knots(3)
    for a, b in zip(field.state_dict().values(), back.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    fine = field.with_knots(6)
    for t in (0.0, 0.4, 1.5, 2.6):  # refinement is exact: the same function of t
        for name, value in field.weights_at(t).items():
            assert torch.allclose(value.float(), fine.weights_at(t)[name].float(), atol=1e-5)
    # one knot: the L2 projection of the piecewise-linear path onto constants, the time average
    weights = projection_matrix(3, 1, 3.0)[0]
    assert torch.allclose(weights, torch.tensor([1 / 6, 1 / 3, 1 / 2], dtype=torch.float64), atol=1e-3)


def test_a_depth_continuous_net_compresses_to_half_a_step_per_block():
    net = cd.models.get("preact_resnet20", depth_basis="linear").eval()
    x = torch.randn(2, 3, 32, 32)
    before = net(x)
    net.reknot(2).rediscretise(steps_per_block=2)  # refined knots at twice the steps: the same net, finer
    net.reknot(0.5).rediscretise(steps_per_block=0.5)
    assert net(x).shape == before.shape and net.steps_per_block == 0.5
    blockwise = cd.models.get("preact_resnet20")
    with pytest.raises(ValueError, match="depth_basis='linear'"):
        blockwise.reknot(2)
    with pytest.raises(ValueError, match="whole number of steps"):
        blockwise.rediscretise(steps_per_block=0.3)


def test_step_and_knot_counts_too_large_to_build_fail_at_once_in_one_line():
    from contdepth.fields import MAX_KNOTS
    from contdepth.flow import MAX_STEPS

    net = cd.models.get("preact_resnet20", depth_basis="linear")
    with pytest.raises(ValueError, match=f"more than the {MAX_STEPS} a flow may take; .* cd.odeint$"):
        net.rediscretise(steps_per_block=10**9)
    with pytest.raises(ValueError, match=f"more than the {MAX_KNOTS} a field may hold"):
        net.reknot(1e9)
    field = cd.Blocks([torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match=f"steps must be at most {MAX_STEPS}, got {MAX_STEPS + 1}"):
        cd.Flow(field, steps=MAX_STEPS + 1)
    assert net.steps_per_block == 1  # a refused request leaves the net as it was


def _tiny_net() -> cd.models.ResidualNet:
    torch.manual_seed(1)
    return cd.models.resnet(8, num_classes=4)


def test_recalibration_restores_the_training_time_accuracy_of_a_tiny_net():
    net = _tiny_net()
    torch.manual_seed(2)
    images = [torch.randn(64, 3, 16, 16) * 2 + 1 for _ in range(4)]
    net.train()
    for bn in net.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.momentum = None  # the training-time statistics: exact averages over the images
    with torch.no_grad():
        for x in images:
            net(x)
    net.eval()
    with torch.no_grad():
        labels = [net(x).argmax(1) for x in images]  # the trained net is right on every image

    def accuracy() -> float:
        with torch.no_grad():
            return float(torch.cat([net(x).argmax(1) == y for x, y in zip(images, labels, strict=True)]).float().mean())

    for bn in net.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.reset_running_stats()  # statistics of another discretisation, say: wrong here
    assert accuracy() < 0.9
    assert recalibrate_bn(net, images, per_step=False) == 256
    assert accuracy() == 1.0
    assert recalibrate_bn(net, images, per_step=True) == 256  # one step per block: the same statistics
    assert accuracy() == 1.0 and not net.training


def test_per_step_statistics_belong_to_each_evaluation():
    torch.manual_seed(1)
    net = cd.models.resnet(14, num_classes=4).rediscretise(steps_per_block=4)
    images = [torch.randn(32, 3, 16, 16) for _ in range(2)]
    recalibrate_bn(net, images, per_step=True)
    tables = [len(flow.field.step_buffers or ()) for flow in net.flows()]
    assert tables == [4, 4, 4]  # one block per flow at depth 14: four evaluations each
    with pytest.raises(ValueError, match="no images"):
        recalibrate_bn(net, [], per_step=True)


def test_step_draws_are_a_function_of_seed_epoch_and_batch():
    draws = [train_steps_at(1, [1, 2, 4], None, 0, 1, b) for b in range(60)]
    assert set(draws) == {1, 2, 4}
    assert draws == [train_steps_at(1, [1, 2, 4], None, 0, 1, b) for b in range(60)]
    assert draws != [train_steps_at(1, [1, 2, 4], None, 1, 1, b) for b in range(60)]
    assert [train_steps_at(1, None, [2, 4], 0, e, 0) for e in range(1, 7)] == [1, 1, 2, 2, 4, 4]


SMALL = ["--model", "preact_resnet20", "--epochs", "2", "--batch-size", "8", "--subset", "32", "--test-subset", "32"]
SMALL += ["--device", "cpu", "--no-progress", "--amp", "none", "--depth-basis", "linear", "--train-steps", "1,2"]


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_random_step_training_resumes_exactly(fake_cifar10, tmp_path):
    straight = tmp_path / "straight"
    assert main(["train", *SMALL, "--data-dir", str(fake_cifar10), "--out", str(straight)]) == 0
    out = tmp_path / "stopped"

    def ctrl_c(trainer, epoch, batch):
        if (epoch, batch) == (1, 3):
            os.kill(os.getpid(), signal.SIGINT)

    cfg = TrainConfig(
        model="preact_resnet20",
        data_dir=str(fake_cifar10),
        out=str(out),
        epochs=2,
        batch_size=8,
        subset=32,
        test_subset=32,
        device="cpu",
        progress=False,
        amp="none",
        depth_basis="linear",
        train_steps=[1, 2],
    )
    trainer = Trainer(cfg, on_batch_end=ctrl_c)
    trainer.fit()
    assert trainer.stopped
    assert main(["train", *SMALL, "--data-dir", str(fake_cifar10), "--out", str(out), "--resume"]) == 0
    expected = _without_timing(read_metrics(straight / "metrics.jsonl"))
    assert _without_timing(read_metrics(out / "metrics.jsonl")) == expected


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--train-steps", ""], "--train-steps"),
        (["train", "--train-steps", "1,0"], "--train-steps"),
        (["train", "--train-steps", "2,2"], "--train-steps"),
        (["train", "--train-steps", "a"], "--train-steps"),
        (["train", "--refine-at", "-1"], "--refine-at"),
        (["train", "--refine-at", "10", "--epochs", "5"], "refine_at must hold epochs in [1, epochs=5)"),
        (["train", "--refine-at", "1", "--train-steps", "1,2", "--epochs", "5"], "not both"),
        (["train", "--depth-basis", "cubic"], "--depth-basis"),
        (["eval", "--run", "x", "--recalibrate-bn", "0"], "--recalibrate-bn"),
        (["eval", "--run", "x", "--samples", "-3"], "--samples"),
        (["eval", "--run", "x", "--knots-per-block", "0"], "--knots-per-block"),
        (["eval", "--run", "x", "--steps-per-block", "nan"], "--steps-per-block"),
    ],
)
def test_bad_recipe_and_evaluation_values_are_one_line(argv, needle, capsys, tmp_path):
    argv = [*argv, "--out", str(tmp_path / "r")] if argv[0] == "train" else argv
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's refusals
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_recalibration_asked_for_more_images_than_there_are_uses_and_reports_all(fake_cifar10, tmp_path):
    run = tmp_path / "run"
    argv = [*SMALL, "--epochs", "1", "--train-steps", "1", "--data-dir", str(fake_cifar10), "--out", str(run)]
    assert main(["train", *argv]) == 0
    result = cd.train.evaluate_run(run, recalibrate_bn=10**9, test_subset=8, amp="none", device="cpu")
    assert result["recalibrated_images"] == 40  # the fake training set's size, not the number asked for


def _row(scheme: str, steps: float | None, trained: float, recalibrated: float | None) -> dict:
    row = {"scheme": scheme, "steps_per_block": steps, "as_trained": {"test_acc": trained}}
    if recalibrated is not None:
        row["recalibrated"] = {"test_acc": recalibrated}
    return row


def test_a_nets_verdict_is_decided_as_soon_as_its_rows_settle_it():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    depth_dial = pytest.importorskip("depth_dial")
    net = {"trained_steps_per_block": 1, "depth_basis": "blocks", "rows": [_row("euler", 1, 0.85, 0.85)]}
    net["rows"] += [_row("euler", s, 0.80, 0.845) for s in (2, 4, 8)]
    s = depth_dial.summary(net)
    assert not s["decided"] and not s["dial"] and s["drop_points"]["dopri5"] is None  # dopri5 still to come
    net["rows"].append(_row("dopri5", None, 0.70, None))  # half a row, 15 points down: recalibration may mend it
    assert not depth_dial.summary(net)["decided"]
    net["rows"][-1] = _row("dopri5", None, 0.845, None)  # half a row already within 1 point: settled
    s = depth_dial.summary(net)
    assert s["decided"] and s["dial"] and s["drop_points"]["dopri5"] == pytest.approx(0.5)
    net["rows"][-1] = _row("dopri5", None, 0.70, 0.845)
    s = depth_dial.summary(net)
    assert s["decided"] and s["dial"] and s["worst_drop_points"] == pytest.approx(0.5)
    net["rows"][1] = _row("euler", 2, 0.80, 0.83)  # 2 points down at 2x: not a dial, whatever comes after
    del net["rows"][-1]
    s = depth_dial.summary(net)
    assert s["decided"] and not s["dial"] and s["worst_drop_points"] == pytest.approx(2.0)
    assert depth_dial.summary({**net, "rows": []})["trained_acc"] is None
