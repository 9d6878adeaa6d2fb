"""The training loop's speed plumbing on CPU: no host syncs per step, compile modes, CUDA choices, progress,
provenance."""

import io
import json
import os
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from contdepth.cli import build_parser, main
from contdepth.cli.train import config_from_args
from contdepth.data import write_fake_cifar
from contdepth.runs.records import read_metrics
from contdepth.train import TrainConfig, Trainer, compiling
from contdepth.train.backends import apply_backend_flags, backend_flags, current_flags
from contdepth.train.optim import sgd_options
from contdepth.train.parts import make_progress
from contdepth.train.progress import Progress, clock
from contdepth.train.report import steady_timing

REPO = Path(__file__).resolve().parents[1]
SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, "cifar10", train=40, test=16)
    return root


def count_host_reads(monkeypatch) -> dict[str, int]:
    """Count calls of the Tensor methods that copy device values to the host (each one a sync on CUDA)."""
    counts = dict.fromkeys(SYNCS, 0)
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


@pytest.mark.parametrize(
    "style,model,noise",
    [("bar", "lm_resnet20", None), ("lines", "lm_resnet20", None), ("off", "preact_resnet20", "sd:0.8")],
)
def test_no_host_sync_per_training_step(style, model, noise, data_dir, tmp_path, monkeypatch):
    cfg = TrainConfig(
        model=model,
        noise=noise,
        data_dir=str(data_dir),
        out=str(tmp_path / "run"),
        epochs=1,
        batch_size=4,
        subset=20,
        test_subset=8,
        eval_batch_size=8,
        device="cpu",
        progress_every=1e-9 if style == "lines" else 30.0,
    )  # lines: a line (and a read) every step
    trainer = Trainer(cfg)
    trainer.progress = make_progress(trainer.cfg, trainer.dist, trainer.train_loader, trainer.test_loader, style)
    trainer.progress.stream = io.StringIO()
    snapshots = []
    trainer.on_batch_end = lambda t, epoch, batch: snapshots.append((sum(counts.values()), t.progress.reads))
    counts = count_host_reads(monkeypatch)
    trainer.fit()
    monkeypatch.undo()
    assert len(snapshots) == 5 and trainer.epoch == 1
    per_step = [(b[0] - a[0], b[1] - a[1]) for a, b in pairwise(snapshots)]
    if style == "lines":
        assert per_step == [(1, 1)] * 4  # one read per printed line, nothing else
        assert "run eta" in trainer.progress.stream.getvalue()
    else:
        assert per_step == [(0, 0)] * 4
    assert trainer.state.meter.sums.device.type == "cpu"


def test_compile_mode_reduce_overhead_on_cpu_trains(data_dir, tmp_path, monkeypatch, capsys):
    """CUDA graphs do not exist on CPU: the mode compiles as ``default`` there (dynamo's eager backend keeps
    it fast)."""
    monkeypatch.setattr(compiling, "BACKEND", "eager")
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    out = tmp_path / "ro"
    args = [
        "--model",
        "resnet20",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--subset",
        "8",
        "--test-subset",
        "8",
        "--device",
        "cpu",
        "--no-progress",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
    ]
    assert main(["train", *args, "--compile-mode", "reduce-overhead"]) == 0
    assert "CUDA only; compiling with mode default on cpu" in capsys.readouterr().err
    assert torch._dynamo.utils.counters["frames"]["ok"] >= 2  # really compiled: the train and the eval graph
    rows = read_metrics(out / "metrics.jsonl")
    res = json.loads((out / "results.json").read_text())
    assert rows[0]["compile_seconds"] > 0 and rows[1]["compile_seconds"] == 0
    assert res["compile_seconds"] == rows[0]["compile_seconds"]
    assert res["epoch_seconds"] == rows[1]["seconds"] and res["timed_epochs"] == 1  # the epochs after the first
    prov = res["provenance"]
    assert (prov["compile_mode"], prov["compile_mode_used"]) == ("reduce-overhead", "default")
    assert main(["eval", "--run", str(out), "--device", "cpu", "--compile-mode", "reduce-overhead", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["compile_mode"] == "default" and evaluated["test_acc"] == rows[-1]["test_acc"]
    torch._dynamo.reset()


def test_compile_flags_and_cuda_choices_without_a_gpu(capsys):
    def cfg(*flags):
        return config_from_args(build_parser().parse_args(["train", *flags]))

    plain = cfg()  # a 160-epoch run compiles on a CPU (contdepth.train.speed); nothing is chosen on CUDA
    on_cpu = not torch.cuda.is_available()
    assert (plain.compile, plain.compile_mode) == ((True, "default") if on_cpu else (False, None))
    assert (cfg("--no-compile").compile, cfg("--no-compile").compile_mode) == (False, None)
    assert (cfg("--compile").compile, cfg("--compile").compile_mode) == (True, "default")
    c = cfg("--compile-mode", "max-autotune", "--deterministic", "--progress-every", "5")
    assert (c.compile, c.compile_mode, c.deterministic, c.progress_every) == (True, "max-autotune", True, 5.0)
    for bad in (["--compile-mode", "fast"], ["--progress-every", "0"], ["--progress-every", "nan"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["train", *bad])
        assert exc.value.code == 2
    assert "choose from 'default', 'reduce-overhead', 'max-autotune'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="choose one of: default, reduce-overhead, max-autotune"):
        TrainConfig(compile_mode="fast")

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert compiling.effective_mode("reduce-overhead", cuda) == "reduce-overhead"
    assert compiling.effective_mode("reduce-overhead", cpu) == "default"
    assert (
        compiling.effective_mode("max-autotune", cpu) == "max-autotune" and compiling.effective_mode(None, cuda) is None
    )
    assert compiling.uses_cuda_graphs("reduce-overhead", cuda) and not compiling.uses_cuda_graphs("default", cuda)
    assert backend_flags("cuda", deterministic=False) == {"cudnn_benchmark": True, "tf32": True, "deterministic": False}
    assert backend_flags("cuda", deterministic=True) == {"cudnn_benchmark": False, "tf32": False, "deterministic": True}
    assert backend_flags("cpu", deterministic=False) == {
        "cudnn_benchmark": False,
        "tf32": False,
        "deterministic": False,
    }
    assert sgd_options(cuda) == {"fused": True} and sgd_options(cpu) == {"foreach": True}

    try:
        apply_backend_flags(backend_flags("cpu", deterministic=True))
        assert current_flags()["deterministic"] and torch.are_deterministic_algorithms_enabled()
    finally:
        apply_backend_flags(backend_flags("cpu", deterministic=False))
    assert not torch.are_deterministic_algorithms_enabled()


def test_steady_timing_leaves_out_each_sessions_first_epoch():
    rows = [
        {"epoch": 1, "seconds": 90.0, "images_per_s": 10.0, "compile_seconds": 80.0, "session": 0},
        {"epoch": 2, "seconds": 10.0, "images_per_s": 100.0, "compile_seconds": 0.0, "session": 0},
        {"epoch": 3, "seconds": 50.0, "images_per_s": 20.0, "compile_seconds": 40.0, "session": 1},
        {"epoch": 4, "seconds": 12.0, "images_per_s": 80.0, "compile_seconds": 0.0, "session": 1},
        {"epoch": 5, "seconds": 14.0, "images_per_s": 70.0, "compile_seconds": 0.0, "session": 1},
    ]
    t = steady_timing(rows)
    assert (t["epoch_seconds"], t["images_per_s"], t["timed_epochs"], t["compile_seconds"]) == (12.0, 80.0, 3, 120.0)
    assert steady_timing(rows[:1])["epoch_seconds"] == 90.0  # nothing else to take


def test_progress_lines_eta_and_evaluation():
    stream = io.StringIO()
    p = Progress("lines", epochs=3, batches=4, eval_batches=2, images_per_batch=8, every=1e-9, stream=stream)
    p.start_epoch(1, 0)
    assert p.eta() is None
    for batch in range(1, 5):
        p.step(batch, lambda: (1.5, 0.25))
    assert list(p.evaluating(iter("ab"))) == ["a", "b"]
    text = stream.getvalue()
    assert "epoch 1/3 batch 4/4  loss 1.5000 acc 25.00%" in text and "evaluating: batch 2/2" in text
    assert p.reads == 4 and p.seconds_per_batch() is not None
    # after epoch 1 of 3: 8 batches and 3 evaluations (this epoch's included) are left
    assert p.eta() == pytest.approx(8 * p.seconds_per_batch() + 3 * p._eval_seconds)
    quiet = Progress("lines", epochs=1, batches=2, eval_batches=1, images_per_batch=8, every=3600, stream=io.StringIO())
    quiet.start_epoch(1, 0)
    quiet.step(1, lambda: pytest.fail("read without printing"))
    assert quiet.reads == 0 and quiet.stream.getvalue() == ""
    assert (clock(59.6), clock(3725)) == ("1:00", "1:02:05")


def test_provenance_from_a_copy_without_git(data_dir, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "checkout"
    shutil.copytree(REPO / "contdepth", copy / "contdepth", ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        "CONTDEPTH_GIT_COMMIT": "0123abc",
        "CONTDEPTH_CONCURRENT_RUNS": "3",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
        "OMP_NUM_THREADS": "1",
    }
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "contdepth",
        "train",
        "--model",
        "resnet20",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--subset",
        "8",
        "--test-subset",
        "8",
        "--device",
        "cpu",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--deterministic",
        "--channels-last",
        "--amp",
        "none",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    prov = json.loads((out / "results.json").read_text())["provenance"]
    assert (prov["git_commit"], prov["git_commit_from"]) == ("0123abc", "$CONTDEPTH_GIT_COMMIT")
    assert prov["concurrent_runs"] == 3 and prov["deterministic"] and not prov["cudnn_benchmark"]
    assert (prov["amp"], prov["memory_format"], prov["compile_mode"]) == ("none", "channels_last", None)
    assert {"gpu", "cuda", "cudnn", "tf32_matmul", "tf32_cudnn", "optimizer", "torch", "device"} <= set(prov)

    monkeypatch.setenv("CONTDEPTH_CONCURRENT_RUNS", "two")
    assert main(["train", *cmd[cmd.index("--model") : -4], "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "contdepth train: error: $CONTDEPTH_CONCURRENT_RUNS must be a positive integer" in err
    assert len(err.strip().splitlines()) == 1
