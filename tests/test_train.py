"""Training end to end on a tiny random CIFAR copy: outputs, exact resume, DDP, eval, errors, real data."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from contdepth.cli import main
from contdepth.data import load_cifar
from contdepth.runs.checkpoint import load
from contdepth.runs.records import read_metrics
from contdepth.train import TrainConfig, Trainer, evaluate_run
from contdepth.train.schedule import RecipeFactor
from contdepth.train.state import EpochMeter, TrainState

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TIMING = ("seconds", "images_per_s", "compile_seconds", "session")  # differ between a run and its resumption
SMALL = [
    "--model",
    "lm_resnet20",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--subset",
    "32",
    "--test-subset",
    "32",
    "--device",
    "cpu",
    "--no-progress",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(fake_cifar10):
    return fake_cifar10


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("runs") / "straight"
    assert main(["train", *SMALL, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_outputs_and_fields(straight_run):
    rows = read_metrics(straight_run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert {
            "epoch",
            "lr",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "seconds",
            "images_per_s",
            "max_abs_k",
        } <= set(r)
        assert np.isfinite(r["train_loss"]) and 0 <= r["test_acc"] <= 1 and r["images_per_s"] > 0
    assert rows[0]["lr"] == pytest.approx(0.1) and rows[1]["lr"] == pytest.approx(0.01)  # milestones E/2, 3E/4
    res = json.loads((straight_run / "results.json").read_text())
    assert res["complete"] and res["epochs_done"] == 2 and res["params"] > 100_000
    assert res["final_test_error"] == pytest.approx(100 * (1 - rows[-1]["test_acc"]))
    assert res["best_test_error"] <= res["final_test_error"]
    assert res["train_images"] == 32 and res["test_images"] == 32 and res["scheme"] == "lm2"
    assert {"command", "git_commit", "device", "torch", "seed", "date"} <= set(res["provenance"])
    assert [len(stage) for stage in res["momentum_k"]] and res["max_abs_k"] < 1
    for name in ("curves.png", "momentum.png"):
        assert (straight_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = load(straight_run / "checkpoint.pt")
    assert state["epoch"] == 2 and state["batch"] == 0
    assert {"model", "optimizer", "scheduler", "rng", "loader", "history"} <= set(state)
    groups = state["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]  # no weight decay on LM's k


def test_interrupted_run_resumes_exactly(straight_run, data_dir, tmp_path):
    out, crashed = tmp_path / "interrupted", tmp_path / "crashed"

    def ctrl_c(trainer, epoch, batch):
        if (epoch, batch) == (2, 1):
            crashed.mkdir()  # as if killed here: keep the files the end of epoch 1 left behind
            for name in ("checkpoint.pt", "config.json", "metrics.jsonl"):
                shutil.copy(out / name, crashed / name)
            os.kill(os.getpid(), signal.SIGINT)  # the real Ctrl-C path: handler, save, clean exit

    cfg = TrainConfig(
        model="lm_resnet20",
        data_dir=str(data_dir),
        out=str(out),
        epochs=2,
        batch_size=16,
        subset=32,
        test_subset=32,
        device="cpu",
        progress=False,
    )
    trainer = Trainer(cfg, on_batch_end=ctrl_c)
    trainer.fit()
    assert trainer.stopped
    state = load(out / "checkpoint.pt")
    assert (state["epoch"], state["batch"]) == (1, 1)  # mid-epoch: saved at the step Ctrl-C came
    assert len(read_metrics(out / "metrics.jsonl")) == 1

    expected = _without_timing(read_metrics(straight_run / "metrics.jsonl"))
    for run in (out, crashed):
        assert main(["train", *SMALL, "--data-dir", str(data_dir), "--out", str(run), "--resume"]) == 0
        assert _without_timing(read_metrics(run / "metrics.jsonl")) == expected
    assert len(load(out / "checkpoint.pt")["sessions"]) == 2


#: The keys of a format-1 checkpoint: runs saved by earlier versions resume, so the layout stays as it is.
FORMAT_1 = {"format", "config", "epoch", "batch", "partial", "history", "sessions"}
FORMAT_1 |= {"model", "optimizer", "scheduler", "loader", "rng", "world"}


def test_checkpoint_keeps_the_format_1_layout(straight_run):
    state = load(straight_run / "checkpoint.pt")
    assert set(state) == FORMAT_1 and state["format"] == 1 and state["world"] == len(state["rng"]) == 1
    assert set(state["partial"]) == {"sums", "seen", "seconds", "lr"} and state["partial"]["seen"] == 0
    assert state["history"] == read_metrics(straight_run / "metrics.jsonl") and len(state["sessions"]) == 1


def test_epoch_meter_and_training_state_round_trip():
    meter = EpochMeter(torch.device("cpu"), lr=0.1)
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 0, 0])
    meter.observe(torch.tensor(0.5), logits, labels, step=1)
    meter.seconds, meter.compile_seconds = 1.5, 0.25
    assert meter.seen == 3 and meter.means() == pytest.approx((0.5, 2 / 3))
    state = TrainState(meter, epoch=3, batch=1, history=[{"epoch": 3}], sessions=[{"seed": 0}])
    saved = state.state_dict()
    assert set(saved) == {"epoch", "batch", "partial", "history", "sessions"}

    older = {k: v for k, v in saved.items() if k != "sessions"}  # checkpoints written before sessions were kept
    restored = TrainState()
    restored.load_state_dict(older)
    assert (restored.epoch, restored.batch, restored.history, restored.sessions) == (3, 1, [{"epoch": 3}], [])
    again = restored.meter
    assert (again.seen, again.seconds, again.lr, again.compile_seconds) == (3, 1.5, 0.1, 0.0)  # compiling: per session
    assert torch.equal(again.sums, meter.sums)

    meter.observe(torch.tensor(float("nan")), logits, labels, step=2)
    assert meter.watch.first_bad_step() == 2
    state.end_epoch({"epoch": 4})
    assert (state.epoch, state.batch, len(state.history)) == (4, 0, 2)
    assert (meter.seen, meter.seconds, meter.compile_seconds, meter.lr) == (0, 0.0, 0.0, 0.1)
    assert meter.sums.tolist() == [0.0, 0.0] and meter.watch.first_bad_step() is None


def test_run_directory_is_protected(straight_run, data_dir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in straight_run.iterdir() if p.name != ".lock"}
    for extra in ([], ["--resume"]):  # a finished run: said, and nothing written
        assert main(["train", *SMALL, "--data-dir", str(data_dir), "--out", str(straight_run), *extra]) == 0
        assert "holds this run, finished (2 epochs" in capsys.readouterr().out
    changed = [a if a != "2" else "3" for a in SMALL]  # --epochs 3
    assert main(["train", *changed, "--data-dir", str(data_dir), "--out", str(straight_run)]) == 2
    err = capsys.readouterr().err
    assert "holds another run (epochs: 2 -> 3" in err and "--overwrite" in err
    assert main(["train", *changed, "--data-dir", str(data_dir), "--out", str(straight_run), "--resume"]) == 2
    assert "epochs: 2 -> 3" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in straight_run.iterdir() if p.name != ".lock"} == before


def test_evaluate_run_and_rediscretise(straight_run, data_dir, capsys):
    same = evaluate_run(straight_run)
    last = read_metrics(straight_run / "metrics.jsonl")[-1]
    assert same["test_acc"] == last["test_acc"] and same["images"] == 32
    assert same["test_loss"] == pytest.approx(last["test_loss"], rel=1e-6)
    rk4 = evaluate_run(straight_run, scheme="rk4", steps_per_block=2)
    assert rk4["scheme"] == "rk4" and rk4["steps_per_block"] == 2 and rk4["trained_scheme"] == "lm2"
    assert 0 <= rk4["test_acc"] <= 1 and np.isfinite(rk4["test_loss"])
    assert main(["eval", "--run", str(straight_run), "--scheme", "lm2", "--steps-per-block", "2"]) == 0
    assert "under lm2 with 2 step/block" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--model", "resnet7", "choose one of:"),
        ("--scheme", "rk5", "available:"),
        ("--noise", "sd:2", "survival probability"),
    ],
)
def test_bad_names_get_one_clear_line(data_dir, tmp_path, capsys, flag, value, expected):
    # a repeated flag: argparse keeps the last value
    assert main(["train", *SMALL, flag, value, "--data-dir", str(data_dir), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and value in err


def test_bad_choice_and_missing_data(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--amp", "fp8"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["train", *SMALL, "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "cifar-10-batches-py" in err


DDP_TIMEOUT_S = 240


def test_ddp_two_processes_gloo(data_dir, tmp_path):
    """The user's command, `torchrun --standalone --nproc_per_node=2 -m contdepth train ...`, on the gloo backend."""
    out = tmp_path / "ddp"
    argv = ["train", *[a if a != "2" else "1" for a in SMALL], "--data-dir", str(data_dir), "--out", str(out)]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "contdepth",
        *argv,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("GLOO_SOCKET_IFNAME", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONFAULTHANDLER"] = "1"
    # a new session, so that a hung group is killed whole (agent and workers) and reported, not waited on
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        log, _ = proc.communicate(timeout=DDP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)  # faulthandler prints every worker's stack on SIGABRT
        log, _ = proc.communicate(timeout=30)
        pytest.fail(f"torchrun did not finish in {DDP_TIMEOUT_S} s; its output:\n{log[-6000:]}")
    assert proc.returncode == 0, log[-6000:]
    assert log.count("epoch   1/1") == 1, log  # only rank 0 reports and writes
    res = json.loads((out / "results.json").read_text())
    assert res["provenance"]["processes"] == 2 and res["complete"]
    rows = read_metrics(out / "metrics.jsonl")
    assert len(rows) == 1 and np.isfinite(rows[0]["train_loss"]) and 0 <= rows[0]["test_acc"] <= 1
    assert len(load(out / "checkpoint.pt")["rng"]) == 2  # every rank's RNG state is kept


def test_single_host_gloo_group_stays_on_loopback(monkeypatch):
    from contdepth.train import distributed

    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    monkeypatch.setenv("MASTER_ADDR", "10.1.2.3")  # a real multi-host group: left to the user
    distributed._keep_gloo_on_loopback()
    assert "GLOO_SOCKET_IFNAME" not in os.environ
    monkeypatch.setenv("MASTER_ADDR", "localhost")  # what `torchrun --standalone` sets
    distributed._keep_gloo_on_loopback()
    assert os.environ["GLOO_SOCKET_IFNAME"] in ("lo", "lo0") or not sys.platform.startswith(("linux", "darwin"))
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "eth7")  # the user's choice wins
    distributed._keep_gloo_on_loopback()
    assert os.environ["GLOO_SOCKET_IFNAME"] == "eth7"


def test_more_processes_than_gpus_is_refused(monkeypatch):
    """torchrun with 2 processes on a host with 1 GPU: one clear error instead of two ranks on cuda:0."""
    from contdepth.train import distributed

    with pytest.raises(ValueError, match=r"2 processes .* 1 CUDA device: .*--nproc_per_node=1"):
        distributed.check_one_gpu_each(local_world=2, local_rank=0, gpus=1)
    with pytest.raises(ValueError, match="4 processes"):
        distributed.check_one_gpu_each(local_world=1, local_rank=3, gpus=2)  # LOCAL_WORLD_SIZE unknown
    distributed.check_one_gpu_each(local_world=2, local_rank=1, gpus=2)
    # the whole path, with a machine that reports one GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="each process needs a GPU of its own"):
        distributed.resolve_device("cuda", local_rank=1)
    with pytest.raises(ValueError, match="puts all 2 processes on one GPU"):
        distributed.resolve_device("cuda:0", local_rank=1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert distributed.resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)


NPZ = SHARED / "data" / "cifar10-jpeg75.npz"


@pytest.mark.skipif(not NPZ.is_file(), reason=f"the shared CIFAR-10 copy {NPZ} is not present")
def test_real_cifar10_copy(tmp_path):
    """512 real training images, one epoch, through the shared decoder and the standard layout."""
    z = np.load(NPZ)
    small = {"classes": z["classes"]}
    for split, n in (("train", 512), ("test", 200)):
        jpeg, offsets, labels = z[f"{split}_jpeg"], z[f"{split}_offsets"], z[f"{split}_labels"]
        pick = np.arange(n) * len(labels) // n  # the copy is sorted by class: sample it evenly
        blobs = [jpeg[offsets[i] : offsets[i + 1]] for i in pick]
        small[f"{split}_jpeg"] = np.concatenate(blobs)
        small[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
        small[f"{split}_labels"] = labels[pick]
    np.savez(tmp_path / "small.npz", **small)
    tool = SHARED / "tools" / "cifar10_from_jpeg.py"
    subprocess.run(
        [sys.executable, str(tool), str(tmp_path / "data"), "--npz", str(tmp_path / "small.npz")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = load_cifar("cifar10", tmp_path / "data")
    assert data.classes[0] == "airplane" and torch.bincount(data.test.labels).tolist() == [20] * 10
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model",
                "resnet20",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--no-progress",
                "--data-dir",
                str(tmp_path / "data"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["train_images"] == 512 and res["test_images"] == 200
    assert np.isfinite(res["final_train_loss"]) and 0 <= res["final_test_acc"] <= 1
    assert not (out / "momentum.png").exists()  # a plain ResNet has no momentum to plot


def test_recipe_defaults_and_schedules():
    c10, c100 = TrainConfig(), TrainConfig(dataset="cifar100")
    assert (c10.epochs, c10.milestones, c10.batch_size, c10.lr, c10.momentum, c10.weight_decay) == (
        160,
        [80, 120],
        128,
        0.1,
        0.9,
        1e-4,
    )
    assert (c100.epochs, c100.milestones) == (300, [150, 225])
    step = RecipeFactor(10, 160, milestones=[80, 120])
    assert [step(s) for s in (0, 799, 800, 1199, 1200)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    warm_cos = RecipeFactor(10, 100, schedule="cosine", warmup_epochs=2)
    assert warm_cos(0) == pytest.approx(0.05) and warm_cos(19) == pytest.approx(1, abs=1e-2)
    assert warm_cos(500) == pytest.approx(0.5) and warm_cos(1000) == pytest.approx(0)
    warm_linear = RecipeFactor(10, 100, schedule="linear", warmup_epochs=1)
    assert warm_linear(0) == pytest.approx(0.1) and warm_linear(10) == pytest.approx(0.99)
    assert warm_linear(500) == pytest.approx(0.5) and warm_linear(999) == pytest.approx(0.001)
    assert warm_linear(1000) == 0  # zero at the end of the budget
    with pytest.raises(ValueError, match="choose one of: step, cosine, linear"):
        TrainConfig(schedule="exponential")
