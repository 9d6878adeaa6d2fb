"""A finished run keeps fp16 weights; eval, analyze and load_run work from them alone."""

from __future__ import annotations

import shutil

import pytest
import torch

import contdepth as cd
from contdepth.cli import main
from contdepth.runs.files import WEIGHTS

SMALL = ["--batch-size", "16", "--subset", "32", "--test-subset", "32", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def committed_run(fake_cifar10, tmp_path_factory, one_thread):
    """A finished lm_resnet20 run, and a copy of it holding only what results/ commits (no checkpoint.pt)."""
    run = tmp_path_factory.mktemp("runs") / "lm20"
    argv = ["train", "--model", "lm_resnet20", "--epochs", "1", *SMALL, "--data-dir", str(fake_cifar10)]
    assert main([*argv, "--out", str(run)]) == 0
    light = run.parent / "lm20-light"
    light.mkdir()
    for name in ("config.json", "results.json", "metrics.jsonl", WEIGHTS):
        shutil.copy(run / name, light / name)
    return run, light


def test_a_finished_run_keeps_half_precision_weights(committed_run):
    run, _ = committed_run
    saved = torch.load(run / WEIGHTS, weights_only=True)
    assert saved["epoch"] == 1 and saved["model_name"] == "lm_resnet20"
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    assert (run / WEIGHTS).stat().st_size < 0.6 * (run / "checkpoint.pt").stat().st_size


def test_load_run_gives_the_trained_module_from_fp16_weights(committed_run, fake_cifar10):
    run, light = committed_run
    full = cd.train.load_run(run)
    half = cd.train.load_run(light)
    assert not half.training and next(half.parameters()).dtype == torch.float32
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(full(x), half(x), atol=1e-2, rtol=1e-2)
    finer = cd.train.load_run(light, scheme="rk4", steps_per_block=2)
    assert finer.scheme == "rk4" and finer.steps_per_block == 2


def test_eval_and_analyze_run_from_the_weights_alone(committed_run, fake_cifar10, tmp_path, capsys):
    _, light = committed_run
    data = ["--data-dir", str(fake_cifar10), "--device", "cpu"]
    assert main(["eval", "--run", str(light), *data, "--steps-per-block", "2"]) == 0
    assert "under lm2 with 2 step/block" in capsys.readouterr().out
    argv = ["analyze", "--run", str(light), "--images", "1", "--n-eigs", "2", "--tol", "0.1", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "stability.json").is_file()


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"contdepth {command}: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("command", ["eval", "analyze"])
def test_missing_damaged_or_foreign_weights_are_one_line(committed_run, fake_cifar10, tmp_path, capsys, command):
    _, light = committed_run
    run = tmp_path / "run"
    shutil.copytree(light, run)
    argv = [command, "--run", str(run), "--data-dir", str(fake_cifar10)]
    if command == "analyze":
        argv += ["--images", "1", "--n-eigs", "2", "--out", str(tmp_path / "out")]
    (run / WEIGHTS).unlink()
    assert main(argv) != 0
    assert "has no trained weights" in _one_line_error(capsys, command)
    data = (light / WEIGHTS).read_bytes()
    (run / WEIGHTS).write_bytes(data[: len(data) // 2])
    assert main(argv) != 0
    assert f"{WEIGHTS} is damaged" in _one_line_error(capsys, command)
    other = cd.models.get("resnet20").state_dict()
    torch.save({"model": other, "epoch": 1}, run / WEIGHTS)
    assert main(argv) != 0
    assert "does not fit lm_resnet20" in _one_line_error(capsys, command)
