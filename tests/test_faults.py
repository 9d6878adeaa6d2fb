"""Faults while training: a second run on the same folder, divergence, a full disk, damaged files, bad flags."""

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contdepth.cli import main
from contdepth.runs import checkpoint as ckpt
from contdepth.runs.records import read_metrics
from contdepth.train import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "--model",
    "lm_resnet20",
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
def finished_run(tmp_path_factory, data_dir):
    """A complete one-epoch run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("runs") / "done"
    assert main(["train", *SMALL, "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out


def _config(data_dir, out, epochs=2):
    return TrainConfig(
        model="lm_resnet20",
        data_dir=str(data_dir),
        out=str(out),
        epochs=epochs,
        batch_size=16,
        subset=32,
        test_subset=32,
        device="cpu",
        progress=False,
    )


def one_line_error(capsys, command="train"):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"contdepth {command}: error: ") and "Traceback" not in err
    return err


# ------------------------------------------------------------------ one run per folder
def test_a_second_train_on_the_same_folder_is_refused_naming_the_holder(data_dir, tmp_path):
    out = tmp_path / "run"
    holder = Trainer(_config(data_dir, out))
    holder.prepare()  # this test's process holds the run folder, as a running `contdepth train` does
    try:
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "contdepth",
                "train",
                *SMALL,
                "--overwrite",
                "--data-dir",
                str(data_dir),
                "--out",
                str(out),
            ],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert second.returncode == 2
    err = second.stderr.strip()
    assert len(err.splitlines()) == 1 and f"process {os.getpid()}" in err and "in use" in err, err
    assert json.loads((out / "config.json").read_text())["epochs"] == 2  # the holder's files were left alone
    # a killed holder leaves no stale lock: tests/test_lock.py kills one


def test_a_folder_holding_a_run_is_kept_unless_overwrite(finished_run, data_dir, tmp_path, capsys):
    out = tmp_path / "old"
    shutil.copytree(finished_run, out)
    (out / "checkpoint.pt").unlink()  # what is left (weights, results, metrics, config, plots) is the finished run
    assert main(["train", *SMALL, "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    said = capsys.readouterr().out.strip()
    assert "holds this run, finished (1 epoch" in said and "nothing to train" in said and "--overwrite" in said
    other = ["train", *SMALL, "--model", "resnet20", "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out)]
    assert main(other) == 2
    err = one_line_error(capsys)
    assert "holds another run (model: 'lm_resnet20' -> 'resnet20')" in err and "--overwrite" in err
    assert (out / "results.json").is_file() and (out / "curves.png").is_file()

    (out / "momentum.png").write_bytes(b"stale")
    assert (
        main(
            [
                "train",
                *SMALL,
                "--model",
                "resnet20",
                "--epochs",
                "1",
                "--data-dir",
                str(data_dir),
                "--out",
                str(out),
                "--overwrite",
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "resnet20" and json.loads((out / "config.json").read_text())["model"] == "resnet20"
    assert not (out / "momentum.png").exists()  # the old run's plot went with it (resnet20 has no k to plot)
    assert (
        main(
            [
                "train",
                *SMALL,
                "--epochs",
                "1",
                "--data-dir",
                str(data_dir),
                "--out",
                str(out),
                "--resume",
                "--overwrite",
            ]
        )
        == 2
    )
    assert "choose one" in one_line_error(capsys)


@pytest.mark.parametrize("case", ["empty", "file", "in_a_file", "read_only", "no_permission"])
def test_unusable_out_is_one_line_and_leaves_nothing(data_dir, tmp_path, capsys, monkeypatch, case):
    out = tmp_path / "new" / "run"
    if case == "empty":
        out = ""
    elif case == "file":
        out = tmp_path / "a_file"
        out.write_text("keep me")
    elif case == "in_a_file":
        (tmp_path / "a_file").write_text("keep me")
        out = tmp_path / "a_file" / "run"
    elif case == "read_only":  # mkdir on a read-only file system

        def refuse(self, *args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

        monkeypatch.setattr(Path, "mkdir", refuse)
    else:  # the nearest existing folder is not writable (as on a read-only mount)
        import contdepth.runs.folder as run_folder

        monkeypatch.setattr(run_folder.os, "access", lambda *a, **k: False)
    assert main(["train", *SMALL, "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert {
        "empty": "must name a folder",
        "file": "is a file",
        "in_a_file": "is a file",
        "read_only": "Read-only file system",
        "no_permission": "not writable",
    }[case] in err
    assert not (tmp_path / "new").exists()
    if case in ("file", "in_a_file"):
        assert (tmp_path / "a_file").read_text() == "keep me"


def test_a_refused_start_up_leaves_no_empty_folder(tmp_path, capsys):
    out = tmp_path / "runs" / "deep" / "run"
    assert main(["train", *SMALL, "--data-dir", str(tmp_path / "no_data"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_an_interrupted_start_up_leaves_no_empty_folder(data_dir, tmp_path, monkeypatch):
    import contdepth.train.parts as parts_module

    def interrupted(cfg, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) while the data is read

    monkeypatch.setattr(parts_module, "data_from_config", interrupted)
    out = tmp_path / "runs" / "run"
    assert main(["train", *SMALL, "--data-dir", str(data_dir), "--out", str(out)]) == 130
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------- divergence
def _poison_weights(trainer):
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))


def test_divergence_keeps_the_last_good_checkpoint_and_says_where(data_dir, tmp_path, capsys):
    out = tmp_path / "nan"

    def blow_up(trainer, epoch, batch):
        if (epoch, batch) == (2, 1):
            _poison_weights(trainer)

    trainer = Trainer(_config(data_dir, out), on_batch_end=blow_up)
    res = trainer.fit()
    assert trainer.diverged and trainer.stopped
    err = capsys.readouterr().err
    assert "diverged in epoch 2" in err and "batch 2" in err and "epoch 1 batch 0" in err
    state = ckpt.load(out / "checkpoint.pt")
    assert (state["epoch"], state["batch"]) == (1, 0)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert [r["epoch"] for r in read_metrics(out / "metrics.jsonl")] == [1]  # the metrics match the checkpoint
    assert res["diverged"] and res["diverged_at"]["epoch"] == 2 and res["epochs_done"] == 1
    assert not (out / "checkpoint.pt.tmp").exists()


def test_a_non_finite_test_loss_is_a_divergence(data_dir, tmp_path, capsys):
    out = tmp_path / "nan_test"

    def poison_statistics(trainer, epoch, batch):
        if batch == 2:  # the last step of epoch 1: training itself uses batch statistics and stays finite
            bn = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("nan"))

    trainer = Trainer(_config(data_dir, out), on_batch_end=poison_statistics)
    trainer.fit()
    assert trainer.diverged and trainer.epoch == 0
    err = capsys.readouterr().err
    assert "diverged in epoch 1" in err and "test loss" in err and "no checkpoint was saved" in err
    assert not (out / "checkpoint.pt").exists()


def test_ctrl_c_never_saves_non_finite_weights(data_dir, tmp_path, capsys):
    out = tmp_path / "nan_stop"

    def poison_then_stop(trainer, epoch, batch):
        if (epoch, batch) == (2, 1):
            _poison_weights(trainer)  # after the step: the losses so far were finite, the weights are not
            os.kill(os.getpid(), signal.SIGINT)

    trainer = Trainer(_config(data_dir, out), on_batch_end=poison_then_stop)
    trainer.fit()
    assert trainer.diverged
    assert "weight tensors hold NaN" in capsys.readouterr().err
    assert ckpt.load(out / "checkpoint.pt")["epoch"] == 1


# ------------------------------------------------------------------------ full disk
def test_a_full_disk_keeps_the_last_checkpoint_and_removes_the_partial_file(data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    real_save, calls = torch.save, []

    def save_until_full(obj, fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return real_save(obj, fh, *args, **kwargs)
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt.torch, "save", save_until_full)
    assert main(["train", *SMALL, "--epochs", "2", "--data-dir", str(data_dir), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert "no space left on device" in err and "epoch 1 batch 0" in err and "--resume" in err
    assert not (out / "checkpoint.pt.tmp").exists()
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert ckpt.load(out / "checkpoint.pt")["epoch"] == 1
    assert main(["train", *SMALL, "--epochs", "2", "--data-dir", str(data_dir), "--out", str(out), "--resume"]) == 0


def _torch_on_a_full_disk(fh):
    """What torch.save says on a full disk: its zip writer's RuntimeError, with ENOSPC only in the chain."""
    fh.write(b"partial")
    try:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904


@pytest.mark.parametrize("when", ["first", "later", "weights", "results", "metrics", "start"])
def test_a_full_disk_is_one_line_however_the_writer_says_it(data_dir, tmp_path, capsys, monkeypatch, when):
    """The first checkpoint, a later one, the fp16 weights (torch's zip writer), results.json and metrics.jsonl
    (text files), config.json at the start: one line, exit code 1, no partial file, the last good checkpoint kept."""
    out = tmp_path / "full"
    epochs = 2 if when == "later" else 1
    failing = {"first": 1, "later": 2, "weights": 2}.get(when)
    real_save, calls = torch.save, []

    def save(obj, fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == failing:
            _torch_on_a_full_disk(fh)
        return real_save(obj, fh, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", save)
    real_write = Path.write_text
    name = {"results": "results.json.tmp", "metrics": "metrics.jsonl.tmp", "start": "config.json.tmp"}.get(when)

    def write_text(self, *args, **kwargs):
        if self.name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk's write says it: no file named
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    argv = ["train", *SMALL, "--epochs", str(epochs), "--data-dir", str(data_dir), "--out", str(out)]
    assert main(argv) == 1
    err = one_line_error(capsys)
    saved = {
        "first": "checkpoint.pt",
        "later": "checkpoint.pt",
        "weights": "weights.fp16.pt",
        "results": "results.json",
        "metrics": "metrics.jsonl",
        "start": "config.json",
    }[when]
    assert "o space left on device" in err and str(out / saved) in err, err
    if when == "start":  # nothing was saved: the new folder goes
        assert not out.exists()
        return
    assert not list(out.glob("*.tmp"))
    if when == "first":
        assert "no checkpoint was saved before it" in err and "run the same command again" in err
        assert not (out / "checkpoint.pt").exists()
        monkeypatch.undo()
        assert main(argv) == 0  # as it says (its one epoch was trained, and its weights kept)
        assert "holds this run, finished (1 epoch" in capsys.readouterr().out
    else:
        assert "the last good checkpoint (epoch 1 batch 0) is kept" in err and "continue with --resume" in err
        assert ckpt.load(out / "checkpoint.pt")["epoch"] == 1


def test_a_write_error_is_found_in_the_chain_or_told_by_the_free_space(tmp_path, monkeypatch):
    try:
        _torch_on_a_full_disk(io.BytesIO())
    except RuntimeError as err:
        found = ckpt.write_error(err, tmp_path / "x.pt")
    assert found is not None and found.errno == errno.ENOSPC and found.filename == str(tmp_path / "x.pt")
    bare = RuntimeError("[enforce fail at inline_container.cc:454] . PytorchStreamWriter failed writing file data/0")
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 0))
    assert ckpt.write_error(bare, tmp_path / "x.pt").errno == errno.ENOSPC
    monkeypatch.setattr(ckpt.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 40, 0, 1 << 40))
    assert ckpt.write_error(bare, tmp_path / "x.pt").errno == errno.EIO
    assert ckpt.write_error(RuntimeError("shape mismatch"), tmp_path / "x.pt") is None


# ------------------------------------------------------------------- damaged files
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(
        {
            "empty": b"",
            "truncated": data[: len(data) // 2],
            "garbage": os.urandom(4096),
            "not_a_dict": b"",
            "bad_epoch": b"",
            "text": b"not a checkpoint\n",
        }[how]
    )
    if how == "not_a_dict":
        torch.save([1, 2, 3], path)
    if how == "bad_epoch":
        state = torch.load(io.BytesIO(data), weights_only=True)
        torch.save({**state, "epoch": "one"}, path)


def _unfinished(out: Path) -> None:
    """The run in ``out`` as a kill in its last results write leaves it: its last checkpoint is still to finish."""
    results = json.loads((out / "results.json").read_text())
    (out / "results.json").write_text(json.dumps({**results, "complete": False}))


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage", "not_a_dict", "bad_epoch", "text"])
def test_a_damaged_checkpoint_is_named_for_resume_and_eval(finished_run, data_dir, tmp_path, capsys, how):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    _unfinished(out)
    _damage(out / "checkpoint.pt", how)
    argv = ["train", *SMALL, "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out)]
    for extra in (["--resume"], []):  # the same line with and without --resume
        assert main([*argv, *extra]) == 2
        err = one_line_error(capsys)
        assert "checkpoint.pt is damaged" in err and "--overwrite" in err
    assert main(["eval", "--run", str(out), "--device", "cpu"]) == 2
    assert "checkpoint.pt is damaged" in one_line_error(capsys, "eval")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"epochs": -3}', '{"lr": "fast"}', "\udcff"])
def test_a_damaged_config_json_is_named(finished_run, data_dir, tmp_path, capsys, text):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "config.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    assert main(["train", *SMALL, "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out), "--resume"]) == 2
    assert "config.json is damaged" in one_line_error(capsys)
    assert main(["eval", "--run", str(out), "--device", "cpu"]) == 2
    assert "config.json is damaged" in one_line_error(capsys, "eval")


def test_a_missing_config_json_is_read_from_the_checkpoint(finished_run, data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    _unfinished(out)
    (out / "config.json").unlink()
    assert main(["train", *SMALL, "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "config.json").read_text())["model"] == "lm_resnet20"


# --------------------------------------------------------------------- bad flags
@pytest.mark.parametrize("device", ["bogus", "", "cuda:x", "mps", "meta"])
def test_bad_device_is_one_line(finished_run, data_dir, tmp_path, capsys, device):
    expected = "device"
    assert main(["train", *SMALL, "--device", device, "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]) == 2
    assert expected in one_line_error(capsys)
    assert main(["eval", "--run", str(finished_run), "--device", device]) == 2
    assert expected in one_line_error(capsys, "eval")
    assert not (tmp_path / "o").exists()


def test_data_dir_naming_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "data.bin"
    a_file.write_bytes(b"123")
    assert main(["train", *SMALL, "--data-dir", str(a_file), "--out", str(tmp_path / "o")]) == 2
    assert "is a file" in one_line_error(capsys)
    assert main(["train", *SMALL, "--data-dir", "", "--out", str(tmp_path / "o")]) == 2
    assert "data_dir must name a folder" in one_line_error(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "0"],
        ["train", "--amp", "fp8"],
        ["train", "--lr", "fast"],
        ["train", "--bogus-flag"],
        ["eval", "--steps-per-block", "-1", "--run", "x"],
        ["eval"],
    ],
)
def test_flag_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("contdepth") and ": error: " in err and "--help" in err


@pytest.mark.parametrize(
    "argv, starts, hint",
    [
        (["train", "--bogus-flag"], "contdepth train: error: unrecognized arguments: --bogus-flag", None),
        (
            ["train", "--epohcs", "3"],
            "contdepth train: error: unrecognized arguments: --epohcs 3",
            "did you mean --epochs?",
        ),
        (["eval", "--run", "x", "--stesp-per-block", "2"], "contdepth eval: error: unrecognized", "--steps-per-block"),
        (["models", "extra"], "contdepth models: error: unrecognized arguments: extra", None),
        (["models", "--", "x"], "contdepth models: error: unrecognized arguments: -- x", None),
        (["--nope"], "contdepth: error: unrecognized arguments: --nope", None),
    ],
)
def test_unknown_flags_are_named_by_their_subcommand(capsys, argv, starts, hint):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and err.startswith(starts), err
    assert (hint is None and "did you mean" not in err) or (hint is not None and hint in err)


def test_missing_data_and_empty_run_are_one_line(tmp_path, capsys):
    assert main(["train", *SMALL, "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = one_line_error(capsys)
    assert "does not exist" in err and "cifar-10-batches-py" in err
    assert main(["eval", "--run", ""]) == 2
    assert "--run is empty" in one_line_error(capsys, "eval")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"seed": 2**70}, "seed must be an integer"),
        ({"seed": "1"}, "seed must be an integer"),
        ({"compile": "no"}, "compile must be true or false"),
        ({"nesterov": 1}, "nesterov must be true or false"),
        ({"out": ""}, "out must name a folder"),
        ({"data_dir": "  "}, "data_dir must name a folder"),
    ],
)
def test_run_settings_are_checked(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**changes)


def test_paths_are_welcome_as_folders(tmp_path):
    cfg = TrainConfig(out=tmp_path / "run", data_dir=tmp_path)
    assert cfg.out == str(tmp_path / "run") and json.loads(json.dumps(cfg.to_dict()))["data_dir"] == str(tmp_path)


@pytest.mark.parametrize("case", ["read_only", "file"])
def test_analyze_checks_its_out_folder_before_any_work(tmp_path, capsys, monkeypatch, case):
    import contdepth.analysis.spectra as spectra
    import contdepth.outputs as outputs

    def no_work(*args, **kwargs):
        raise AssertionError("the spectra were computed before --out was checked")

    monkeypatch.setattr(spectra, "block_spectra", no_work)
    out = tmp_path / "ro" / "analysis"
    if case == "read_only":  # the nearest existing folder cannot be written (a read-only mount)
        (tmp_path / "ro").mkdir()
        monkeypatch.setattr(outputs.os, "access", lambda path, mode: not str(path).startswith(str(tmp_path / "ro")))
    else:
        out = tmp_path / "a_file"
        out.write_text("keep")
    assert main(["analyze", "--model", "resnet20", "--images", "1", "--out", str(out)]) == 2
    err = one_line_error(capsys, "analyze")
    assert {"read_only": "not writable (read-only file system", "file": "is a file"}[case] in err and str(out) in err


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--out", "", "--out is empty"),
        ("--out", "A_FILE", "is a file"),
        ("--seed", "-1", "--seed must be"),
        ("--seed", str(2**70), "--seed must be"),
    ],
)
def test_demo_refuses_bad_out_and_seed_in_one_line(tmp_path, capsys, monkeypatch, flag, value, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "A_FILE").write_text("keep")
    argv = ["demo", "--fast", "--no-progress", "--out", str(tmp_path / "demo"), flag, value]
    assert main(argv) == 2
    assert expected in one_line_error(capsys, "demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A_FILE"] and (tmp_path / "A_FILE").read_text() == "keep"


def test_a_closed_pipe_ends_the_output_quietly(monkeypatch, capsys):
    class ClosedPipe:  # what `contdepth models | head` looks like once head has exited
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["models"]) == 1
    monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_analyze_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import contdepth.analysis.spectra as spectra
    import contdepth.analysis.spectra_plots as plots

    class Few:  # stands for the computed spectra: the fault under test is in the write after them
        steps: list = []

        def to_dict(self) -> dict:
            return {}

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "stability.png"))

    monkeypatch.setattr(spectra, "block_spectra", lambda *args, **kwargs: Few())
    monkeypatch.setattr(plots, "plot_spectra", full_disk)
    argv = ["analyze", "--model", "resnet20", "--images", "1", "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    err = one_line_error(capsys, "analyze")
    assert "No space left on device" in err and "stability.png" in err
