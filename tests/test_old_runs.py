"""A run folder written by an earlier version (tests/data/old_run, see make_old_run.py) still loads and resumes."""

from __future__ import annotations

import json
import pickletools
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

import contdepth as cd
from contdepth.runs import checkpoint as ckpt
from contdepth.runs.records import read_metrics, read_results
from contdepth.runs.state import FolderState, RunState, folder_state, run_state
from contdepth.runs.weights import export_weights, read_trained_state
from contdepth.train import TrainConfig, Trainer

OLD_RUN = Path(__file__).parent / "data" / "old_run"


def tiny_net() -> torch.nn.Module:
    """The old run's model, as tests/data/make_old_run.py builds it."""
    from contdepth.models.cifar import shake_resnet

    return shake_resnet(14, width=2, scheme="lm2", noise="none")


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of the old run folder (the committed one stays as it is)."""
    return Path(shutil.copytree(OLD_RUN, tmp_path / "old_run"))


def test_the_old_run_folder_reads_as_a_run_to_resume(old_run):
    assert folder_state(old_run) is FolderState.SAVED and run_state(old_run) is RunState.RESUME
    saved = ckpt.load(old_run / "checkpoint.pt")
    assert (saved["format"], saved["epoch"], saved["batch"], saved["world"]) == (1, 1, 1, 1)
    assert read_results(old_run, strict=True)["epochs_done"] == 1
    assert [row["epoch"] for row in read_metrics(old_run / "metrics.jsonl")] == [1]


def test_the_old_checkpoint_pickles_no_class_of_contdepth():
    """Only tensors and plain types (read with ``weights_only``): moving a module cannot break loading it."""
    with zipfile.ZipFile(OLD_RUN / "checkpoint.pt") as archive:
        pickle = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    modules = {arg.split(" ")[0] for op, arg, _ in pickletools.genops(pickle) if op.name == "GLOBAL"}
    assert modules and modules <= {"torch", "torch._utils", "collections"}, modules


def test_load_run_gives_the_old_runs_trained_module(old_run):
    saved = ckpt.load(old_run / "checkpoint.pt")
    net = cd.train.load_run(old_run, model=tiny_net())
    assert not net.training
    for name, value in net.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name
    with torch.no_grad():
        assert torch.isfinite(net(torch.randn(2, 3, 32, 32))).all()
    finer = cd.train.load_run(old_run, model=tiny_net(), scheme="rk4", steps_per_block=2)
    assert finer.scheme == "rk4" and finer.steps_per_block == 2


def test_the_old_checkpoint_exports_fp16_weights(old_run, tmp_path):
    path = export_weights(old_run, tmp_path / "weights.fp16.pt")
    trained = read_trained_state(tmp_path)
    assert trained.source == path and trained.epoch == 1
    assert trained.state["stem.0.weight"].dtype == torch.float16


def test_the_old_run_resumes_to_the_end(old_run, fake_cifar10, one_thread):
    before = read_metrics(old_run / "metrics.jsonl")
    saved = ckpt.load(old_run / "checkpoint.pt")["model"]
    saved_config = json.loads((old_run / "config.json").read_text())
    config = TrainConfig.from_dict(saved_config).replace(out=str(old_run), data_dir=str(fake_cifar10))
    trainer = Trainer(config, resume=True, model=tiny_net())
    results = trainer.fit()
    assert not trainer.stopped and results["complete"] and results["epochs_done"] == 2
    rows = read_metrics(old_run / "metrics.jsonl")
    assert rows[0] == before[0] and [r["epoch"] for r in rows] == [1, 2]
    assert [s["command"] for s in results["sessions"]][0] == "make_old_run.py /tmp/fixture"
    assert json.loads((old_run / "results.json").read_text())["complete"]
    trained = read_trained_state(old_run)
    assert trained.epoch == 2
    assert not torch.equal(trained.state["stem.0.weight"], saved["stem.0.weight"])  # epoch 2 trained on
